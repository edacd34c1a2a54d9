"""The forms a script line takes besides the usual step, each read from a Cursor over its tokens.

`directive` reads `spawn`, `kill` and `sleep`; `state_check` reads `state`;
`wire` reads `~`; `read_call` reads a call and its arguments; `read_outcome` reads what
follows `=`. The line parser (parser.py) picks the form; each raises
LineError with the column of what it cannot read.
"""

from __future__ import annotations

from typing import Any

from playground.calls import CALLS, CallSpec
from playground.constants import (
    ERRNO_NUMBERS,
    MAX_DATA_BYTES,
    MAX_RIGHTS,
    MAX_SLEEP_SECONDS,
    POLL_EVENTS,
    PROCESS_STATES,
    SIGNALS,
    TCP_STATES,
)
from playground.script import indexed
from playground.script.checks import (
    PROCESS_NAME,
    RESERVED,
    ProcessScope,
    Scope,
    check_args,
    closest,
    unknown_process,
)
from playground.script.cursor import Cursor
from playground.script.data import Data
from playground.script.errors import LineError
from playground.script.host_lines import port_number, spawn_host
from playground.script.lexer import Token
from playground.script.model import (
    Address,
    AddressArg,
    Arg,
    Call,
    DataArg,
    Death,
    FlagsArg,
    FloatArg,
    IntArg,
    Kill,
    NameArg,
    Node,
    Outcome,
    Pair,
    PairArg,
    RefArg,
    Segment,
    Sleep,
    Spawn,
    StateCheck,
    Wire,
)
from playground.script.more_outcomes import read_fields, read_rights, starts_fields, unix_address
from playground.script.sets import read_ready, read_set


def seconds(tok: Token) -> float:
    value = float(tok.value)
    if value < 0 or value > MAX_SLEEP_SECONDS:
        raise LineError(tok.column, f"{tok.text} seconds is out of range (0 to {MAX_SLEEP_SECONDS:g})")
    return value


def directive(cursor: Cursor, scope: Scope, delay: float | None) -> Node:
    word = cursor.next()
    assert word is not None
    if word.text == "sleep":
        tok = cursor.next()
        if tok is None or tok.kind not in ("int", "float"):
            raise LineError(tok.column if tok else cursor.end_column, "sleep needs seconds, as in 'sleep 0.2'")
        node: Node = Sleep(seconds(tok), delay)
    else:
        name = cursor.next()
        if name is None or name.kind != "name":
            column = name.column if name else cursor.end_column
            raise LineError(column, f"{word.text} needs a process name, as in '{word.text} server'")
        if word.text == "spawn":
            if not PROCESS_NAME.match(name.text):
                raise LineError(
                    name.column,
                    f"{name.text!r} is not a process name: use lowercase letters, digits, '_' and '-', "
                    "starting with a letter",
                )
            if name.text in scope.processes:
                raise LineError(name.column, f"a process named {name.text!r} already exists")
            if name.text in RESERVED:
                raise LineError(name.column, f"{name.text!r} is a reserved word; choose another name")
            host = spawn_host(cursor, scope)
            scope.processes[name.text] = ProcessScope()
            node = Spawn(name.text, delay, host=host)
        else:
            if name.text not in scope.processes:
                raise LineError(name.column, unknown_process(name.text, scope))
            sig = "SIGTERM"
            if not cursor.done():
                tok = cursor.next()
                assert tok is not None
                sig = _signal_name(tok)
            node = Kill(name.text, sig, delay)
    cursor.ensure_done()
    return node


TCP_FLAG_NAMES = ("SYN", "ACK", "FIN", "RST", "PSH", "URG")
STATE_NAMES = tuple(TCP_STATES.values())


def state_check(cursor: Cursor, scope: Scope, delay: float | None) -> StateCheck:
    cursor.next()
    proc = cursor.expect("name", "a socket or a process, as in 'state server.a CLOSE-WAIT' or 'state kid zombie'")
    if proc.text not in scope.processes:
        raise LineError(proc.column, unknown_process(proc.text, scope))
    var = None
    if cursor.at("."):
        cursor.next()
        var = cursor.expect("name", f"a socket name after '{proc.text}.'")
        _check_socket_name(var, proc.text, scope)
        names, what = STATE_NAMES, "a TCP state, as in ESTABLISHED, CLOSE-WAIT or TIME-WAIT"
    else:
        names, what = PROCESS_STATES, f"a process state ({', '.join(PROCESS_STATES)}), or '.' and a socket name"
    state = cursor.expect("name", what)
    if state.text not in names:
        close = closest(state.text, set(names))
        hint = f"; did you mean {close}?" if close else f" ({', '.join(names)})"
        kind = "TCP" if var is not None else "process"
        raise LineError(state.column, f"{state.text!r} is not a {kind} state{hint}")
    cursor.ensure_done()
    return StateCheck(proc.text, var.text if var is not None else None, state.text, delay)


