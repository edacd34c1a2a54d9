"""Two line forms read from a line's own text, not its tokens: `spawn NAME exec [--trace] COMMAND ARG...`
and the observed line `#> PROC: CALL = OUTCOME`.

An outside program's words are not the script's tokens (`--bind`, `http.server`, an address
without a port): they are split on blanks, and a word in double quotes may hold blanks and
the script's C escapes. The program is never run through a shell: each word is one argument.
An observed line is text only (a downloaded recording holds it): it is kept, shown and
written back, never executed, and its control characters are escaped so that no terminal
ever receives them raw.
"""

from __future__ import annotations

import re

from playground.script.checks import PROCESS_NAME, RESERVED, ProcessScope, Scope
from playground.script.errors import LineError
from playground.script.host_lines import check_host
from playground.script.lexer import read_string
from playground.script.model import Observed, Spawn

MAX_EXEC_WORDS = 256  # the program and its arguments
MAX_EXEC_WORD = 4096  # characters in one of them
MAX_OBSERVED_CHARS = 16384
_TOO_MANY = f"a program takes at most {MAX_EXEC_WORDS} words (itself and its arguments)"

_EXEC = re.compile(r"\s*(?:\+(?P<delay>\S+)\s+)?spawn\s+(?P<name>\S+)(?:\s+on\s+(?P<host>\S+))?\s+exec(?=\s|\Z)")
_OBSERVED = re.compile(r"\s*#>\s*(?P<proc>[a-z][a-z0-9_-]*(?:\[[0-9]{1,10}\])?):[ \t]*(?P<text>.*?)\s*\Z", re.S)
_DELAY = re.compile(r"[0-9]+(?:\.[0-9]*)?\Z|\.[0-9]+\Z")


def is_exec_spawn(body: str) -> bool:
    return "exec" in body and _EXEC.match(body) is not None


def exec_spawn(body: str, scope: Scope, max_sleep: float) -> Spawn:
    """`[+DELAY] spawn NAME exec [--trace] COMMAND ARG...`; the new name joins the scope as an outside program."""
    match = _EXEC.match(body)
    assert match is not None
    delay = None
    if match.group("delay") is not None:
        text = match.group("delay")
        if not _DELAY.match(text) or not 0 <= float(text) <= max_sleep:
            raise LineError(match.start("delay"), f"'+' must be followed by a delay in seconds (0 to {max_sleep:g})")
        delay = float(text)
    name, column = match.group("name"), match.start("name") + 1
    if not PROCESS_NAME.match(name):
        raise LineError(
            column,
            f"{name!r} is not a process name: use lowercase letters, digits, '_' and '-', starting with a letter",
        )
    if name in scope.processes:
        raise LineError(column, f"a process named {name!r} already exists")
    if name in RESERVED:
        raise LineError(column, f"{name!r} is a reserved word; choose another name")
    words = _words(body, match.end())
    trace = bool(words) and words[0][0] == "--trace"
    if trace:
        words = words[1:]
    if not words:
        raise LineError(
            len(body.rstrip()) + 1, "exec needs a program, as in 'spawn web exec python3 -m http.server 8000'"
        )
    if len(words) > MAX_EXEC_WORDS:
        raise LineError(words[MAX_EXEC_WORDS][1], _TOO_MANY)
    first, first_column = words[0]
    if first.startswith("-"):
        raise LineError(
            first_column, f"unknown option {first!r}: exec takes --trace, then the program and its arguments"
        )
    host = match.group("host")
    if host is not None:
        check_host(host, match.start("host") + 1, scope)
    scope.processes[name] = ProcessScope(outside=True)
    return Spawn(name, delay, host, command=tuple(word for word, _ in words), trace=trace)


def _words(body: str, at: int) -> list[tuple[str, int]]:
    """The blank-separated words from `at` on, each with its column; a quoted word is one word."""
    words: list[tuple[str, int]] = []
    i, end = at, len(body)
    while i < end:
        if body[i] in " \t\r":
            i += 1
            continue
        column = i + 1
        if body[i] == '"':
            raw, i = read_string(body, i)
            if i < end and body[i] not in " \t\r":
                raise LineError(i + 1, "a quoted word ends at its closing quote: put a blank after it")
            if b"\0" in raw:
                raise LineError(column, "an argument cannot hold a NUL byte (\\0)")
            word = raw.decode("utf-8", "surrogateescape")
        else:
            stop = i
            while stop < end and body[stop] not in " \t\r":
                if body[stop] == '"':
                    raise LineError(stop + 1, "a quote starts a word of its own: quote the whole word")
                stop += 1
            word, i = body[i:stop], stop
        if len(word) > MAX_EXEC_WORD:
            raise LineError(column, f"an argument may be at most {MAX_EXEC_WORD} characters long")
        words.append((word, column))
        if len(words) > MAX_EXEC_WORDS + 1:  # +1: --trace
            raise LineError(column, _TOO_MANY)
    return words


def is_observed(raw: str) -> bool:
    return raw.lstrip().startswith("#>")


def observed_line(raw: str) -> Observed:
    """`#> PROC: TEXT` (PROC may be `web[1234]`, a process the program forked): kept as escaped text."""
    match = _OBSERVED.match(raw)
    if match is None:
        raise LineError(raw.index("#>") + 1, "an observed line reads '#> PROC: CALL = OUTCOME'")
    text = match.group("text")
    if len(text) > MAX_OBSERVED_CHARS:
        raise LineError(match.start("text") + 1, f"an observed line holds at most {MAX_OBSERVED_CHARS} characters")
    return Observed(match.group("proc"), printable(text))


def printable(text: str) -> str:
    """The text with every character a terminal could act on (controls, escapes, format marks) written as an escape."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else _escape(ch) for ch in text)


def _escape(ch: str) -> str:
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
