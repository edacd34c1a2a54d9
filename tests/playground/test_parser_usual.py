"""The usual-step path (playground/script/usual.py) reads a line as the general parser does, or leaves it to it.

The general parser is the reference: every script in the repository, and
lines built near the edges of what the usual path takes, parse to the same
lines, the same scope and the same errors with it and without it.
"""

from __future__ import annotations

import gc
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from playground.calls import CALLS
from playground.script import parser
from playground.script.errors import LineError, ScriptError
from playground.script.model import Script, Step
from playground.script.parser import ProcessScope, Scope, parse_node, parse_script
from playground.script.usual import usual_step
from tests.helpers import FIRST, PAIR_SCRIPT, REPO
from tests.playground.test_parser_fuzz import RECORDED, REPEATED


def scripts() -> list[tuple[str, str]]:
    found = [(str(p.relative_to(REPO)), p.read_text()) for p in sorted(REPO.glob("playground/**/*.sockplay"))]
    # The contract, where the workplace keeps it, else the repository's copy (as test_script_md reads it).
    doc = next(
        (p for p in (REPO.parent / "shared" / "docs" / "script.md", REPO / "docs" / "script.md") if p.is_file()), None
    )
    if doc is not None:
        for i, block in enumerate(re.findall(r"```\n(.*?)```", doc.read_text(), flags=re.S)):
            if "[+DELAY]" not in block:
                found.append(
                    (f"{doc.name} example {i + 1}", block if block.startswith("sockplay 1") else PAIR_SCRIPT + block)
                )
    return found + [("FIRST", FIRST), ("RECORDED", RECORDED), ("REPEATED", REPEATED)]


def general_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parser, "usual_step", lambda body, scope: None)


def parsed(text: str) -> Script | str:
    try:
        return parse_script(text, "t.sockplay")
    except ScriptError as exc:
        return str(exc)


