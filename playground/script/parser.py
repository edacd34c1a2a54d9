"""Parses script text (script.md) into lines, checking every name before anything runs."""

from __future__ import annotations

import gc
import re
from typing import Any

from playground.calls import CALLS, CallSpec
from playground.constants import (
    ERRNO_NUMBERS,
    MAX_DATA_BYTES,
    MAX_LINE_CHARS,
    MAX_SCRIPT_BYTES,
    MAX_SCRIPT_DATA,
    MAX_SLEEP_SECONDS,
    POLL_EVENTS,
    PROCESS_STATES,
    SIGNALS,
    TCP_STATES,
)
from playground.script.checks import (
    PROCESS_NAME,
    RESERVED,
    ProcessScope,
    Scope,
    bind_var,
    check_args,
    closest,
    unknown_process,
)
from playground.script.data import Data
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
from playground.script.timing import split_timing, with_timing
from playground.script.usual import usual_step

FORMAT_VERSION = 1
# The message holds no parenthesis: a scan for its end stops at the next '(' (linear on any line).
_ERRNO_MESSAGE = re.compile(r"(=\s*-1\s+E[A-Z0-9]+)\s*\(([^()]*)\)")


class _Cursor:
    """A line's tokens and the place of the next one.

    A line asks these some dozens of times, so none calls another (a call
    costs more than the work); `i += 1` steps over a token already looked at.
    """

    __slots__ = ("tokens", "n", "i", "end_column")

    def __init__(self, tokens: list[Token], end_column: int) -> None:
        self.tokens = tokens
        self.n = len(tokens)
        self.i = 0
        self.end_column = end_column

    def peek(self, offset: int = 0) -> Token | None:
        j = self.i + offset
        return self.tokens[j] if j < self.n else None

    def next(self) -> Token | None:
        i = self.i
        if i < self.n:
            self.i = i + 1
            return self.tokens[i]
        return None

    def at(self, kind: str, offset: int = 0) -> bool:
        j = self.i + offset
        return j < self.n and self.tokens[j].kind == kind

    def column(self) -> int:
        i = self.i
        return self.tokens[i].column if i < self.n else self.end_column

    def expect(self, kind: str, what: str) -> Token:
        i = self.i
        if i < self.n:
            tok = self.tokens[i]
            if tok.kind == kind:
                self.i = i + 1
                return tok
            raise LineError(tok.column, f"expected {what}, found {tok.text!r}")
        raise LineError(self.end_column, f"expected {what}, the line ends")

    def done(self) -> bool:
        return self.i >= self.n


def parse_script(
    text: str | bytes,
    path: str = "<script>",
    allow_truncated_tail: bool = False,
    max_data: int = MAX_SCRIPT_DATA,
) -> Script:
    """Parse a whole file; raises ScriptError naming the first bad line (and nothing else, on any input).

    A file that does not end with a newline and whose last line does not parse
    was cut off mid-write (a crash while recording): that is an error naming
    the line, unless allow_truncated_tail, which drops that line, parses what
    comes before it and sets `Script.truncated` to the dropped line's number.
    The data the lines state (each line once, as written) may add up to at most
    max_data bytes: past that, the line that crosses it is the error.
    """
    # The lines are some ten objects each, all kept and without cycles: the cycle collector
    # can free none of them, yet its passes over them took a quarter of a long script's time.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _parse_script(text, path, allow_truncated_tail, max_data)
    finally:
        if collecting:
            gc.enable()


def _parse_script(text: str | bytes, path: str, allow_truncated_tail: bool, max_data: int) -> Script:
    try:
        return _parse_whole(text, path, max_data)
    except ScriptError as exc:
        kept = _before_cut_tail(text, exc.line)
        if kept is None:
            raise
        if not allow_truncated_tail:
            raise ScriptError(
                path,
                exc.line,
                exc.column,
                f"{exc.message} (the file ends in the middle of this "
                "line, as a crash while writing leaves it; the lines before it can still run)",
            ) from None
        cut_line = exc.line
    script = _parse_whole(kept, path, max_data)
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


