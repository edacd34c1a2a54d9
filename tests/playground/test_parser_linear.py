"""The parser's work grows linearly with a line's length, on hostile lines too.

No timing decides these tests: the work is counted as Python lines executed
(a quadratic scan shows as four times the lines for twice the text), and the
one clock is a loose bound of seconds where the old parser took minutes.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from types import FrameType

import pytest

from playground.script.errors import ScriptError
from playground.script.model import DataArg, Step
from playground.script.parser import parse_script

HEAD = "sockplay 1\nspawn a\na: s = socket(AF_INET, SOCK_STREAM, 0) = 3\n"

HOSTILE: dict[str, Callable[[int], str]] = {
    "errno messages inside a string": lambda n: 'a: write(s, "' + "= -1 EA (x)" * n + '")',
    "unclosed errno parentheses": lambda n: 'a: write(s, "x")' + " = -1 EA (x" * n,
    "errno messages after the outcome": lambda n: 'a: write(s, "x")' + " = -1 EA (x)" * n,
    "juxtaposed strings": lambda n: "a: write(s, " + '"ab" ' * n + ")",
    "escaped strings": lambda n: 'a: write(s, "' + "\\x41\\n(" * n + '")',
}


def _parse(line: str) -> None:
    try:
        parse_script(HEAD + line + "\n")
    except ScriptError:
        pass  # some hostile lines are errors: what counts is the work before it is said


def _lines_executed(line: str) -> int:
    """Python lines the parser runs on this line (the work, counted instead of timed)."""
    count = 0

    def trace(frame: FrameType, event: str, arg: object) -> Callable | None:
        nonlocal count
        if event == "line":
            count += 1
        return trace

    sys.settrace(trace)
    try:
        _parse(line)
    finally:
        sys.settrace(None)
    return count


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_twice_the_line_is_about_twice_the_work(kind: str) -> None:
    make = HOSTILE[kind]
    short, long = _lines_executed(make(400)), _lines_executed(make(800))
    assert long <= 2.5 * short + 200, (short, long)  # quadratic work would be about 4x


def test_an_errno_message_in_the_data_is_still_data_and_one_after_it_is_lifted() -> None:
    script = parse_script(HEAD + 'a: write(s, "= -1 EA (x)" "= -1 EB (y)") = -1 EPIPE (Broken pipe)\n')
    step = script.lines[-1].node
    assert isinstance(step, Step) and isinstance(step.call.args[1], DataArg)
    assert bytes(step.call.args[1].value) == b"= -1 EA (x)= -1 EB (y)"
    assert step.expect is not None and step.expect.errno_message == "Broken pipe"


def test_a_200_kb_hostile_line_parses_in_seconds() -> None:
    """It took minutes: a very loose bound, that only a quadratic parser misses."""
    start = time.monotonic()
    for make in HOSTILE.values():
        _parse(make(200_000 // 11))
    assert time.monotonic() - start < 10