def wire(cursor: Cursor, scope: Scope) -> Wire:
    cursor.next()
    tok = cursor.peek()
    if tok is None:
        raise LineError(cursor.column(), "'~' needs what was sent, as in '~ client.c > server.a FIN' or '~ nothing'")
    if tok.kind == "name" and tok.text == "nothing" and cursor.peek(1) is None:
        return Wire(nothing=True)
    if tok.kind == "name" and tok.text == "no" and cursor.at("name", 1):
        cursor.next()
        flag = cursor.next()
        assert flag is not None
        if flag.text not in TCP_FLAG_NAMES or not cursor.done():
            raise LineError(flag.column, f"'~ no' takes one TCP flag ({', '.join(TCP_FLAG_NAMES)})")
        return Wire(forbid=flag.text)
    lost = _lost_word(cursor)
    src = dst = None
    if cursor.at(">", 1) or cursor.at(">", 3):
        src = _endpoint(cursor, scope)
        cursor.expect(">", "'>' between the two ends")
        dst = _endpoint(cursor, scope)
    if lost and (cursor.done() or cursor.at_word("len")):
        return _lost_segment(cursor, src, dst)
    kind_tok = cursor.expect("name", "TCP flags (FIN, RST, SYN|ACK, ...), UDP or ICMP")
    fields: dict[str, Any] = {"src": src, "dst": dst, "lost": lost}
    if kind_tok.text == "UDP":
        fields["kind"] = "UDP"
    elif kind_tok.text in ("ICMP", "ICMPv6"):
        fields["kind"] = "ICMP"
        if cursor.at("name"):
            fields["icmp"] = cursor.expect("name", "an ICMP type").text
    else:
        flags = [kind_tok]
        while cursor.at("|"):
            cursor.next()
            flags.append(cursor.expect("name", "a TCP flag after '|'"))
        for flag in flags:
            if flag.text not in TCP_FLAG_NAMES:
                known = ", ".join(TCP_FLAG_NAMES)
                raise LineError(flag.column, f"{flag.text!r} is not a TCP flag ({known}), UDP or ICMP")
        fields["kind"] = "TCP"
        fields["flags"] = tuple(f.text for f in flags)
    _qualifiers(cursor, fields)
    cursor.ensure_done()
    return Wire(segment=Segment(**fields))


def _qualifiers(cursor: Cursor, fields: dict[str, Any]) -> None:
    """`len N` (the payload length) and, on a TCP segment, `win N` or `win >N` (the window field), in any order."""
    while cursor.at_word("len") or cursor.at_word("win"):
        word = cursor.next()
        assert word is not None
        if word.text == "len" and "length" not in fields:
            fields["length"] = int(cursor.expect("int", "a payload length after 'len'").value)
        elif word.text == "win" and "window" not in fields and fields["kind"] == "TCP":
            if cursor.at(">"):
                cursor.next()
                fields["window_above"] = True
            fields["window"] = int(cursor.expect("int", "a window after 'win', as in 'win 0' or 'win >0'").value)
        elif word.text == "win" and fields["kind"] != "TCP":
            raise LineError(word.column, "'win' states a TCP segment's window; UDP and ICMP have none")
        else:
            raise LineError(word.column, f"{word.text!r} is stated twice")


def _lost_word(cursor: Cursor) -> bool:
    """`~ lost ...`: a segment the network lab's cable dropped. (`~ lost > server.a` names a process `lost`.)"""
    tok = cursor.peek()
    if tok is None or tok.kind != "name" or tok.text != "lost" or cursor.at(">", 1) or cursor.at(".", 1):
        return False
    cursor.next()
    return True


def _lost_segment(cursor: Cursor, src: str | None, dst: str | None) -> Wire:
    """`~ lost A > B [len N]`: any TCP segment but SYN, FIN and RST ones, that was lost."""
    length = None
    if cursor.next() is not None:  # `len`
        length = int(cursor.expect("int", "a payload length after 'len'").value)
    cursor.ensure_done()
    return Wire(segment=Segment("TCP", src, dst, length=length, lost=True))


def _endpoint(cursor: Cursor, scope: Scope) -> str | None:
    if cursor.at("*"):
        cursor.next()
        return None
    name = cursor.expect("name", "an end: a process, PROC.VAR, or *")
    if name.text not in scope.processes:
        raise LineError(name.column, unknown_process(name.text, scope))
    if cursor.at("."):
        cursor.next()
        var = cursor.expect("name", f"a socket name after '{name.text}.'")
        _check_socket_name(var, name.text, scope)
        return f"{name.text}.{var.text}"
    return name.text


