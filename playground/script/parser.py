"""Parses script text (script.md) into lines, checking every name before anything runs."""

from __future__ import annotations

import gc
import itertools
import re
from collections.abc import Callable

from playground.constants import MAX_LINE_CHARS, MAX_SCRIPT_BYTES, MAX_SCRIPT_DATA
from playground.script.checks import ProcessScope, Scope, bind_var, unknown_process
from playground.script.cursor import Cursor
from playground.script.errors import LineError, ScriptError
from playground.script.host_lines import fault, host_line_form
from playground.script.lexer import Token, strip_comment, tokenize
from playground.script.line_forms import directive, read_call, read_outcome, seconds, state_check, wire
from playground.script.model import Completion, DataArg, Host, Line, Node, Repeat, Script, Spawn, Step
from playground.script.remote_host import is_ssh_host_line, refuse_fault, ssh_host
from playground.script.timing import split_timing, with_timing
from playground.script.usual import usual_step

__all__ = ["FORMAT_VERSION", "MAX_REPEAT", "ProcessScope", "Scope", "parse_line", "parse_node", "parse_script"]

FORMAT_VERSION = 1
# The message holds no parenthesis: a scan for its end stops at the next '(' (linear on any line).
_ERRNO_MESSAGE = re.compile(r"(=\s*-1\s+E[A-Z0-9]+)\s*\(([^()]*)\)")


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
    if isinstance(text, bytes):  # latin-1 maps each byte to one character and back
        kept = _text_before_cut_tail(text.decode("latin-1"), error_line)
        return None if kept is None else kept.encode("latin-1")
    return _text_before_cut_tail(text, error_line)


def _text_before_cut_tail(text: str, error_line: int) -> str | None:
    if not text or text.endswith("\n") or len(text) > MAX_SCRIPT_BYTES:
        return None
    if error_line != text.count("\n") + 1:
        return None
    return text[: text.rfind("\n") + 1]


def _parse_whole(text: str | bytes, path: str, max_data: int) -> Script:
    lines = _decoded(text, path).split("\n")
    script = Script(path=path, version=0)
    first = _read_header(script, lines)
    _read_body(script, lines, first, max_data)
    return script


def _decoded(text: str | bytes, path: str) -> str:
    """The file as text, within the size limit and without a byte-order mark."""
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
    return text.removeprefix("\ufeff")


def _read_header(script: Script, lines: list[str]) -> int:
    """Read the blank and comment lines before `sockplay 1`, and that line; returns the number of the version line."""
    for number, raw in enumerate(lines, start=1):
        if len(raw) > MAX_LINE_CHARS:
            raise ScriptError(script.path, number, 1, f"line is longer than {MAX_LINE_CHARS} characters")
        raw = raw.rstrip("\r")
        body, comment = strip_comment(raw)
        if body.strip():
            try:
                script.version = _parse_header(body)
            except LineError as exc:
                raise ScriptError(script.path, number, exc.column, exc.message) from None
            return number
        script.header_lines.append(raw.rstrip())
        if comment is not None:
            script.header_comments.append(comment)
    raise ScriptError(script.path, 1, 1, f"the first line must be 'sockplay {FORMAT_VERSION}' (the format version)")


class _OpenRepeat:
    """A `repeat` block whose `end` is still to come: its line, count, lines so far, scope when it opened."""

    __slots__ = ("start", "count", "lines", "before")

    def __init__(self, start: int, count: int, before: Scope) -> None:
        self.start = start
        self.count = count
        self.lines: list[Line] = []
        self.before = before


def _read_body(script: Script, lines: list[str], after: int, max_data: int) -> None:
    """Read the lines after the version line into `script.lines` (a repeat block's lines into its Repeat)."""
    path = script.path
    scope = Scope()
    leading: list[str] = []
    block: _OpenRepeat | None = None
    data_total = 0
    for number, raw in enumerate(itertools.islice(lines, after, None), start=after + 1):
        if len(raw) > MAX_LINE_CHARS:
            raise ScriptError(path, number, 1, f"line is longer than {MAX_LINE_CHARS} characters")
        raw = raw.rstrip("\r")
        body, comment = strip_comment(raw)
        stripped = body.strip()
        if not stripped:
            leading.append(raw.rstrip())
            continue
        try:
            if stripped.startswith(("repeat", "end")) and _opens_or_ends_block(body):
                block = _repeat_or_end(script, block, scope, number, body, raw, comment, leading)
                leading = []
                continue
            node = parse_node(body, scope, interactive=False)
            if block is not None:
                _check_repeatable(node)
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
        (script.lines if block is None else block.lines).append(line)
    if block is not None:
        raise ScriptError(path, block.start, 1, "this 'repeat' has no 'end'")
    script.trailing = leading


def _opens_or_ends_block(body: str) -> bool:
    words = body.split()
    return words[0] == "repeat" or (words[0] == "end" and len(words) == 1)


