"""Writes steps and outcomes back in the script's own syntax."""

from __future__ import annotations

import re

from playground.script.data import Data
from playground.script.model import (
    AddressArg,
    Arg,
    Cable,
    Call,
    Completion,
    DataArg,
    Fault,
    FlagsArg,
    FloatArg,
    Host,
    IntArg,
    Kill,
    NameArg,
    Node,
    Observed,
    Outcome,
    PairArg,
    RefArg,
    RemoteHost,
    Repeat,
    SetArg,
    Sleep,
    Spawn,
    StateCheck,
    Step,
    Thread,
    Timing,
    Wire,
)
from playground.script.more_outcomes import format_rights
from playground.script.sets import format_ready, format_set

# A read's data longer than this (as written) is left out of the outcome and
# only its length is stated: a recording stays readable and small.
MAX_PRINTED_DATA = 512

_ESCAPE_OUT = {0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t", 0x00: "\\0", 0x5C: "\\\\", 0x22: '\\"'}
# Each byte's text in a C string literal: a table lookup per byte runs at C speed through map().
_QUOTED = [_ESCAPE_OUT.get(b) or (chr(b) if 0x20 <= b < 0x7F else f"\\x{b:02x}") for b in range(256)]
_NUL_BEFORE_OCTAL = re.compile(rb"\x00(?=[0-7])")
_BYTE_RUN = re.compile(rb"(.)\1{7,}", re.DOTALL)
_SHORT_PERIOD = 16  # every period up to this is tried; longer ones only where the data's start recurs
_LONG_PERIOD_TRIES = 16


def quote(data: bytes) -> str:
    """A C string literal for these bytes (printable ASCII kept, the rest escaped)."""
    pieces = list(map(_QUOTED.__getitem__, data))
    if b"\0" in data:
        for match in _NUL_BEFORE_OCTAL.finditer(data):  # "\0" then "1" would read back as one octal escape
            pieces[match.start()] = "\\x00"
    return '"' + "".join(pieces) + '"'


def _period(data: bytes) -> int | None:
    """The shortest unit that the data repeats at least four times, or None (linear: C compares, bounded tries)."""
    n = len(data)
    for p in range(1, min(_SHORT_PERIOD, n // 4) + 1):
        if n % p == 0 and data[p:] == data[:-p]:
            return p
    if n // 4 <= _SHORT_PERIOD:
        return None
    head = data[: _SHORT_PERIOD + 1]
    at = data.find(head, _SHORT_PERIOD + 1, n // 4 + len(head))
    for _ in range(_LONG_PERIOD_TRIES):
        if at < 0:
            return None
        if n % at == 0 and data[at:] == data[:-at]:
            return at
        at = data.find(head, at + 1, n // 4 + len(head))
    return None


def data_runs(data: bytes) -> list[tuple[bytes, int]]:
    """The data as (chunk, count) pieces: a whole repeated pattern, or runs of 8 or more bytes."""
    period = _period(data)
    if period is not None:
        return [(data[:period], len(data) // period)]
    runs: list[tuple[bytes, int]] = []
    done = 0
    for match in _BYTE_RUN.finditer(data):
        if match.start() > done:
            runs.append((data[done : match.start()], 1))
        runs.append((match.group(1), match.end() - match.start()))
        done = match.end()
    if done < len(data):
        runs.append((data[done:], 1))
    return runs


def data_pieces(data: bytes | Data) -> list[tuple[bytes, int]]:
    """The (unit, count) pieces to write: a script's own runs as it wrote them, the kernel's bytes found out."""
    if isinstance(data, Data):
        pieces: list[tuple[bytes, int]] = []
        for unit, count in data.runs:
            pieces.extend(data_runs(unit) if count == 1 else [(unit, count)])
        return pieces
    return data_runs(data)


def format_data(data: bytes | Data) -> str:
    """Data as a script expression, with runs written `"x" * N`."""
    if not data:
        return '""'
    return _join(data_pieces(data))


def short_data(data: bytes | Data, limit: int) -> str | None:
    """format_data's text if it is at most limit characters, else None (without quoting long data)."""
    if not data:
        return '""'
    pieces = data_pieces(data)
    if sum(len(unit) for unit, _ in pieces) > limit:
        return None  # its text is at least as long
    text = _join(pieces)
    return text if len(text) <= limit else None


def _join(pieces: list[tuple[bytes, int]]) -> str:
    return " + ".join(quote(chunk) if count == 1 else f"{quote(chunk)} * {count}" for chunk, count in pieces)


def format_arg(arg: Arg) -> str:
    if isinstance(arg, IntArg):
        return str(arg.value)
    if isinstance(arg, FloatArg):
        return _number(arg.value)
    if isinstance(arg, NameArg):
        return arg.name
    if isinstance(arg, FlagsArg):
        return "|".join(arg.names) if arg.names else "0"
    if isinstance(arg, DataArg):
        return format_data(arg.value)
    if isinstance(arg, AddressArg):
        return str(arg.address)
    if isinstance(arg, RefArg):
        return f"{arg.process}.{arg.name}"
    if isinstance(arg, PairArg):
        return str(arg.value)
    if isinstance(arg, SetArg):
        return format_set(arg)
    raise TypeError(arg)


def _number(value: float) -> str:
    text = repr(float(value))
    if "e" in text:  # 1e-07: the script has no exponents
        text = f"{float(value):.9f}".rstrip("0").rstrip(".")
        return "0" if text in ("", "-0") else text
    return text[:-2] if text.endswith(".0") else text


def format_call(call: Call) -> str:
    return f"{call.name}({', '.join(format_arg(a) for a in call.args)})"


def format_outcome(outcome: Outcome) -> str:
    """`= 4 "ping"`, `= -1 EPIPE (Broken pipe) ! SIGPIPE`, `= killed SIGPIPE`."""
    parts: list[str] = []
    if outcome.death is not None:
        parts.append(str(outcome.death))
    elif outcome.errno is not None:
        parts.append(f"-1 {outcome.errno}")
        if outcome.errno_message:
            parts.append(f"({outcome.errno_message})")
    else:
        value = outcome.value
        parts.append(_number(value) if isinstance(value, float) else str(value))
        if outcome.data and not outcome.data_length_only:
            text = short_data(outcome.data, MAX_PRINTED_DATA)
            if text is not None:
                parts.append(text)
        if outcome.peer is not None:
            parts.append(f"from {outcome.peer}")
        if outcome.revents is not None:
            parts.append("|".join(outcome.revents) if outcome.revents else "")
        if outcome.child is not None:
            parts.append(str(outcome.child))
        if outcome.ready is not None:
            parts.append(format_ready(outcome.ready))
        if outcome.rights is not None:
            parts.append(format_rights(outcome.rights))
    text = "= " + " ".join(p for p in parts if p)
    if outcome.signals:
        text += " ! " + ", ".join(outcome.signals)
    return text


def format_delay(delay: float | None) -> str:
    return f"+{_number(round(delay, 6))} " if delay is not None else ""


def format_wire(wire: Wire) -> str:
    if wire.nothing:
        return "~ nothing"
    if wire.forbid:
        return f"~ no {wire.forbid}"
    seg = wire.segment
    assert seg is not None
    text = "~ lost " if seg.lost else "~ "
    if seg.src is not None or seg.dst is not None:
        text += f"{seg.src or '*'} > {seg.dst or '*'} "
    if seg.kind == "TCP":
        text += "|".join(seg.flags)
    else:
        text += seg.kind + (f" {seg.icmp}" if seg.icmp else "")
    if seg.window is not None:
        text = text.rstrip() + f" win {'>' if seg.window_above else ''}{seg.window}"
    if seg.length is not None:
        text = text.rstrip() + f" len {seg.length}"
    return text.rstrip()


def format_host_node(node: Host | Fault | Cable) -> str:
    """The line without its `+DELAY` (format_node writes that)."""
    if isinstance(node, Host):
        return f"host {node.name} {node.address}"
    if isinstance(node, Fault):
        return f"{node.kind} {node.host}"
    return " ".join(["cable", node.host] + ([node.direction] if node.direction else []) + list(node.settings))


def format_node(node: Node, outcome: Outcome | None = None, pending: bool = False) -> str:
    """A directive or step as a script line; with an outcome, that outcome is written."""
    directive = _format_directive(node)
    if directive is not None:
        return directive
    if outcome is not None and outcome.death is not None and outcome.death.detail == "?":
        outcome, pending = None, True  # its process ended unseen (a remote link dropped): no outcome to state
    if isinstance(node, Repeat):
        return f"repeat {node.count}" + (f" as {node.var}" if node.var else "")
    if isinstance(node, Wire):
        return format_wire(node)
    if isinstance(node, StateCheck):
        return f"{format_delay(node.delay)}state {node.subject} {node.state}"
    if isinstance(node, Completion):
        shown = outcome if outcome is not None else None if pending else node.expect
        tail = f" {format_outcome(shown)}" if shown is not None else ""
        return f"{format_delay(node.delay)}{node.actor}: ...{tail}{_claim(node.timing)}"
    assert isinstance(node, Step)
    text = f"{format_delay(node.delay)}{node.actor}: "
    if node.var:
        text += ", ".join((node.var, *node.more_vars)) + " = "
    text += format_call(node.call)
    if pending or (node.blocks and outcome is None):
        return text + " ..."
    shown = outcome if outcome is not None else node.expect
    if shown is not None:
        text += " " + format_outcome(shown)
    return text + _claim(node.timing)


def _format_directive(node: Node) -> str | None:
    """A line that makes no call (spawn, host, thread, kill, sleep, ...) as written; None for the others."""
    if isinstance(node, Spawn):
        if node.command:
            return format_exec(node)
        return f"{format_delay(node.delay)}spawn {node.name}" + (f" on {node.host}" if node.host else "")
    if isinstance(node, RemoteHost):
        where = f" address {node.address}" if node.address else ""
        return f"{format_delay(node.delay)}host {node.name} ssh {node.destination}{where}"
    if isinstance(node, (Host, Fault, Cable)):
        return f"{format_delay(getattr(node, 'delay', None))}{format_host_node(node)}"
    if isinstance(node, Thread):
        return f"{format_delay(node.delay)}thread {node.name} in {node.process}"
    if isinstance(node, Observed):
        return format_observed(node)
    if isinstance(node, Kill):
        return f"{format_delay(node.delay)}kill {node.name}" + ("" if node.signal == "SIGTERM" else f" {node.signal}")
    if isinstance(node, Sleep):
        return f"{format_delay(node.delay)}sleep {_number(node.seconds)}"
    return None


def _claim(timing: Timing | None) -> str:
    return f" {timing}" if timing is not None else ""


_PLAIN_WORD = re.compile(r"[A-Za-z0-9_@%+=:,./-]+\Z")


def format_exec(node: Spawn) -> str:
    """The spawn line of an outside program, each word quoted where it must be to read back the same."""
    words = " ".join(_quoted(word) for word in node.command)
    on = f" on {node.host}" if node.host else ""
    return f"{format_delay(node.delay)}spawn {node.name}{on} exec {'--trace ' if node.trace else ''}{words}"


def _quoted(word: str) -> str:
    if _PLAIN_WORD.match(word):
        return word
    return '"' + "".join(_QUOTED[b] for b in word.encode("utf-8", "surrogateescape")) + '"'


def format_observed(node: Observed) -> str:
    return f"#> {node.process}: {node.text}"
