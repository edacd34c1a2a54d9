"""Parses script text (script.md) into lines, checking every name before anything runs."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field

from playground import calls as P
from playground.calls import CALLS, CallSpec
from playground.constants import (
    DISPOSITIONS,
    ERRNO_NUMBERS,
    FAMILIES,
    MAX_DATA_BYTES,
    MAX_LINE_CHARS,
    MAX_READ_BYTES,
    MAX_SCRIPT_BYTES,
    MAX_SLEEP_SECONDS,
    MSG_FLAGS,
    O_NONBLOCK_NAME,
    OPTIONS,
    POLL_EVENTS,
    PROTOCOLS,
    SHUT_HOW,
    SIGNALS,
    SOCKET_KINDS,
    TCP_STATES,
    TYPES,
    WAIT_FLAGS,
)
from playground.script.errors import LineError, ScriptError
from playground.script.lexer import Token, strip_comment, tokenize
from playground.script.model import (
    Address,
    AddressArg,
    Arg,
    Call,
    Completion,
    DataArg,
    Death,
    FlagsArg,
    FloatArg,
    IntArg,
    Kill,
    Line,
    NameArg,
    Node,
    Outcome,
    Pair,
    PairArg,
    RefArg,
    Repeat,
    Script,
    Segment,
    Sleep,
    Spawn,
    StateCheck,
    Step,
    Wire,
)

FORMAT_VERSION = 1
PROCESS_NAME = re.compile(r"[a-z][a-z0-9_-]*\Z")
VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_ERRNO_MESSAGE = re.compile(r"(=\s*-1\s+E[A-Z0-9]+)\s*\(([^)]*)\)")
_RESERVED = (
    set(OPTIONS) | set(SHUT_HOW) | set(MSG_FLAGS) | set(POLL_EVENTS) | set(SIGNALS) | set(SOCKET_KINDS)
    | set(FAMILIES) | set(TYPES) | set(WAIT_FLAGS) | set(DISPOSITIONS)
    | {O_NONBLOCK_NAME, "spawn", "kill", "sleep", "repeat", "end", "state"}
)


@dataclass
class ProcessScope:
    """What the parser knows of one process: its names and its unstated blocked calls."""

    fds: set[str] = field(default_factory=set)
    children: set[str] = field(default_factory=set)
    blocked: int = 0


@dataclass
class Scope:
    """The processes and names known at a point in a script (or in a live lab)."""

    processes: dict[str, ProcessScope] = field(default_factory=dict)
    default_actor: str | None = None

    def copy(self) -> Scope:
        return Scope(
            {k: ProcessScope(set(v.fds), set(v.children), v.blocked) for k, v in self.processes.items()},
            self.default_actor,
        )


class _Cursor:
    def __init__(self, tokens: list[Token], end_column: int) -> None:
        self.tokens = tokens
        self.i = 0
        self.end_column = end_column

    def peek(self, offset: int = 0) -> Token | None:
        j = self.i + offset
        return self.tokens[j] if j < len(self.tokens) else None

    def next(self) -> Token | None:
        tok = self.peek()
        if tok is not None:
            self.i += 1
        return tok

    def at(self, kind: str, offset: int = 0) -> bool:
        tok = self.peek(offset)
        return tok is not None and tok.kind == kind

    def column(self) -> int:
        tok = self.peek()
        return tok.column if tok else self.end_column

    def expect(self, kind: str, what: str) -> Token:
        tok = self.peek()
        if tok is None or tok.kind != kind:
            found = f"found {tok.text!r}" if tok else "the line ends"
            raise LineError(self.column(), f"expected {what}, {found}")
        self.i += 1
        return tok

    def done(self) -> bool:
        return self.i >= len(self.tokens)


def parse_script(text: str | bytes, path: str = "<script>", allow_truncated_tail: bool = False) -> Script:
    """Parse a whole file; raises ScriptError naming the first bad line (and nothing else, on any input).

    A file that does not end with a newline and whose last line does not parse
    was cut off mid-write (a crash while recording): that is an error naming
    the line, unless allow_truncated_tail, which drops that line, parses what
    comes before it and sets `Script.truncated` to the dropped line's number.
    """
    try:
        return _parse_whole(text, path)
    except ScriptError as exc:
        kept = _before_cut_tail(text, exc.line)
        if kept is None:
            raise
        if not allow_truncated_tail:
            raise ScriptError(path, exc.line, exc.column, f"{exc.message} (the file ends in the middle of this "
                              "line, as a crash while writing leaves it; the lines before it can still run)") from None
        cut_line = exc.line
    script = _parse_whole(kept, path)
    script.truncated = cut_line
    return script


def _before_cut_tail(text: str | bytes, error_line: int) -> str | bytes | None:
    """What comes before the last line, if the file does not end with a newline and the error is on that line."""
    newline = b"\n" if isinstance(text, bytes) else "\n"
    if not text or text.endswith(newline) or len(text) > MAX_SCRIPT_BYTES:  # type: ignore[arg-type]
        return None
    if error_line != text.count(newline) + 1:  # type: ignore[arg-type]
        return None
    return text[: text.rfind(newline) + 1]  # type: ignore[arg-type]


def _parse_whole(text: str | bytes, path: str) -> Script:
    if isinstance(text, bytes):
        if len(text) > MAX_SCRIPT_BYTES:
            raise ScriptError(path, 1, 1, f"file is larger than {MAX_SCRIPT_BYTES} bytes")
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = text[: exc.start].count(b"\n") + 1
            column = exc.start - (text.rfind(b"\n", 0, exc.start) + 1) + 1
            raise ScriptError(path, line, column, "file is not valid UTF-8") from None
    if len(text) > MAX_SCRIPT_BYTES:
        raise ScriptError(path, 1, 1, f"file is larger than {MAX_SCRIPT_BYTES} bytes")
    text = text.removeprefix("\ufeff")
    scope = Scope()
    script = Script(path=path, version=0)
    leading: list[str] = []
    # An open `repeat` block: (its line, count, lines so far, scope when it opened).
    block: tuple[int, int, list[Line], Scope] | None = None
    for number, raw in enumerate(text.split("\n"), start=1):
        if len(raw) > MAX_LINE_CHARS:
            raise ScriptError(path, number, 1, f"line is longer than {MAX_LINE_CHARS} characters")
        raw = raw.rstrip("\r")
        body, comment = strip_comment(raw)
        if not body.strip():
            if script.version == 0:
                script.header_lines.append(raw.rstrip())
                if comment is not None:
                    script.header_comments.append(comment)
            else:
                leading.append(raw.rstrip())
            continue
        try:
            if script.version == 0:
                script.version = _parse_header(body)
                continue
            words = body.split()
            if words[0] == "repeat":
                if block is not None:
                    raise LineError(body.index("repeat") + 1, "a repeat block cannot hold another one")
                block = (number, _repeat_count(body), [], scope.copy())
                script.lines.append(Line(number, Repeat(0), raw, comment, tuple(leading)))
                leading = []
                continue
            if words[0] == "end" and len(words) == 1:
                if block is None:
                    raise LineError(body.index("end") + 1, "'end' without a 'repeat' before it")
                start, count, lines, before = block
                _check_balanced(before, scope)
                opener = script.lines[-1]
                script.lines[-1] = Line(start, Repeat(count, tuple(lines), number, tuple(leading)), opener.text,
                                        opener.comment, opener.leading)
                leading = []
                block = None
                continue
            node = parse_node(body, scope, interactive=False)
            if block is not None and isinstance(node, (Spawn, Step)) and (
                isinstance(node, Spawn) or node.call.name == "fork"
            ):
                raise LineError(1, "a repeated block cannot start processes: each needs a name of its own")
        except LineError as exc:
            raise ScriptError(path, number, exc.column, exc.message) from None
        line = Line(number, node, raw, comment, tuple(leading))
        leading = []
        if block is not None:
            block[2].append(line)
        else:
            script.lines.append(line)
    if block is not None:
        raise ScriptError(path, block[0], 1, "this 'repeat' has no 'end'")
    if script.version == 0:
        raise ScriptError(path, 1, 1, f"the first line must be 'sockplay {FORMAT_VERSION}' (the format version)")
    script.trailing = leading
    return script


MAX_REPEAT = 100_000


def _repeat_count(body: str) -> int:
    tokens = tokenize(body)
    if len(tokens) != 2 or tokens[1].kind != "int":
        col = tokens[1].column if len(tokens) > 1 else len(body.rstrip()) + 1
        raise LineError(col, "repeat needs a count, as in 'repeat 50'")
    count = int(tokens[1].value)  # type: ignore[arg-type]
    if not 1 <= count <= MAX_REPEAT:
        raise LineError(tokens[1].column, f"repeat count must be 1 to {MAX_REPEAT}")
    return count


def _check_balanced(before: Scope, after: Scope) -> None:
    for name, proc in after.processes.items():
        was = before.processes.get(name)
        if was is not None and proc.blocked != was.blocked:
            raise LineError(1, f"a repeated block must state the outcome of every call it leaves blocked ({name})")


def _parse_header(body: str) -> int:
    tokens = tokenize(body)
    if not tokens or tokens[0].kind != "name" or tokens[0].text != "sockplay":
        col = tokens[0].column if tokens else 1
        raise LineError(col, f"the first line must be 'sockplay {FORMAT_VERSION}' (the format version)")
    if len(tokens) != 2 or tokens[1].kind != "int":
        raise LineError(tokens[0].column, f"the first line must be 'sockplay {FORMAT_VERSION}' (the format version)")
    version = int(tokens[1].value)  # type: ignore[arg-type]
    if version != FORMAT_VERSION:
        raise LineError(
            tokens[1].column,
            f"format version {version} is not supported (this sockplay reads version {FORMAT_VERSION})",
        )
    return version


def parse_line(text: str, scope: Scope) -> Node | None:
    """Parse one typed line (actor optional) against a live scope; None if blank.

    Raises LineError with a 1-based column. The scope is updated only on success.
    """
    body, _ = strip_comment(text)
    if not body.strip():
        return None
    trial = scope.copy()
    node = parse_node(body, trial, interactive=True)
    scope.processes = trial.processes
    return node


def parse_node(body: str, scope: Scope, interactive: bool) -> Node:
    body, errno_messages = _lift_errno_messages(body)
    cursor = _Cursor(tokenize(body), len(body.rstrip()) + 1)
    first = cursor.peek()
    assert first is not None
    if first.kind == "~":
        return _wire(cursor, scope)
    delay = None
    if first.kind == "+":
        cursor.next()
        tok = cursor.next()
        if tok is None or tok.kind not in ("int", "float"):
            raise LineError(first.column, "'+' must be followed by a delay in seconds, as in +0.5")
        delay = _seconds(tok)
    word = cursor.peek()
    if word is not None and word.kind == "name" and word.text == "state" and not cursor.at(":", 1):
        node = _state_check(cursor, scope)
        return dataclasses.replace(node, delay=delay) if delay is not None else node
    if word is not None and word.kind == "name" and word.text in ("spawn", "kill", "sleep") and not cursor.at(":", 1):
        node = _directive(cursor, scope)
        return dataclasses.replace(node, delay=delay) if delay is not None else node
    actor_tok = None
    if cursor.at("name") and cursor.at(":", 1):
        actor_tok = cursor.next()
        cursor.next()
    if actor_tok is None:
        if not interactive:
            raise LineError(cursor.column(), "a step starts with the process that makes it, as in 'server: ...'")
        if scope.default_actor is None:
            raise LineError(cursor.column(), "no process is selected: start the line with 'NAME:'")
        actor = scope.default_actor
        actor_column = cursor.column()
    else:
        actor = actor_tok.text
        actor_column = actor_tok.column
    proc = scope.processes.get(actor)
    if proc is None:
        raise LineError(actor_column, _unknown_process(actor, scope))
    if cursor.at("ellipsis"):
        cursor.next()
        expect = None
        if not cursor.done():
            cursor.expect("=", "'=' and the outcome")
            expect = _outcome(cursor, errno_messages)
        if proc.blocked <= 0:
            raise LineError(actor_column, f"{actor} has no blocked call ('...') whose outcome is still to be stated")
        proc.blocked -= 1
        return Completion(actor, expect, delay)
    var_tok = None
    if cursor.at("name") and cursor.at("=", 1):
        var_tok = cursor.next()
        cursor.next()
    call = _call(cursor, actor, scope)
    spec = CALLS[call.name]
    if var_tok is not None:
        _bind_var(var_tok, spec, actor, scope)
    expect = None
    blocks = False
    outcome_column = 0
    if cursor.at("ellipsis"):
        cursor.next()
        blocks = True
        proc.blocked += 1
    elif cursor.at("="):
        outcome_column = cursor.next().column  # type: ignore[union-attr]
        expect = _outcome(cursor, errno_messages)
    if not cursor.done():
        raise LineError(cursor.column(), f"unexpected {cursor.peek().text!r} after the call")  # type: ignore[union-attr]
    return Step(
        actor=actor,
        call=call,
        var=var_tok.text if var_tok else None,
        expect=expect,
        blocks=blocks,
        delay=delay,
        outcome_column=outcome_column,
    )


def _lift_errno_messages(body: str) -> tuple[str, dict[int, str]]:
    """Take `(Broken pipe)` after an errno out of the line: its words are free text."""
    messages: dict[int, str] = {}

    def cut(match: re.Match[str]) -> str:
        messages[match.start()] = match.group(2).strip()
        return match.group(1) + " " * (len(match.group(0)) - len(match.group(1)))

    return _ERRNO_MESSAGE.sub(cut, body), messages


def _unknown_process(name: str, scope: Scope) -> str:
    known = ", ".join(sorted(scope.processes)) or "none yet"
    return f"no process named {name!r} (known: {known}); start one with 'spawn {name}'"


def _seconds(tok: Token) -> float:
    value = float(tok.value)  # type: ignore[arg-type]
    if value < 0 or value > MAX_SLEEP_SECONDS:
        raise LineError(tok.column, f"{tok.text} seconds is out of range (0 to {MAX_SLEEP_SECONDS:g})")
    return value


def _directive(cursor: _Cursor, scope: Scope) -> Node:
    word = cursor.next()
    assert word is not None
    if word.text == "sleep":
        tok = cursor.next()
        if tok is None or tok.kind not in ("int", "float"):
            raise LineError(tok.column if tok else cursor.end_column, "sleep needs seconds, as in 'sleep 0.2'")
        node: Node = Sleep(_seconds(tok))
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
            if name.text in _RESERVED:
                raise LineError(name.column, f"{name.text!r} is a reserved word; choose another name")
            scope.processes[name.text] = ProcessScope()
            node = Spawn(name.text)
        else:
            if name.text not in scope.processes:
                raise LineError(name.column, _unknown_process(name.text, scope))
            sig = "SIGTERM"
            if not cursor.done():
                tok = cursor.next()
                assert tok is not None
                sig = _signal_name(tok)
            node = Kill(name.text, sig)
    if not cursor.done():
        raise LineError(cursor.column(), f"unexpected {cursor.peek().text!r}")  # type: ignore[union-attr]
    return node


TCP_FLAG_NAMES = ("SYN", "ACK", "FIN", "RST", "PSH", "URG")
STATE_NAMES = tuple(TCP_STATES.values())


def _state_check(cursor: _Cursor, scope: Scope) -> StateCheck:
    cursor.next()
    proc = cursor.expect("name", "a socket, as in 'state server.a CLOSE-WAIT'")
    if proc.text not in scope.processes:
        raise LineError(proc.column, _unknown_process(proc.text, scope))
    cursor.expect(".", f"'.' and a socket name after {proc.text}")
    var = cursor.expect("name", f"a socket name after '{proc.text}.'")
    if var.text not in scope.processes[proc.text].fds:
        raise LineError(var.column, f"{proc.text} has no socket named {var.text!r}")
    state = cursor.expect("name", "a TCP state, as in ESTABLISHED, CLOSE-WAIT or TIME-WAIT")
    if state.text not in STATE_NAMES:
        close = _closest(state.text, set(STATE_NAMES))
        hint = f"; did you mean {close}?" if close else f" ({', '.join(STATE_NAMES)})"
        raise LineError(state.column, f"{state.text!r} is not a TCP state{hint}")
    if not cursor.done():
        raise LineError(cursor.column(), f"unexpected {cursor.peek().text!r}")  # type: ignore[union-attr]
    return StateCheck(proc.text, var.text, state.text)


def _wire(cursor: _Cursor, scope: Scope) -> Wire:
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
    src = dst = None
    if cursor.at(">", 1) or cursor.at(">", 3):
        src = _endpoint(cursor, scope)
        cursor.expect(">", "'>' between the two ends")
        dst = _endpoint(cursor, scope)
    kind_tok = cursor.expect("name", "TCP flags (FIN, RST, SYN|ACK, ...), UDP or ICMP")
    fields: dict[str, object] = {"src": src, "dst": dst}
    if kind_tok.text == "UDP":
        fields["kind"] = "UDP"
    elif kind_tok.text in ("ICMP", "ICMPv6"):
        fields["kind"] = "ICMP"
        if cursor.at("name"):
            fields["icmp"] = cursor.next().text  # type: ignore[union-attr]
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
    if cursor.at("name") and cursor.peek().text == "len":  # type: ignore[union-attr]
        cursor.next()
        fields["length"] = int(cursor.expect("int", "a payload length after 'len'").value)  # type: ignore[arg-type]
    if not cursor.done():
        raise LineError(cursor.column(), f"unexpected {cursor.peek().text!r}")  # type: ignore[union-attr]
    return Wire(segment=Segment(**fields))  # type: ignore[arg-type]


def _endpoint(cursor: _Cursor, scope: Scope) -> str | None:
    if cursor.at("*"):
        cursor.next()
        return None
    name = cursor.expect("name", "an end: a process, PROC.VAR, or *")
    if name.text not in scope.processes:
        raise LineError(name.column, _unknown_process(name.text, scope))
    if cursor.at("."):
        cursor.next()
        var = cursor.expect("name", f"a socket name after '{name.text}.'")
        if var.text not in scope.processes[name.text].fds:
            raise LineError(var.column, f"{name.text} has no socket named {var.text!r}")
        return f"{name.text}.{var.text}"
    return name.text


def _signal_name(tok: Token) -> str:
    if tok.kind == "int" and int(tok.value) in {v for v in SIGNALS.values()}:  # type: ignore[arg-type]
        return next(k for k, v in SIGNALS.items() if v == tok.value)
    if tok.kind == "name":
        name = tok.text if tok.text.startswith("SIG") else "SIG" + tok.text
        if name in SIGNALS:
            return name
    raise LineError(tok.column, f"{tok.text!r} is not a signal (SIGTERM, SIGKILL, SIGPIPE, SIGCHLD, ...)")


def _call(cursor: _Cursor, actor: str, scope: Scope) -> Call:
    name_tok = cursor.peek()
    if name_tok is None or name_tok.kind != "name":
        raise LineError(cursor.column(), "expected a call, as in read(a, 100)")
    cursor.next()
    spec = CALLS.get(name_tok.text)
    if spec is None:
        close = _closest(name_tok.text, CALLS)
        hint = f"; did you mean {close}?" if close else f"; calls are {', '.join(CALLS)}"
        raise LineError(name_tok.column, f"unknown call {name_tok.text!r}{hint}")
    cursor.expect("(", f"'(' after {spec.name}")
    raw_args: list[Arg] = []
    if not cursor.at(")"):
        while True:
            raw_args.append(_arg(cursor))
            if cursor.at(","):
                cursor.next()
                continue
            break
    close_tok = cursor.expect(")", "',' or ')'")
    args = _check_args(spec, raw_args, actor, scope, close_tok.column)
    return Call(spec.name, tuple(args), name_tok.column)


def _closest(word: str, options: dict[str, object] | set[str]) -> str | None:
    import difflib

    match = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return match[0] if match else None


def _arg(cursor: _Cursor) -> Arg:
    tok = cursor.peek()
    if tok is None:
        raise LineError(cursor.column(), "expected an argument, the line ends")
    if tok.kind == "string":
        return DataArg(_data(cursor), tok.column)
    cursor.next()
    if tok.kind == "int":
        return IntArg(int(tok.value), tok.column)  # type: ignore[arg-type]
    if tok.kind == "float":
        return FloatArg(float(tok.value), tok.column)  # type: ignore[arg-type]
    if tok.kind == "address":
        host, port = tok.value  # type: ignore[misc]
        return AddressArg(Address(host, port), tok.column)
    if tok.kind == "{":
        first = cursor.expect("int", "an integer in {A, B}")
        cursor.expect(",", "',' in {A, B}")
        second = cursor.expect("int", "an integer in {A, B}")
        cursor.expect("}", "'}' closing {A, B}")
        return PairArg(Pair(int(first.value), int(second.value)), tok.column)  # type: ignore[arg-type]
    if tok.kind == "name":
        if cursor.at("."):
            cursor.next()
            var = cursor.expect("name", f"a socket name after '{tok.text}.'")
            return RefArg(tok.text, var.text, tok.column)
        if cursor.at("|"):
            names = [tok.text]
            while cursor.at("|"):
                cursor.next()
                names.append(cursor.expect("name", "a flag after '|'").text)
            return FlagsArg(tuple(names), tok.column)
        return NameArg(tok.text, tok.column)
    raise LineError(tok.column, f"unexpected {tok.text!r} where an argument belongs")


def _data(cursor: _Cursor) -> bytes:
    out = bytearray()
    while True:
        tok = cursor.expect("string", "a string")
        chunk: bytes = tok.value  # type: ignore[assignment]
        if cursor.at("*"):
            cursor.next()
            count_tok = cursor.expect("int", "a repeat count after '*'")
            count = int(count_tok.value)  # type: ignore[arg-type]
            if count < 0:
                raise LineError(count_tok.column, "a repeat count cannot be negative")
            if len(out) + len(chunk) * count > MAX_DATA_BYTES:
                raise LineError(count_tok.column, f"data would be larger than {MAX_DATA_BYTES} bytes")
            if count > MAX_DATA_BYTES:  # "" * 10**20
                raise LineError(count_tok.column, f"a repeat count must be at most {MAX_DATA_BYTES}")
            chunk = chunk * count
        elif len(out) + len(chunk) > MAX_DATA_BYTES:
            raise LineError(tok.column, f"data would be larger than {MAX_DATA_BYTES} bytes")
        out += chunk
        if cursor.at("+") and cursor.at("string", 1):
            cursor.next()
            continue
        if cursor.at("string"):
            continue
        return bytes(out)


def _bind_var(var_tok: Token, spec: CallSpec, actor: str, scope: Scope) -> None:
    if spec.defines is None:
        raise LineError(var_tok.column, f"{spec.name} returns no socket or process to name")
    name = var_tok.text
    if name in _RESERVED:
        raise LineError(var_tok.column, f"{name!r} is a reserved word; choose another name")
    proc = scope.processes[actor]
    if spec.defines == "fd":
        if not VAR_NAME.match(name):
            raise LineError(var_tok.column, f"{name!r} is not a valid name (letters, digits and '_')")
        proc.fds.add(name)
        return
    if not PROCESS_NAME.match(name):
        raise LineError(var_tok.column, f"{name!r} cannot name a process: use lowercase letters, digits, '_' and '-'")
    if name in scope.processes:
        raise LineError(var_tok.column, f"a process named {name!r} already exists; name the child differently")
    scope.processes[name] = ProcessScope(set(proc.fds), set(proc.children), 0)
    proc.children.add(name)


def _check_args(spec: CallSpec, args: list[Arg], actor: str, scope: Scope, end: int) -> list[Arg]:
    if spec.name == "socket":
        return _socket_args(args, end)
    n_req, n_opt = len(spec.required), len(spec.optional)
    if len(args) < n_req or (spec.variadic is None and len(args) > n_req + n_opt):
        column = args[n_req + n_opt].column if len(args) > n_req + n_opt else end
        raise LineError(column, f"{spec.name} takes {_count(spec)}: {spec.usage}")
    kinds = list(spec.required) + list(spec.optional)
    checked: list[Arg] = []
    option = None
    for i, arg in enumerate(args):
        kind = kinds[i] if i < len(kinds) else spec.variadic
        assert kind is not None
        checked.append(_check_arg(kind, arg, actor, scope, option))
        if kind == P.OPTION:
            option = arg.name  # type: ignore[union-attr]
    return checked


def _count(spec: CallSpec) -> str:
    n = len(spec.required)
    if spec.variadic:
        return f"{n} or more arguments"
    if spec.optional:
        return f"{n} to {n + len(spec.optional)} arguments"
    return "no arguments" if n == 0 else f"{n} argument{'s' if n > 1 else ''}"


def _socket_args(args: list[Arg], end: int) -> list[Arg]:
    if len(args) == 1 and isinstance(args[0], NameArg) and args[0].name in SOCKET_KINDS:
        return args
    if len(args) in (2, 3) and all(isinstance(a, (NameArg, IntArg)) for a in args):
        fam, typ = args[0], args[1]
        if not (isinstance(fam, NameArg) and fam.name in FAMILIES):
            raise LineError(fam.column, "socket family must be AF_INET or AF_INET6")
        if not (isinstance(typ, NameArg) and typ.name in TYPES):
            raise LineError(typ.column, "socket type must be SOCK_STREAM or SOCK_DGRAM")
        if len(args) == 3:
            proto = args[2]
            named = isinstance(proto, NameArg) and proto.name in PROTOCOLS
            if not (named or (isinstance(proto, IntArg) and proto.value == 0)):
                raise LineError(proto.column, "protocol must be 0, IPPROTO_TCP or IPPROTO_UDP")
        return args
    column = args[0].column if args else end
    raise LineError(column, "socket takes a kind: tcp, udp, tcp6, udp6, or AF_INET, SOCK_STREAM and the like")


def _flags(arg: Arg, table: dict[str, int], what: str) -> Arg:
    if isinstance(arg, IntArg) and arg.value == 0:
        return FlagsArg((), arg.column)
    names = (arg.name,) if isinstance(arg, NameArg) else arg.names if isinstance(arg, FlagsArg) else None
    if names is None:
        raise LineError(arg.column, f"expected {what}, as in {' | '.join(list(table)[:2])}, or 0")
    for name in names:
        if name not in table:
            close = _closest(name, table)
            hint = f" (did you mean {close}?)" if close else f" ({', '.join(table)})"
            raise LineError(arg.column, f"{name!r} is not one of the {what}{hint}")
    return FlagsArg(tuple(names), arg.column)


def _check_arg(kind: str, arg: Arg, actor: str, scope: Scope, option: str | None) -> Arg:
    proc = scope.processes[actor]
    if kind == P.FD:
        if isinstance(arg, IntArg):
            return arg
        if isinstance(arg, NameArg):
            if arg.name not in proc.fds:
                known = ", ".join(sorted(proc.fds)) or "none yet"
                raise LineError(arg.column, f"{actor} has no socket named {arg.name!r} (its names: {known})")
            return arg
        raise LineError(arg.column, "expected a socket name or a descriptor number")
    if kind in (P.SIZE, P.BACKLOG, P.TIMEOUT, P.STATUS, P.BIT):
        if not isinstance(arg, IntArg):
            raise LineError(arg.column, f"expected an integer {kind}")
        if kind == P.SIZE and not 0 <= arg.value <= MAX_READ_BYTES:
            raise LineError(arg.column, f"size {arg.value} is out of range (0 to {MAX_READ_BYTES})")
        if kind == P.STATUS and not 0 <= arg.value <= 255:
            raise LineError(arg.column, "exit status must be 0 to 255")
        if kind == P.BIT and arg.value not in (0, 1):
            raise LineError(arg.column, "expected 0 or 1")
        if kind == P.TIMEOUT and arg.value < -1:
            raise LineError(arg.column, "timeout is milliseconds, or -1 to wait forever")
        if kind == P.BACKLOG and not -1 <= arg.value <= 1 << 20:
            raise LineError(arg.column, "backlog is out of range")
        return arg
    if kind == P.DATA:
        if not isinstance(arg, DataArg):
            raise LineError(arg.column, 'expected data, as in "hello\\n" or "x" * 1000')
        return arg
    if kind == P.ADDR:
        if isinstance(arg, AddressArg):
            return arg
        if isinstance(arg, RefArg):
            other = scope.processes.get(arg.process)
            if other is None:
                raise LineError(arg.column, _unknown_process(arg.process, scope))
            if arg.name not in other.fds:
                raise LineError(arg.column, f"{arg.process} has no socket named {arg.name!r}")
            return arg
        if isinstance(arg, NameArg):
            if arg.name in proc.fds:
                return arg
            if arg.name in ("localhost",):
                raise LineError(arg.column, "write the address numerically, as in 127.0.0.1:9000")
            raise LineError(
                arg.column,
                f"expected an address (127.0.0.1:9000, [::1]:9000, PROC.VAR); {actor} has no socket named {arg.name!r}",
            )
        raise LineError(arg.column, "expected an address, as in 127.0.0.1:9000, [::1]:9000 or server.l")
    if kind == P.OPTION:
        if isinstance(arg, NameArg) and arg.name in OPTIONS:
            return arg
        name = getattr(arg, "name", None)
        if name == O_NONBLOCK_NAME:
            raise LineError(arg.column, "O_NONBLOCK is a file flag: use fcntl(fd, O_NONBLOCK, 1)")
        close = _closest(name, OPTIONS) if name else None
        hint = f"; did you mean {close}?" if close else f" (options: {', '.join(OPTIONS)})"
        raise LineError(arg.column, f"unknown option {name or ''!r}{hint}")
    if kind == P.OPTVAL:
        spec = OPTIONS[option] if option else None
        if spec is not None and spec.readonly:
            raise LineError(arg.column, f"{spec.name} can be read, not set")
        if spec is not None and spec.kind == "linger":
            if not isinstance(arg, PairArg):
                raise LineError(arg.column, "SO_LINGER takes {ON, SECONDS}, as in {1, 0}")
            return arg
        if spec is not None and spec.kind == "timeval":
            if not isinstance(arg, (IntArg, FloatArg)) or arg.value < 0:
                raise LineError(arg.column, f"{spec.name} takes seconds, as in 0.5")
            return arg
        if not isinstance(arg, IntArg):
            raise LineError(arg.column, f"{option} takes an integer, as in 1")
        if not -(2**31) <= arg.value < 2**31:
            raise LineError(arg.column, "value does not fit in a C int")
        return arg
    if kind == P.HOW:
        if isinstance(arg, NameArg) and arg.name in SHUT_HOW:
            return arg
        if isinstance(arg, IntArg) and arg.value in (0, 1, 2):
            return NameArg(list(SHUT_HOW)[arg.value], arg.column)
        raise LineError(arg.column, "expected SHUT_RD, SHUT_WR or SHUT_RDWR")
    if kind == P.MSGFLAGS:
        return _flags(arg, MSG_FLAGS, "message flags")
    if kind == P.EVENTS:
        return _flags(arg, POLL_EVENTS, "poll events")
    if kind == P.WAITFLAGS:
        return _flags(arg, WAIT_FLAGS, "waitpid flags")
    if kind == P.SIGNAL:
        if isinstance(arg, NameArg) and arg.name in SIGNALS:
            if arg.name in ("SIGKILL", "SIGSTOP"):
                raise LineError(arg.column, f"{arg.name} cannot be caught or ignored")
            return arg
        raise LineError(arg.column, "expected a signal name, as in SIGPIPE or SIGCHLD")
    if kind == P.DISPOSITION:
        if isinstance(arg, NameArg) and arg.name in DISPOSITIONS:
            return arg
        raise LineError(arg.column, "expected SIG_DFL, SIG_IGN or catch")
    if kind == P.PID:
        if isinstance(arg, IntArg):
            return arg
        if isinstance(arg, NameArg) and arg.name in proc.children:
            return arg
        raise LineError(arg.column, f"expected a child of {actor} (a name from fork), a pid, or -1")
    if kind == P.NONBLOCK:
        if isinstance(arg, NameArg) and arg.name == O_NONBLOCK_NAME:
            return arg
        raise LineError(arg.column, "fcntl here takes O_NONBLOCK: fcntl(fd, O_NONBLOCK, 1)")
    raise LineError(arg.column, f"unexpected argument kind {kind}")  # pragma: no cover


def _outcome(cursor: _Cursor, errno_messages: dict[int, str]) -> Outcome:
    start = cursor.peek()
    if start is None:
        raise LineError(cursor.column(), "expected an outcome after '='")
    fields: dict[str, object] = {}
    if start.kind == "name" and start.text in ("killed", "exited"):
        fields["death"] = _death(cursor)
    elif _is_errno_start(cursor, start):
        cursor.next()
        err = cursor.next()
        assert err is not None
        if err.text not in ERRNO_NUMBERS:
            close = _closest(err.text, ERRNO_NUMBERS)
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
    return Outcome(**fields)  # type: ignore[arg-type]


def _is_errno_start(cursor: _Cursor, start: Token) -> bool:
    following = cursor.peek(1)
    return (
        start.kind == "int" and start.value == -1 and following is not None
        and following.kind == "name" and following.text.startswith("E")
    )


def _death(cursor: _Cursor) -> Death:
    how = cursor.next()
    assert how is not None
    if how.text == "exited":
        tok = cursor.expect("int", "an exit status after 'exited'")
        return Death("exited", int(tok.value))  # type: ignore[arg-type]
    tok = cursor.next()
    if tok is None:
        raise LineError(cursor.end_column, "expected a signal after 'killed'")
    return Death("killed", _signal_name(tok))


def _value(cursor: _Cursor) -> object:
    tok = cursor.next()
    assert tok is not None
    if tok.kind == "int":
        return int(tok.value)  # type: ignore[arg-type]
    if tok.kind == "float":
        return float(tok.value)  # type: ignore[arg-type]
    if tok.kind == "address":
        host, port = tok.value  # type: ignore[misc]
        return Address(host, port)
    if tok.kind == "{":
        first = cursor.expect("int", "an integer in {A, B}")
        cursor.expect(",", "',' in {A, B}")
        second = cursor.expect("int", "an integer in {A, B}")
        cursor.expect("}", "'}'")
        return Pair(int(first.value), int(second.value))  # type: ignore[arg-type]
    raise LineError(tok.column, f"expected a return value, '-1 ERRNO', 'killed SIG' or 'exited N', found {tok.text!r}")


def _extras(cursor: _Cursor, fields: dict[str, object]) -> None:
    while not cursor.done() and not cursor.at("!"):
        tok = cursor.peek()
        assert tok is not None
        if tok.kind == "string" and "data" not in fields:
            fields["data"] = _data(cursor)
        elif tok.kind == "name" and tok.text == "from" and "peer" not in fields:
            cursor.next()
            addr = cursor.expect("address", "an address after 'from'")
            host, port = addr.value  # type: ignore[misc]
            fields["peer"] = Address(host, port)
        elif tok.kind == "name" and tok.text in ("exited", "killed") and "child" not in fields:
            fields["child"] = _death(cursor)
        elif tok.kind == "name" and tok.text in POLL_EVENTS and "revents" not in fields:
            names = [cursor.next().text]  # type: ignore[union-attr]
            while cursor.at("|"):
                cursor.next()
                name = cursor.expect("name", "a poll event after '|'")
                if name.text not in POLL_EVENTS:
                    raise LineError(name.column, f"{name.text!r} is not a poll event")
                names.append(name.text)
            fields["revents"] = tuple(names)
        else:
            raise LineError(tok.column, f"unexpected {tok.text!r} in the outcome")