def _check_socket_name(var: Token, process: str, scope: Scope) -> None:
    fds = scope.processes[process].fds
    if var.text in fds:
        return
    if "[" in var.text:
        indexed.check_known(var.text, var.column, fds, scope.index, process)
        return
    raise LineError(var.column, f"{process} has no socket named {var.text!r}")


def _signal_name(tok: Token) -> str:
    if tok.kind == "int" and int(tok.value) in {v for v in SIGNALS.values()}:
        return next(k for k, v in SIGNALS.items() if v == tok.value)
    if tok.kind == "name":
        name = tok.text if tok.text.startswith("SIG") else "SIG" + tok.text
        if name in SIGNALS:
            return name
    raise LineError(tok.column, f"{tok.text!r} is not a signal (SIGTERM, SIGKILL, SIGPIPE, SIGCHLD, ...)")


def read_call(cursor: Cursor, actor: str, proc: ProcessScope, scope: Scope) -> tuple[Call, CallSpec]:
    name_tok = cursor.peek()
    if name_tok is None or name_tok.kind != "name":
        raise LineError(cursor.column(), "expected a call, as in read(a, 100)")
    cursor.i += 1
    spec = CALLS.get(name_tok.text)
    if spec is None:
        close = closest(name_tok.text, CALLS)
        hint = f"; did you mean {close}?" if close else f"; calls are {', '.join(CALLS)}"
        raise LineError(name_tok.column, f"unknown call {name_tok.text!r}{hint}")
    cursor.expect("(", f"'(' after {spec.name}")
    raw_args: list[Arg] = []
    if not cursor.at(")"):
        while True:
            raw_args.append(_arg(cursor))
            if cursor.at(","):
                cursor.i += 1
                continue
            break
    close_tok = cursor.expect(")", "',' or ')'")
    args = check_args(spec, raw_args, actor, proc, scope, close_tok.column)
    return Call(spec.name, tuple(args), name_tok.column), spec


def _arg(cursor: Cursor) -> Arg:
    tok = cursor.peek()
    if tok is None:
        raise LineError(cursor.column(), "expected an argument, the line ends")
    kind = tok.kind
    if kind == "string":
        return DataArg(_data(cursor), tok.column)
    cursor.i += 1
    if kind == "name":
        following = cursor.peek()
        if following is not None and following.kind == ".":
            cursor.i += 1
            var = cursor.expect("name", f"a socket name after '{tok.text}.'")
            return RefArg(tok.text, var.text, tok.column)
        if following is not None and following.kind == ":" and cursor.at("int", 1):  # HOST:PORT
            cursor.i += 2
            return AddressArg(Address(tok.text, port_number(cursor.tokens[cursor.i - 1])), tok.column)
        if following is not None and following.kind == "|":
            names = [tok.text]
            while cursor.at("|"):
                cursor.i += 1
                names.append(cursor.expect("name", "a flag after '|'").text)
            return FlagsArg(tuple(names), tok.column)
        return NameArg(tok.text, tok.column)
    if kind == "int":
        return IntArg(int(tok.value), tok.column)
    if kind == "float":
        return FloatArg(float(tok.value), tok.column)
    if kind == "address":
        host, port = tok.value
        return AddressArg(Address(host, port), tok.column)
    if kind == "{":
        if cursor.at("}") or cursor.at("name") or (cursor.at("int") and not cursor.at(",", 1)):
            return read_set(cursor, tok)
        first = cursor.expect("int", "an integer in {A, B}")
        cursor.expect(",", "',' in {A, B}")
        second = cursor.expect("int", "an integer in {A, B}")
        cursor.expect("}", "'}' closing {A, B}")
        return PairArg(Pair(int(first.value), int(second.value)), tok.column)
    raise LineError(tok.column, f"unexpected {tok.text!r} where an argument belongs")


def _data(cursor: Cursor) -> Data:
    """String literals joined by `+` or juxtaposed, each with an optional `* N`: kept as runs, never built here."""
    runs: list[tuple[bytes, int]] = []
    size = 0
    while True:
        tok = cursor.expect("string", "a string")
        chunk: bytes = tok.value
        count = 1
        following = cursor.peek()
        if following is not None and following.kind == "*":
            cursor.i += 1
            count_tok = cursor.expect("int", "a repeat count after '*'")
            count = int(count_tok.value)
            if count < 0:
                raise LineError(count_tok.column, "a repeat count cannot be negative")
            if size + len(chunk) * count > MAX_DATA_BYTES:
                raise LineError(count_tok.column, f"data would be larger than {MAX_DATA_BYTES} bytes")
            if count > MAX_DATA_BYTES:  # "" * 10**20
                raise LineError(count_tok.column, f"a repeat count must be at most {MAX_DATA_BYTES}")
        elif size + len(chunk) > MAX_DATA_BYTES:
            raise LineError(tok.column, f"data would be larger than {MAX_DATA_BYTES} bytes")
        runs.append((chunk, count))
        size += len(chunk) * count
        following = cursor.peek()
        if following is None:
            return Data.of(chunk) if count == 1 and len(runs) == 1 else Data(runs)
        if following.kind == "+" and cursor.at("string", 1):
            cursor.i += 1
            continue
        if following.kind == "string":
            continue
        return Data.of(chunk) if count == 1 and len(runs) == 1 else Data(runs)