def _parse_whole(text: str | bytes, path: str, max_data: int) -> Script:
    if isinstance(text, bytes):
        if len(text) > MAX_SCRIPT_BYTES:
            raise ScriptError(path, 1, 1, f"file is larger than {MAX_SCRIPT_BYTES} bytes")
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            bad = exc.object  # the undecoded bytes (`text` may already name the str to mypy)
            at_line = bad[: exc.start].count(b"\n") + 1
            column = exc.start - (bad.rfind(b"\n", 0, exc.start) + 1) + 1
            raise ScriptError(path, at_line, column, "file is not valid UTF-8") from None
    if len(text) > MAX_SCRIPT_BYTES:
        raise ScriptError(path, 1, 1, f"file is larger than {MAX_SCRIPT_BYTES} bytes")
    text = text.removeprefix("\ufeff")
    scope = Scope()
    script = Script(path=path, version=0)
    leading: list[str] = []
    # An open `repeat` block: (its line, count, lines so far, scope when it opened).
    block: tuple[int, int, list[Line], Scope] | None = None
    data_total = 0
    for number, raw in enumerate(text.split("\n"), start=1):
        if len(raw) > MAX_LINE_CHARS:
            raise ScriptError(path, number, 1, f"line is longer than {MAX_LINE_CHARS} characters")
        raw = raw.rstrip("\r")
        body, comment = strip_comment(raw)
        stripped = body.strip()
        if not stripped:
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
            if stripped.startswith(("repeat", "end")):  # the lines that can open or close a block
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
                    script.lines[-1] = Line(
                        start,
                        Repeat(count, tuple(lines), number, tuple(leading)),
                        opener.text,
                        opener.comment,
                        opener.leading,
                    )
                    leading = []
                    block = None
                    continue
            node = parse_node(body, scope, interactive=False)
            if (
                block is not None
                and isinstance(node, (Spawn, Step))
                and (isinstance(node, Spawn) or node.call.name == "fork")
            ):
                raise LineError(1, "a repeated block cannot start processes: each needs a name of its own")
        except LineError as exc:
            raise ScriptError(path, number, exc.column, exc.message) from None
        if '"' in body and isinstance(node, (Step, Completion)):  # data is written only in string literals
            data_total += _data_size(node)
            if data_total > max_data:
                raise ScriptError(path, number, _data_column(node), _over_data_cap(data_total, max_data))
        if leading:
            line = Line(number, node, raw, comment, tuple(leading))
            leading = []
        else:
            line = Line(number, node, raw, comment)
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


def _data_size(node: Step | Completion) -> int:
    """The bytes of data a step states: its data arguments and its expected data."""
    size = len(node.expect.data) if node.expect is not None and node.expect.data else 0
    if isinstance(node, Step):
        for arg in node.call.args:
            if isinstance(arg, DataArg):
                size += arg.value.size
    return size


def _data_column(node: Step | Completion) -> int:
    if isinstance(node, Step):
        for arg in node.call.args:
            if isinstance(arg, DataArg):
                return arg.column
    return 1


def _over_data_cap(total: int, cap: int) -> str:
    return (
        f"the script's data reaches {total} bytes here, more than the {cap} bytes a script may hold "
        "(--max-data BYTES raises the limit)"
    )


def _repeat_count(body: str) -> int:
    tokens = tokenize(body)
    if len(tokens) != 2 or tokens[1].kind != "int":
        col = tokens[1].column if len(tokens) > 1 else len(body.rstrip()) + 1
        raise LineError(col, "repeat needs a count, as in 'repeat 50'")
    count = int(tokens[1].value)
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
    version = int(tokens[1].value)
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
    body, timing = split_timing(body)
    node = _parse_node(body, scope, interactive)
    return node if timing is None else with_timing(node, timing)


def _parse_node(body: str, scope: Scope, interactive: bool) -> Node:
    step = usual_step(body, scope)
    if step is not None:
        return step
    errno_messages: dict[int, str] = {}
    if "-1" in body:  # only `= -1 ERRNO (message)` has a message to lift; the regex costs more than this look
        body, errno_messages = _lift_errno_messages(body)
    cursor = _Cursor(tokenize(body), len(body.rstrip()) + 1)
    first = cursor.peek()
    assert first is not None
    if first.kind == "~":
        return _wire(cursor, scope)
    delay = None
    if first.kind == "+":
        cursor.i = 1
        tok = cursor.next()
        if tok is None or tok.kind not in ("int", "float"):
            raise LineError(first.column, "'+' must be followed by a delay in seconds, as in +0.5")
        delay = _seconds(tok)
    word = cursor.peek()
    colon = cursor.at(":", 1)
    if word is not None and word.kind == "name" and not colon:
        if word.text == "state":
            return _state_check(cursor, scope, delay)
        if word.text in ("spawn", "kill", "sleep"):
            return _directive(cursor, scope, delay)
    actor_tok = None
    if colon and word is not None and word.kind == "name":
        actor_tok = word
        cursor.i += 2
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
        raise LineError(actor_column, unknown_process(actor, scope))
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
        var_tok = cursor.tokens[cursor.i]
        cursor.i += 2
    call, spec = _call(cursor, actor, proc, scope)
    if var_tok is not None:
        bind_var(var_tok.text, var_tok.column, spec, actor, scope)
    expect = None
    blocks = False
    outcome_column = 0
    tok = cursor.next()
    if tok is not None:
        if tok.kind == "ellipsis":
            blocks = True
            proc.blocked += 1
        elif tok.kind == "=":
            outcome_column = tok.column
            expect = _outcome(cursor, errno_messages)
        else:
            raise LineError(tok.column, f"unexpected {tok.text!r} after the call")
        if not cursor.done():
            raise LineError(cursor.column(), f"unexpected {cursor.peek().text!r} after the call")  # type: ignore[union-attr]
    return Step(actor, call, var_tok.text if var_tok else None, expect, blocks, delay, outcome_column)