def _repeat_or_end(
    script: Script,
    block: _OpenRepeat | None,
    scope: Scope,
    number: int,
    body: str,
    raw: str,
    comment: str | None,
    leading: list[str],
) -> _OpenRepeat | None:
    """Open a block at `repeat N`, or close the open one at `end`; returns the block left open."""
    if body.split()[0] == "repeat":
        if block is not None:
            raise LineError(body.index("repeat") + 1, "a repeat block cannot hold another one")
        opened = _OpenRepeat(number, _repeat_count(body), scope.copy())
        script.lines.append(Line(number, Repeat(0), raw, comment, tuple(leading)))
        return opened
    if block is None:
        raise LineError(body.index("end") + 1, "'end' without a 'repeat' before it")
    _check_balanced(block.before, scope)
    opener = script.lines[-1]
    script.lines[-1] = Line(
        block.start,
        Repeat(block.count, tuple(block.lines), number, tuple(leading)),
        opener.text,
        opener.comment,
        opener.leading,
    )
    return None


def _check_repeatable(node: Node) -> None:
    if isinstance(node, Spawn) or (isinstance(node, Step) and node.call.name == "fork"):
        raise LineError(1, "a repeated block cannot start processes: each needs a name of its own")
    if isinstance(node, Host):
        raise LineError(1, "a repeated block cannot add hosts: each needs a name and an address of its own")


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
    scope.hosts = trial.hosts
    return node


def parse_node(body: str, scope: Scope, interactive: bool) -> Node:
    body, timing = split_timing(body)
    node = _parse_node(body, scope, interactive)
    return node if timing is None else with_timing(node, timing)


def _parse_node(body: str, scope: Scope, interactive: bool) -> Node:
    if is_ssh_host_line(body):
        return ssh_host(body, scope)
    if scope.hosts:
        refuse_fault(body, scope)
    step = usual_step(body, scope)
    if step is not None:
        return step
    network_line = host_line_form(body, scope) if "host" in body or "cable" in body else None
    if network_line is not None:
        return network_line
    errno_messages: dict[int, str] = {}
    if "-1" in body:  # only `= -1 ERRNO (message)` has a message to lift; the regex costs more than this look
        body, errno_messages = _lift_errno_messages(body)
    cursor = Cursor(tokenize(body), len(body.rstrip()) + 1)
    first = cursor.peek()
    assert first is not None
    if first.kind == "~":
        return wire(cursor, scope)
    delay = _delay(cursor, first) if first.kind == "+" else None
    word = cursor.peek()
    named = word is not None and word.kind == "name"
    if word is not None and named and not cursor.at(":", 1):
        form = _WORD_FORMS.get(word.text)
        if form is not None:
            return form(cursor, scope, delay)
    actor, actor_column = _actor(cursor, scope, interactive, named)
    proc = scope.processes.get(actor)
    if proc is None:
        raise LineError(actor_column, unknown_process(actor, scope))
    if cursor.at("ellipsis"):
        return _completion(cursor, actor, actor_column, proc, delay, errno_messages)
    return _step(cursor, actor, proc, scope, delay, errno_messages)


# The lines that start with a word of their own, not a process.
_WORD_FORMS: dict[str, Callable[[Cursor, Scope, float | None], Node]] = {
    "state": state_check,
    "spawn": directive,
    "kill": directive,
    "sleep": directive,
    **dict.fromkeys(("cut", "mend", "crash", "boot"), fault),
}


def _delay(cursor: Cursor, plus: Token) -> float:
    """`+SECONDS` at the start of a line."""
    cursor.i = 1
    tok = cursor.next()
    if tok is None or tok.kind not in ("int", "float"):
        raise LineError(plus.column, "'+' must be followed by a delay in seconds, as in +0.5")
    return seconds(tok)


def _actor(cursor: Cursor, scope: Scope, interactive: bool, named: bool) -> tuple[str, int]:
    """The process that makes the step, and its column: `NAME:`, or (typed) the selected process."""
    if named and cursor.at(":", 1):
        tok = cursor.tokens[cursor.i]
        cursor.i += 2
        return tok.text, tok.column
    if not interactive:
        raise LineError(cursor.column(), "a step starts with the process that makes it, as in 'server: ...'")
    if scope.default_actor is None:
        raise LineError(cursor.column(), "no process is selected: start the line with 'NAME:'")
    return scope.default_actor, cursor.column()


def _completion(
    cursor: Cursor,
    actor: str,
    actor_column: int,
    proc: ProcessScope,
    delay: float | None,
    errno_messages: dict[int, str],
) -> Completion:
    """`NAME: ... [= OUTCOME]`: the outcome of the actor's earliest blocked call."""
    cursor.next()
    expect = None
    if not cursor.done():
        cursor.expect("=", "'=' and the outcome")
        expect = read_outcome(cursor, errno_messages)
    if proc.blocked <= 0:
        raise LineError(actor_column, f"{actor} has no blocked call ('...') whose outcome is still to be stated")
    proc.blocked -= 1
    return Completion(actor, expect, delay)


def _step(
    cursor: Cursor,
    actor: str,
    proc: ProcessScope,
    scope: Scope,
    delay: float | None,
    errno_messages: dict[int, str],
) -> Step:
    """`NAME: [VAR =] CALL(ARGS) [= OUTCOME | ...]`."""
    var_tok = None
    if cursor.at("name") and cursor.at("=", 1):
        var_tok = cursor.tokens[cursor.i]
        cursor.i += 2
    made, spec = read_call(cursor, actor, proc, scope)
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
            expect = read_outcome(cursor, errno_messages)
        else:
            raise LineError(tok.column, f"unexpected {tok.text!r} after the call")
        cursor.ensure_done(" after the call")
    return Step(actor, made, var_tok.text if var_tok else None, expect, blocks, delay, outcome_column)


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
