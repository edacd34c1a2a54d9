"""The script parser and writer: positions in errors, and text that reads back the same."""

from __future__ import annotations

import pytest

from playground.script.errors import ScriptError
from playground.script.format import format_data, format_node, quote
from playground.script.lexer import tokenize
from playground.script.model import Completion, Repeat, Step
from playground.script.parser import parse_script

HEADER = "sockplay 1\nspawn a\na: s = socket(tcp)\n"


def parse(body: str):
    return parse_script(HEADER + body, "t.sockplay")


def test_steps_parse_with_vars_outcomes_delays_and_comments() -> None:
    script = parse('+0.25 a: write(s, "hi\\r\\n" * 2 + "\\x00!") = 6 ! SIGPIPE, SIGCHLD   # two\n')
    step = script.lines[-1].node
    assert isinstance(step, Step) and step.delay == 0.25 and step.actor == "a"
    assert step.call.args[1].value == b"hi\r\nhi\r\n\x00!"  # type: ignore[union-attr]
    assert step.expect is not None and step.expect.signals == ("SIGPIPE", "SIGCHLD")
    assert script.lines[-1].comment == "two"


def test_errno_outcome_with_message_and_blocking_completion() -> None:
    script = parse(
        'a: read(s, 1) = -1 EAGAIN (Resource temporarily unavailable)\na: read(s, 5) ...\na: ... = 5 "hello"\n'
    )
    first, second, third = (line.node for line in script.lines[-3:])
    assert isinstance(first, Step) and first.expect.errno == "EAGAIN"  # type: ignore[union-attr]
    assert first.expect.errno_message == "Resource temporarily unavailable"  # type: ignore[union-attr]
    assert isinstance(second, Step) and second.blocks
    assert isinstance(third, Completion) and third.expect.data == b"hello"  # type: ignore[union-attr]


def test_an_errno_message_inside_a_string_is_data() -> None:
    script = parse('a: write(s, "= -1 EX (y)") = -1 EPIPE (Broken pipe)\na: write(s, "\\"= -1 EX (z)") = 9\n')
    first, second = (line.node for line in script.lines[-2:])
    assert isinstance(first, Step) and first.call.args[1].value == b"= -1 EX (y)"  # type: ignore[union-attr]
    assert first.expect.errno_message == "Broken pipe"  # type: ignore[union-attr]
    assert isinstance(second, Step) and second.call.args[1].value == b'"= -1 EX (z)'  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ("a: read(s, 1)\nb: read(s, 1)\n", "t.sockplay:5:1: no process named 'b'"),
        ("a: ... = 1\n", "t.sockplay:4:1: a has no blocked call"),
        ("a: read(s, 1) ...\nrepeat 2\n  a: read(s, 1) ...\nend\n", "t.sockplay:7:1: a repeated block must state"),
        ("repeat 3\na: read(s, 1)\n", "t.sockplay:4:1: this 'repeat' has no 'end'"),
        ("end\n", "t.sockplay:4:1: 'end' without a 'repeat'"),
        ("a: x = close(s)\n", "t.sockplay:4:4: close returns no socket or process to name"),
    ],
)
def test_errors_name_file_line_and_column(body: str, where: str) -> None:
    with pytest.raises(ScriptError) as info:
        parse(body)
    assert str(info.value).startswith(where)


def test_header_is_required_and_non_utf8_is_refused() -> None:
    with pytest.raises(ScriptError, match=r"x:1:1: the first line must be 'sockplay 1'"):
        parse_script("spawn a\n", "x")
    with pytest.raises(ScriptError, match=r"x:2:3: file is not valid UTF-8"):
        parse_script(b"sockplay 1\n# \xff\xfe\n", "x")


def test_repeat_blocks_hold_their_lines() -> None:
    script = parse('repeat 3\n  a: write(s, "x")\n  a: read(s, 1)\nend\n')
    block = script.lines[-1].node
    assert isinstance(block, Repeat) and block.count == 3 and len(block.lines) == 2
    assert format_node(block) == "repeat 3"


@pytest.mark.parametrize(
    "data",
    [b"", b"plain", b"x" * 65536, b"ab" * 100, b'line\r\n\t"q" \\ \x00\x01\x7f\xff', b"\x001", b"y" * 20 + b"z"],
)
def test_data_reads_back_as_written(data: bytes) -> None:
    text = format_data(data)
    value = parse(f"a: write(s, {text})\n").lines[-1].node.call.args[1].value  # type: ignore[union-attr]
    assert value == data
    assert len(text) < 40 or len(data) < 40


def test_quote_escapes_what_is_not_printable() -> None:
    assert quote(b'a\n"\\\x00') == '"a\\n\\"\\\\\\0"'
    assert [t.kind for t in tokenize('x = f(1, 2.5, "s", 127.0.0.1:1, [::1]:2, A|B, {1, 0})')] == [
        "name",
        "=",
        "name",
        "(",
        "int",
        ",",
        "float",
        ",",
        "string",
        ",",
        "address",
        ",",
        "address",
        ",",
        "name",
        "|",
        "name",
        ",",
        "{",
        "int",
        ",",
        "int",
        "}",
        ")",
    ]


def test_an_end_nobody_saw_is_written_as_a_pending_call_never_as_a_made_up_outcome() -> None:
    """A remote process whose connection dropped: its call never returned to anyone; `= exited ?` reads as nothing."""
    from playground.script.model import Death, Outcome

    script = parse_script("sockplay 1\nspawn s\ns: u = socket(udp)\ns: recv(u, 10) ...\ns: ... = 3\n")
    unseen = Outcome(death=Death("exited", "?"))
    written = [format_node(line.node, unseen) for line in script.lines[2:]]
    assert written == ["s: recv(u, 10) ...", "s: ..."]
    parse_script("sockplay 1\nspawn s\ns: u = socket(udp)\n" + "\n".join(written) + "\n")  # it reads back
    assert format_node(script.lines[2].node, Outcome(death=Death("exited", 3))) == "s: recv(u, 10) = exited 3"


def test_a_path_outcome_with_control_characters_is_written_back_escaped() -> None:
    """Found by the fuzz: `= "aaa\\0\\r\\n"` (an AF_UNIX path where a value goes) was written back raw."""
    text = 'sockplay 1\nspawn s\ns: u = socket(udp)\ns: recv(u, 10) = "a\\0\\r\\n\\"\\\\ é"\n'
    line = parse_script(text).lines[2]
    written = format_node(line.node)
    assert "\n" not in written and "\r" not in written and "\0" not in written
    again = parse_script(f"sockplay 1\nspawn s\ns: u = socket(udp)\n{written}\n").lines[2]
    assert again.node.expect == line.node.expect and format_node(again.node) == written