def _lift_errno_messages(body: str) -> tuple[str, dict[int, str]]:
    """Take `(Broken pipe)` after an errno out of the line: its words are free text."""
    messages: dict[int, str] = {}
    strings = _StringSpans(body)

    def cut(match: re.Match[str]) -> str:
        if strings.inside(match.start()):  # `write(s, "= -1 EX (y)")` is data
            return match.group(0)
        messages[match.start()] = match.group(2).strip()
        return match.group(1) + " " * (len(match.group(0)) - len(match.group(1)))

    return _ERRNO_MESSAGE.sub(cut, body), messages


# A string literal as the tokenizer reads it: a backslash takes the next character with it;
# one that is not closed runs to the end of the line.
_STRING_SPAN = re.compile(r'"(?:[^"\\]++|\\.)*+"?', re.DOTALL)


class _StringSpans:
    """Whether positions, asked in increasing order, lie inside a string literal: one pass over the line."""

    __slots__ = ("_spans", "_current")

    def __init__(self, text: str) -> None:
        self._spans = _STRING_SPAN.finditer(text)
        self._current = next(self._spans, None)

    def inside(self, at: int) -> bool:
        span = self._current
        while span is not None and span.end() <= at:
            span = self._current = next(self._spans, None)
        return span is not None and span.start() < at


def _seconds(tok: Token) -> float:
    value = float(tok.value)
    if value < 0 or value > MAX_SLEEP_SECONDS:
        raise LineError(tok.column, f"{tok.text} seconds is out of range (0 to {MAX_SLEEP_SECONDS:g})")
    return value


def _directive(cursor: _Cursor, scope: Scope, delay: float | None) -> Node:
    word = cursor.next()
    assert word is not None
    if word.text == "sleep":
        tok = cursor.next()
        if tok is None or tok.kind not in ("int", "float"):
            raise LineError(tok.column if tok else cursor.end_column, "sleep needs seconds, as in 'sleep 0.2'")
        node: Node = Sleep(_seconds(tok), delay)
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
            scope.processes[name.text] = ProcessScope()
            node = Spawn(name.text, delay)
        else:
            if name.text not in scope.processes:
                raise LineError(name.column, unknown_process(name.text, scope))
            sig = "SIGTERM"
            if not cursor.done():
                tok = cursor.next()
                assert tok is not None
                sig = _signal_name(tok)
            node = Kill(name.text, sig, delay)
    if not cursor.done():
        raise LineError(cursor.column(), f"unexpected {cursor.peek().text!r}")  # type: ignore[union-attr]
    return node


TCP_FLAG_NAMES = ("SYN", "ACK", "FIN", "RST", "PSH", "URG")
STATE_NAMES = tuple(TCP_STATES.values())


def _state_check(cursor: _Cursor, scope: Scope, delay: float | None) -> StateCheck:
    cursor.next()
    proc = cursor.expect("name", "a socket or a process, as in 'state server.a CLOSE-WAIT' or 'state kid zombie'")
    if proc.text not in scope.processes:
        raise LineError(proc.column, unknown_process(proc.text, scope))
    var = None
    if cursor.at("."):
        cursor.next()
        var = cursor.expect("name", f"a socket name after '{proc.text}.'")
        if var.text not in scope.processes[proc.text].fds:
            raise LineError(var.column, f"{proc.text} has no socket named {var.text!r}")
        names, what = STATE_NAMES, "a TCP state, as in ESTABLISHED, CLOSE-WAIT or TIME-WAIT"
    else:
        names, what = PROCESS_STATES, f"a process state ({', '.join(PROCESS_STATES)}), or '.' and a socket name"
    state = cursor.expect("name", what)
    if state.text not in names:
        close = closest(state.text, set(names))
        hint = f"; did you mean {close}?" if close else f" ({', '.join(names)})"
        kind = "TCP" if var is not None else "process"
        raise LineError(state.column, f"{state.text!r} is not a {kind} state{hint}")
    if not cursor.done():
        raise LineError(cursor.column(), f"unexpected {cursor.peek().text!r}")  # type: ignore[union-attr]
    return StateCheck(proc.text, var.text if var is not None else None, state.text, delay)


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
    fields: dict[str, Any] = {"src": src, "dst": dst}
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
        fields["length"] = int(cursor.expect("int", "a payload length after 'len'").value)
    if not cursor.done():
        raise LineError(cursor.column(), f"unexpected {cursor.peek().text!r}")  # type: ignore[union-attr]
    return Wire(segment=Segment(**fields))