@pytest.mark.parametrize(("name", "text"), scripts(), ids=[name for name, _ in scripts()])
def test_every_script_parses_the_same_without_the_usual_path(
    name: str, text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast = parsed(text)
    general_only(monkeypatch)
    assert parsed(text) == fast


def a_scope() -> Scope:
    return Scope(
        {
            "a": ProcessScope({"s", "u", "l"}, {"kid"}, 1),
            "kid": ProcessScope({"s", "u", "l"}),
            "server": ProcessScope({"s", "u", "l"}, {"kid"}),
        }
    )


# Arguments each kind takes in a_scope(), and some it does not.
GOOD = {
    "fd": ["s", "u", "l", "3"],
    "size": ["4", "0", "007", "65536"],
    "data": ['"ping"', '""', '"it\'s"', '"= -1 EX (y)"'],
    "addr": ["127.0.0.1:9000", "10.0.0.1:0", "server.l", "s"],
    "kind": ["tcp", "udp6", "AF_INET, SOCK_STREAM"],
    "option": ["SO_REUSEADDR", "TCP_NODELAY", "SO_RCVBUF"],
    "optval": ["1", "0", "4096"],
    "how": ["SHUT_WR", "1"],
    "msgflags": ["MSG_PEEK", "MSG_PEEK|MSG_DONTWAIT|MSG_NOSIGNAL", "0"],
    "events": ["POLLIN|POLLOUT|POLLRDHUP", "0"],
    "timeout": ["0", "100"],
    "signal": ["SIGPIPE", "SIGCHLD"],
    "disposition": ["SIG_IGN", "catch"],
    "pid": ["kid", "4242"],
    "waitflags": ["WNOHANG", "0"],
    "status": ["0", "255"],
    "backlog": ["8", "128"],
    "nonblock": ["O_NONBLOCK"],
    "bit": ["1", "0"],
    "fdset": ["s", "3", "{s, u}", "{}"],
    "epollop": ["EPOLL_CTL_ADD", "EPOLL_CTL_DEL"],
    "epollevents": ["EPOLLIN|EPOLLET", "0"],
    "epollflags": ["0", "EPOLL_CLOEXEC"],
    "maxevents": ["64", "1"],
    "resource": ["RLIMIT_NOFILE"],
    "limits": ["{1024, 4096}"],
    "sockflags": ["SOCK_NONBLOCK", "SOCK_NONBLOCK|SOCK_CLOEXEC", "0"],
}
ODD_ARGS = [
    "x",
    "99999999999",
    "9" * 19,
    "-1",
    "-0",
    "5x",
    "1.5",
    ".5",
    "5.",
    "1.2.3.4:65536",
    "01.2.3.4:5",
    "1.2.3.4:000080",
    "[::1]:80",
    "server.x",
    "server . l",
    "kid.s",
    "a.5",
    "POLLIN | POLLOUT",
    "A|5",
    "MSG_NOPE",
    "SIGKILL",
    "tcp7",
    '"x" * 3',
    '"a" "b"',
    '"a" + "b"',
    '"a,b"',
    '"\\n"',
    '"é"',
    "{1, 0}",
    "a b",
    "",
    "(",
    "é",
]
ODD_PIECES = [" ", "\t", "\r", "\xa0", "\x0b", ",", ".", "..", "...", "|", "=", ":", "(", ")", '"', "-", "-1", "#", "é"]


@st.composite
def usual_lines(draw: st.DrawFn) -> str:
    """Lines the usual path takes, and (one time in two) such a line with one piece it may have to refuse."""
    spec = CALLS[draw(st.sampled_from(sorted(CALLS)))]
    kinds = list(spec.required) + [k for k in spec.optional if draw(st.booleans())]
    if spec.variadic:
        kinds += [spec.variadic] * draw(st.integers(0, 2))
    args = [draw(st.sampled_from(GOOD[k])) for k in kinds]
    space = st.sampled_from(["", " ", " ", "  "])
    line = draw(st.sampled_from(["a", "server", "kid"])) + ":" + draw(space)
    if spec.defines and draw(st.booleans()):
        line += draw(st.sampled_from(["n", "s", "kid2", "x_1"])) + draw(space) + "=" + draw(space)
    line += spec.name + "(" + ("," + draw(space)).join(args) + ")"
    odd = draw(st.integers(0, 7))
    ending = draw(st.integers(0, 4))
    if ending == 0:
        line += draw(space) + "..."
    elif ending > 1:
        line += " " * draw(st.integers(0, 9)) + "=" + draw(space)
        if odd == 3:
            line += draw(
                st.sampled_from(
                    [
                        "-1 EPIPE",
                        "-1 EAGAIN (Try again)",
                        "-01 EPIPE",
                        "4x",
                        "1POLLIN",
                        "1.5",
                        "{1, 0}",
                        "9" * 19,
                        "4 x",
                        '4 "é"',
                        '4 "\\n"',
                        '4 POLLIN "x"',
                        "4 from 127.0.0.1:5",
                        "4 ! SIGPIPE",
                        "4 ...",
                        "1 POLLIN|",
                        "1 POLLIN | POLLOUT",
                        '4 "x" "y"',
                        '4 "x" * 2',
                        "",
                        "1 POLLIN POLLOUT",
                        "exited 0",
                    ]
                )
            )
        else:
            line += draw(st.sampled_from(["0", "1", "4", "007", "-2"]))
            line += draw(st.sampled_from(["", ' "ping"', '"ping"', " POLLOUT", " POLLIN|POLLHUP", '"x" POLLIN']))
    if odd == 1 and args:
        line = line.replace(draw(st.sampled_from(args)), draw(st.sampled_from(ODD_ARGS)), 1)
    elif odd == 2:
        line = draw(st.sampled_from(["nobody", "SIGPIPE", "n x"])) + line[line.index(":") :]
    elif odd == 4:
        at = draw(st.integers(0, len(line)))
        line = line[:at] + draw(st.sampled_from(ODD_PIECES)) + line[at:]
    return line


def node_or_error(body: str, scope: Scope) -> object:
    try:
        return parse_node(body, scope, interactive=False)
    except LineError as exc:
        return (exc.column, exc.message)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(usual_lines())
def test_the_usual_path_gives_the_general_parsers_step_or_leaves_the_line_to_it(line: str) -> None:
    fast_scope, general_scope = a_scope(), a_scope()
    step = usual_step(line, fast_scope)
    with pytest.MonkeyPatch.context() as monkeypatch:
        general_only(monkeypatch)
        general = node_or_error(line, general_scope)
    if step is None:
        assert fast_scope == a_scope()  # refused before it changed anything
    else:
        assert isinstance(general, Step)
        assert (step, fast_scope) == (general, general_scope)


def test_the_usual_path_takes_the_usual_lines() -> None:
    for line in [
        'a: write(s, "ping") = 4',
        'a: read(s, 4) = 4 "ping"',
        "a: poll(s, POLLIN|POLLOUT, 0) = 1 POLLOUT",
        "a: n = accept(l) = 4",
        "a: connect(s, 127.0.0.1:9000) = 0",
        "a: read(s, 10) ...",
        "a: fork()",
    ]:
        assert usual_step(line, a_scope()) is not None, line


def test_the_cycle_collector_is_left_as_it_was() -> None:
    assert gc.isenabled()
    parse_script(FIRST)
    assert gc.isenabled()
    with pytest.raises(ScriptError):
        parse_script("sockplay 1\nbad\n")
    assert gc.isenabled()
    gc.disable()
    try:
        parse_script(FIRST)
        assert not gc.isenabled()
    finally:
        gc.enable()
