"""`spawn NAME exec [--trace] COMMAND ARG...` and observed lines `#> PROC: ...`: how they read and write back."""

from __future__ import annotations

import pytest

from playground.script.errors import ScriptError
from playground.script.exec_line import MAX_EXEC_WORDS
from playground.script.format import format_node
from playground.script.model import Observed, Spawn
from playground.script.parser import parse_script


def parsed(body: str) -> list:
    return [line.node for line in parse_script("sockplay 1\n" + body).lines]


def error_of(body: str) -> str:
    with pytest.raises(ScriptError) as caught:
        parse_script("sockplay 1\n" + body)
    return str(caught.value)


def test_exec_words_are_the_programs_argv_as_written() -> None:
    (node,) = parsed("spawn web exec --trace python3 -m http.server 8000 --bind 127.0.0.1\n")
    assert node == Spawn(
        "web", None, command=("python3", "-m", "http.server", "8000", "--bind", "127.0.0.1"), trace=True
    )


def test_a_quoted_word_holds_blanks_escapes_and_shell_characters_unexpanded() -> None:
    (node,) = parsed('+0.5 spawn p exec printf "%s|%s\\n" "a b" "$HOME;rm -rf /" ""\n')
    assert node.delay == 0.5
    assert node.command == ("printf", "%s|%s\n", "a b", "$HOME;rm -rf /", "")
    assert node.trace is False


@pytest.mark.parametrize(
    "line",
    [
        "spawn web exec --trace python3 -m http.server 8000 --bind 127.0.0.1",
        'spawn p exec printf "a b\\n" "" "\\x1b[31m" "x#y"',
        "+0.25 spawn c exec ./client 127.0.0.1:7000",
    ],
)
def test_an_exec_line_writes_back_as_it_reads(line: str) -> None:
    (node,) = parsed(line + "\n")
    assert format_node(node) == line
    assert parsed(format_node(node) + "\n") == [node]


@pytest.mark.parametrize(
    ("body", "column", "words"),
    [
        ("spawn web exec", 15, "exec needs a program"),
        ("spawn web exec --trace", 23, "exec needs a program"),
        ("spawn web exec -x ls", 16, "unknown option '-x'"),
        ('spawn w exec a"b', 15, "a quote starts a word of its own"),
        ('spawn w exec "a\\0"', 14, "cannot hold a NUL byte"),
        ("spawn Web exec ls", 7, "is not a process name"),
        ("spawn kill exec ls", 7, "reserved word"),
        ("spawn w exec ls\nspawn w exec ls", 7, "already exists"),
    ],
)
def test_a_bad_exec_line_is_an_error_naming_its_column(body: str, column: int, words: str) -> None:
    message = error_of(body + "\n")
    assert f":{column}: " in message and words in message


def test_too_many_words_are_refused() -> None:
    assert "at most" in error_of("spawn w exec " + " ".join(["x"] * (MAX_EXEC_WORDS + 1)) + "\n")


def test_an_outside_program_takes_no_steps() -> None:
    for step in ("web: c = socket(tcp)", "web: close(3) = 0", "web: read(3, 10) ..."):
        message = error_of(f"spawn web exec ls\n{step}\n")
        assert ":3:1: web is an outside program (spawn ... exec): it takes no steps" in message


def test_an_outside_program_can_be_killed_and_checked() -> None:
    nodes = parsed("spawn web exec sleep 5\nkill web SIGKILL\nstate web exited\n")
    assert [type(n).__name__ for n in nodes] == ["Spawn", "Kill", "StateCheck"]


def test_observed_lines_are_kept_as_text_never_as_steps() -> None:
    nodes = parsed(
        "spawn web exec ls\n"
        "#> web: accept4(3, ...) = 4 from 127.0.0.1:40312\n"
        '#> web[1234]:   sendto(4, "x", 1, 0) = -1 EPIPE (Broken pipe) ! SIGPIPE\n'
        '#> ghost: anything at all ) ( = "\n'
    )
    assert nodes[1:] == [
        Observed("web", "accept4(3, ...) = 4 from 127.0.0.1:40312"),
        Observed("web[1234]", 'sendto(4, "x", 1, 0) = -1 EPIPE (Broken pipe) ! SIGPIPE'),
        Observed("ghost", 'anything at all ) ( = "'),
    ]
    assert format_node(nodes[1]) == "#> web: accept4(3, ...) = 4 from 127.0.0.1:40312"


def test_an_observed_line_never_carries_a_control_character() -> None:
    (node,) = parsed('#> web: write(1, "\x1b]0;owned\x07\u202e") = 3\n')
    assert node.text == 'write(1, "\\x1b]0;owned\\x07\\u202e") = 3'
    assert node.text.isprintable()


def test_a_malformed_observed_line_is_an_error() -> None:
    assert ":2:1: an observed line reads '#> PROC: CALL = OUTCOME'" in error_of("#> no colon here\n")


def test_a_plain_comment_is_still_a_comment() -> None:
    assert parsed("# > not observed\n#not observed either\nsleep 0\n") == [parsed("sleep 0\n")[0]]