def _endpoint(cursor: _Cursor, scope: Scope) -> str | None:
    if cursor.at("*"):
        cursor.next()
        return None
    name = cursor.expect("name", "an end: a process, PROC.VAR, or *")
    if name.text not in scope.processes:
        raise LineError(name.column, unknown_process(name.text, scope))
    if cursor.at("."):
        cursor.next()
        var = cursor.expect("name", f"a socket name after '{name.text}.'")
        if var.text not in scope.processes[name.text].fds:
            raise LineError(var.column, f"{name.text} has no socket named {var.text!r}")
        return f"{name.text}.{var.text}"
    return name.text


def _signal_name(tok: Token) -> str:
    if tok.kind == "int" and int(tok.value) in {v for v in SIGNALS.values()}:
        return next(k for k, v in SIGNALS.items() if v == tok.value)
    if tok.kind == "name":
        name = tok.text if tok.text.startswith("SIG") else "SIG" + tok.text
        if name in SIGNALS:
            return name
    raise LineError(tok.column, f"{tok.text!r} is not a signal (SIGTERM, SIGKILL, SIGPIPE, SIGCHLD, ...)")


def _call(cursor: _Cursor, actor: str, proc: ProcessScope, scope: Scope) -> tuple[Call, CallSpec]:
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


def _arg(cursor: _Cursor) -> Arg:
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
        first = cursor.expect("int", "an integer in {A, B}")
        cursor.expect(",", "',' in {A, B}")
        second = cursor.expect("int", "an integer in {A, B}")
        cursor.expect("}", "'}' closing {A, B}")
        return PairArg(Pair(int(first.value), int(second.value)), tok.column)
    raise LineError(tok.column, f"unexpected {tok.text!r} where an argument belongs")


def _data(cursor: _Cursor) -> Data:
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


def _outcome(cursor: _Cursor, errno_messages: dict[int, str]) -> Outcome:
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


def _is_errno_start(cursor: _Cursor, start: Token) -> bool:
    following = cursor.peek(1)
    return (
        start.kind == "int"
        and start.value == -1
        and following is not None
        and following.kind == "name"
        and following.text.startswith("E")
    )


def _death(cursor: _Cursor) -> Death:
    how = cursor.next()
    assert how is not None
    if how.text == "exited":
        tok = cursor.expect("int", "an exit status after 'exited'")
        return Death("exited", int(tok.value))
    signal = cursor.next()
    if signal is None:
        raise LineError(cursor.end_column, "expected a signal after 'killed'")
    return Death("killed", _signal_name(signal))


def _value(cursor: _Cursor) -> object:
    tok = cursor.next()
    assert tok is not None
    if tok.kind == "int":
        return int(tok.value)
    if tok.kind == "float":
        return float(tok.value)
    if tok.kind == "address":
        host, port = tok.value
        return Address(host, port)
    if tok.kind == "{":
        first = cursor.expect("int", "an integer in {A, B}")
        cursor.expect(",", "',' in {A, B}")
        second = cursor.expect("int", "an integer in {A, B}")
        cursor.expect("}", "'}'")
        return Pair(int(first.value), int(second.value))
    raise LineError(tok.column, f"expected a return value, '-1 ERRNO', 'killed SIG' or 'exited N', found {tok.text!r}")


def _extras(cursor: _Cursor, fields: dict[str, Any]) -> None:
    while not cursor.done() and not cursor.at("!"):
        tok = cursor.peek()
        assert tok is not None
        if tok.kind == "string" and "data" not in fields:
            fields["data"] = _data(cursor)
        elif tok.kind == "name" and tok.text == "from" and "peer" not in fields:
            cursor.next()
            addr = cursor.expect("address", "an address after 'from'")
            host, port = addr.value
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