def read_outcome(cursor: Cursor, errno_messages: dict[int, str]) -> Outcome:
    start = cursor.peek()
    if start is None:
        raise LineError(cursor.column(), "expected an outcome after '='")
    fields: dict[str, Any] = {}
    if start.kind == "name" and start.text in ("killed", "exited"):
        fields["death"] = _death(cursor)
    elif _is_errno_start(cursor, start):
        cursor.next()
        err = cursor.next()
        assert err is not None
        if err.text not in ERRNO_NUMBERS:
            close = closest(err.text, ERRNO_NUMBERS)
            raise LineError(err.column, f"unknown errno {err.text!r}" + (f"; did you mean {close}?" if close else ""))
        fields["value"] = -1
        fields["errno"] = err.text
        for pos, message in errno_messages.items():
            if pos <= start.column <= pos + 4:
                fields["errno_message"] = message
    else:
        fields["value"] = _value(cursor)
        _extras(cursor, fields)
    if cursor.at("!"):
        cursor.next()
        signals = []
        while True:
            tok = cursor.expect("name", "a signal name after '!'")
            signals.append(_signal_name(tok))
            if cursor.at(","):
                cursor.next()
                continue
            break
        fields["signals"] = tuple(signals)
    return Outcome(**fields)


def _is_errno_start(cursor: Cursor, start: Token) -> bool:
    following = cursor.peek(1)
    return (
        start.kind == "int"
        and start.value == -1
        and following is not None
        and following.kind == "name"
        and following.text.startswith("E")
    )


def _death(cursor: Cursor) -> Death:
    how = cursor.next()
    assert how is not None
    if how.text == "exited":
        tok = cursor.expect("int", "an exit status after 'exited'")
        return Death("exited", int(tok.value))
    signal_tok = cursor.next()
    if signal_tok is None:
        raise LineError(cursor.end_column, "expected a signal after 'killed'")
    return Death("killed", _signal_name(signal_tok))


def _value(cursor: Cursor) -> object:
    tok = cursor.next()
    assert tok is not None
    if tok.kind == "int":
        return int(tok.value)
    if tok.kind == "float":
        return float(tok.value)
    if tok.kind == "address":
        host, port = tok.value
        return Address(host, port)
    if tok.kind == "{" and starts_fields(cursor):
        return read_fields(cursor)
    if tok.kind == "{":
        first = cursor.expect("int", "an integer in {A, B}")
        cursor.expect(",", "',' in {A, B}")
        second = cursor.expect("int", "an integer in {A, B}")
        cursor.expect("}", "'}'")
        return Pair(int(first.value), int(second.value))
    if tok.kind == "string":
        return unix_address(tok)
    raise LineError(tok.column, f"expected a return value, '-1 ERRNO', 'killed SIG' or 'exited N', found {tok.text!r}")


def _extras(cursor: Cursor, fields: dict[str, Any]) -> None:
    while not cursor.done() and not cursor.at("!"):
        tok = cursor.peek()
        assert tok is not None
        if tok.kind == "string" and "data" not in fields:
            fields["data"] = _data(cursor)
        elif tok.kind == "name" and tok.text == "from" and cursor.at("string", 1) and "peer" not in fields:
            cursor.next()
            path = cursor.next()
            assert path is not None
            fields["peer"] = unix_address(path)
        elif tok.kind == "name" and tok.text == "from" and "peer" not in fields:
            cursor.next()
            addr = cursor.expect("address", "an address after 'from'")
            host, port = addr.value
            fields["peer"] = Address(host, port)
        elif tok.kind == "{" and "ready" not in fields:
            fields["ready"] = read_ready(cursor)
        elif tok.kind == "name" and tok.text == "rights" and "rights" not in fields:
            fields["rights"] = read_rights(cursor, MAX_RIGHTS)
        elif tok.kind == "name" and tok.text in ("exited", "killed") and "child" not in fields:
            fields["child"] = _death(cursor)
        elif tok.kind == "name" and tok.text in POLL_EVENTS and "revents" not in fields:
            names = [cursor.expect("name", "a poll event").text]
            while cursor.at("|"):
                cursor.next()
                name = cursor.expect("name", "a poll event after '|'")
                if name.text not in POLL_EVENTS:
                    raise LineError(name.column, f"{name.text!r} is not a poll event")
                names.append(name.text)
            fields["revents"] = tuple(names)
        else:
            raise LineError(tok.column, f"unexpected {tok.text!r} in the outcome")
