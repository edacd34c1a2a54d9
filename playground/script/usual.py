"""The usual step, read with one regex: most lines of every script, at a fraction of the general path's cost.

`ACTOR: [VAR =] CALL(ARG, ...) [... | = VALUE ["DATA"] [EVENT|EVENT...]]`, written
with names, small integers, escape-free ASCII strings and IPv4 addresses only.

Each piece of the regex matches exactly what the tokenizer makes at that place
(a name or a number cannot stop short, as what may follow it cannot continue
it), so the general parser would read the same tokens and build the same step.
A line the regex does not take, or whose names or values fail a check, is left
to the general parser, which is the reference: it then gives the same step, or
the error with its column. Nothing here raises, and the scope is changed only
once the step is certain.
"""

from __future__ import annotations

import re

from playground.calls import CALLS
from playground.constants import MAX_DATA_BYTES, POLL_EVENTS
from playground.script.checks import Scope, bind_var, check_args
from playground.script.data import Data
from playground.script.errors import LineError
from playground.script.lexer import address_token
from playground.script.model import (
    Address,
    AddressArg,
    Arg,
    Call,
    DataArg,
    FlagsArg,
    IntArg,
    NameArg,
    Outcome,
    RefArg,
    Step,
)

# Possessive repeats (`*+`): no backtracking into a name or a number, which is both
# faster and what makes each of them a whole token.
_SPACE = r"[ \t\r]*+"
_NAME = r"[A-Za-z_][A-Za-z0-9_-]*+"
_INT = r"-?[0-9]{1,18}+"  # at most 18 digits: int() of any of them is safe and exact
_ARG = (
    rf"(?:{_NAME}(?:\.{_NAME}|(?:\|{_NAME})++)?"  # a name, PROC.VAR, or FLAG|FLAG (without spaces)
    r"|[0-9]++(?:\.[0-9]++){3}:[0-9]{1,5}+"  # 127.0.0.1:9000, tried before the int it begins like
    rf"|{_INT}"
    r'|"[^",\\\x80-\U0010ffff]*+")'  # a string without commas, so that the arguments split at them
)
# After an argument comes only a space, ',' or ')', none of which can continue a token.
_USUAL_STEP = re.compile(
    rf"{_SPACE}(?P<actor>{_NAME}){_SPACE}:{_SPACE}(?:(?P<var>{_NAME}){_SPACE}={_SPACE})?"
    rf"(?P<call>{_NAME}){_SPACE}\((?P<args>{_SPACE}(?:{_ARG}{_SPACE}(?:,{_SPACE}{_ARG}{_SPACE})*+)?)\)"
    rf"(?:{_SPACE}(?P<blocks>\.\.\.)"
    rf"|{_SPACE}(?P<equals>=){_SPACE}(?P<value>{_INT})(?![0-9.A-Za-z_])"  # not 4.5, 4x
    rf'(?:{_SPACE}(?P<data>"[^"\\\x80-\U0010ffff]*+"))?'
    rf"(?:{_SPACE}(?P<events>{_NAME}(?:\|{_NAME})*+))?)?"
    rf"{_SPACE}\Z"
)
_BLANKS = " \t\r"


def usual_step(body: str, scope: Scope) -> Step | None:
    """The step the general parser would make of a usual line, or None to leave the line to it."""
    if "-1" in body:  # the general parser first lifts `(message)` after `= -1 ERRNO` out of the whole line
        return None
    m = _USUAL_STEP.match(body)
    if m is None:
        return None
    actor, var, name, args_text, blocks, equals, value, data, events = m.groups()
    proc = scope.processes.get(actor)
    spec = CALLS.get(name)
    if (
        proc is None or spec is None or proc.outside or (proc.thread_of is not None and proc.blocked)
    ):  # (a thread's is an error)
        return None
    raw_args = _args(args_text, m.start("args") + 1, body)
    if raw_args is None:
        return None
    try:
        args = check_args(spec, raw_args, actor, proc, scope, m.end("args") + 1)
    except LineError:
        return None
    expect = None
    if value is not None:
        revents = None
        if events is not None:
            revents = tuple(events.split("|"))
            if not all(event in POLL_EVENTS for event in revents):
                return None
        chunk = None
        if data is not None:
            chunk = Data.of(data[1:-1].encode())
            if len(chunk) > MAX_DATA_BYTES:
                return None
        expect = Outcome(int(value), None, None, chunk, False, None, revents)
    if var is not None:
        try:
            bind_var(var, m.start("var") + 1, spec, actor, scope)  # it checks everything before it changes the scope
        except LineError:
            return None
    if blocks is not None:
        proc.blocked += 1
    call = Call(spec.name, tuple(args), m.start("call") + 1)
    return Step(actor, call, var, expect, blocks is not None, None, m.start("equals") + 1 if equals else 0)


def _args(args_text: str, column: int, body: str) -> list[Arg] | None:
    """The arguments between the parentheses (starting at `column`), or None if the parser would refuse one."""
    raw_args: list[Arg] = []
    if not args_text.strip(_BLANKS):
        return raw_args
    for piece in args_text.split(","):
        text = piece.lstrip(_BLANKS)
        at = column + len(piece) - len(text)
        column += len(piece) + 1
        arg = _arg(text.rstrip(_BLANKS), at, body)
        if arg is None:
            return None
        raw_args.append(arg)
    return raw_args


def _arg(text: str, column: int, body: str) -> Arg | None:
    """One argument as the general parser reads it (before its checks), or None if it would refuse it."""
    first = text[0]
    if first == '"':
        chunk = text[1:-1].encode()
        return DataArg(Data.of(chunk), column) if len(chunk) <= MAX_DATA_BYTES else None
    if first in "-0123456789":
        if ":" not in text:
            return IntArg(int(text), column)
        host = text[: text.index(":")]
        try:  # the tokenizer's own check of the address and port, and its normal form of the address
            token, _ = address_token(body, column - 1, host, column - 1 + len(host), ipv6=False)
        except LineError:
            return None
        return AddressArg(Address(*token.value), column)
    if "." in text:
        process, _, var = text.partition(".")
        return RefArg(process, var, column)
    if "|" in text:
        return FlagsArg(tuple(text.split("|")), column)
    return NameArg(text, column)
