"""The parser raises nothing but ScriptError on any input, and what it accepts it can write back.

Arbitrary text, arbitrary bytes, and mutations of valid scripts (the kind of
damage an editor, a crash mid-write or a hostile recording does).
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from playground.script.errors import ScriptError
from playground.script.format import format_node
from playground.script.model import Repeat, Script
from playground.script.parser import parse_script
from tests.helpers import FIRST

RECORDED = """# sockplay session: every step with its outcome, as it happened.
#@ sockplay-version: 0.1.0
#@ kernel: 6.18.0
#@ sysctl net.ipv4.tcp_rmem: 4096 131072 6291456
sockplay 1
spawn server                                 # pid 4242
#@ wait 0.5
spawn client                                 # pid 4243
server: l = socket(tcp6) = 3                 # 20 µs
server: setsockopt(l, SO_LINGER, {1, 0}) = 0
server: setsockopt(l, SO_RCVTIMEO, 0.25) = 0
server: bind(l, [::1]:0) = 0
server: listen(l, 8) = 0
server: getsockname(l) = [::1]:40000
client: c = socket(AF_INET6, SOCK_STREAM, 0) = 3
+1.5 client: connect(c, server.l) = 0
server: a = accept(l) = 4 from [::1]:51000
server: read(a, 100) ...
client: writev(c, "a" * 3, "\\x00\\r\\n\\"") = 7
server: ... = 7 "aaa\\0\\r\\n\\"" ! SIGCHLD
server: kid = fork() = 4250
kid: poll(a, POLLIN|POLLOUT, 100) = 1 POLLOUT
kid: recv(a, 10, MSG_PEEK|MSG_DONTWAIT) = -1 EAGAIN (Resource temporarily unavailable)
kid: exit(3) = exited 3
# kid exited 3 (a zombie until its parent reaps it)
server: waitpid(kid, WNOHANG) = 4250 exited 3
server: fcntl(a, O_NONBLOCK, 1) = 0
server: shutdown(a, SHUT_WR) = 0
client: u = socket(udp) = 4
client: sendto(u, "x" * 70000, 127.0.0.1:9, MSG_NOSIGNAL) = -1 EMSGSIZE
client: recvfrom(u, 10) ...
kill client SIGKILL
client: ... = killed SIGKILL
"""

REPEATED = """sockplay 1
spawn a
a: u = socket(udp)
a: bind(u, 127.0.0.1:0)
repeat 3
  a: sendto(u, "x", a.u) = 1
  a: recvfrom(u, 10) = 1 "x"
end
"""

SEEDS = [FIRST, RECORDED, REPEATED]

# Pieces the mutations insert: the script's own punctuation and words, and trouble.
PIECES = list('abcdeklnrsuvwxyz:=()[],.+-*!|{}"\\#~> \t\n0123456789') + [
    "...",
    "sockplay 1\n",
    "sockplay 2\n",
    "\x00",
    "é",
    "\r",
    "\ufeff",
    "9" * 30,
    "9" * 5000,
    "1.2.3.4:",
    "[::1]:",
    "[",
    "repeat 2\n",
    "end\n",
    "spawn x\n",
    "kill ",
    "sleep ",
    "-1 ",
    "EPIPE",
    "SIGPIPE",
    "killed ",
    "exited ",
    '"\\x',
    '"\\0',
    '"\\777"',
    '"x" * ',
    "\\",
    "0.0000001",
    "1e9",
    "+",
    "server.",
    "fork()",
]

settings_ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def parse_or_script_error(text: str | bytes, lenient: bool = False) -> Script | None:
    try:
        return parse_script(text, "fuzz.sockplay", allow_truncated_tail=lenient)
    except ScriptError as exc:
        assert exc.line >= 1 and exc.column >= 1
        assert str(exc).startswith(f"fuzz.sockplay:{exc.line}:{exc.column}: ")
        return None


def written_back(script: Script) -> str:
    lines = ["sockplay 1"]
    for line in script.lines:
        if isinstance(line.node, Repeat):
            lines.append(f"repeat {line.node.count}")
            lines.extend(format_node(inner.node) for inner in line.node.lines)
            lines.append("end")
        else:
            lines.append(format_node(line.node))
    return "\n".join(lines) + "\n"


@st.composite
def mutated(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, len(text)))
        op = draw(st.sampled_from(["insert", "delete", "copy", "cut", "swap"]))
        if op == "insert":
            text = text[:pos] + draw(st.sampled_from(PIECES) | st.text(max_size=3)) + text[pos:]
        elif op == "delete":
            text = text[:pos] + text[pos + draw(st.integers(1, 12)) :]
        elif op == "copy":
            start = draw(st.integers(0, len(text)))
            text = text[:pos] + text[start : start + draw(st.integers(1, 40))] + text[pos:]
        elif op == "cut":
            text = text[:pos]
        else:
            lines = text.split("\n")
            i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
            text = "\n".join(lines)
    return text


def test_the_seeds_parse() -> None:
    for seed in SEEDS:
        assert parse_script(seed, "seed").lines


@settings_
@given(st.text(max_size=400))
def test_any_text_parses_or_raises_script_error(text: str) -> None:
    parse_or_script_error(text)
    parse_or_script_error("sockplay 1\n" + text)
    parse_or_script_error("sockplay 1\nspawn server\nspawn client\n" + text, lenient=True)


@settings_
@given(st.binary(max_size=400))
def test_any_bytes_parse_or_raise_script_error(data: bytes) -> None:
    parse_or_script_error(data)
    parse_or_script_error(b"sockplay 1\nspawn a\n" + data, lenient=True)


@settings_
@given(mutated())
def test_mutated_scripts_parse_or_raise_script_error_and_write_back(text: str) -> None:
    for lenient in (False, True):
        script = parse_or_script_error(text, lenient)
        if script is None:
            continue
        # What was accepted is written back as lines that parse to the same lines.
        again = written_back(script)
        assert written_back(parse_script(again, "again")) == again
    parse_or_script_error(text.encode("utf-8", "surrogatepass"))


@settings_
@given(st.sampled_from([FIRST, RECORDED]), st.data())
def test_a_script_cut_mid_line_replays_what_comes_before(seed: str, data: st.DataObject) -> None:
    body = seed.index("sockplay 1\n") + len("sockplay 1\n")
    cut = data.draw(st.integers(body, len(seed) - 1))
    text = seed[:cut]
    whole = parse_script(seed, "whole")
    script = parse_script(text, "cut", allow_truncated_tail=True)
    complete = text[: text.rfind("\n") + 1].count("\n")  # lines that end before the cut
    kept = [line.number for line in script.lines]
    assert kept == [line.number for line in whole.lines][: len(kept)]
    assert all(n <= complete for n in kept) or (not text.endswith("\n") and kept[-1] == complete + 1)
    assert len([line for line in whole.lines if line.number <= complete]) <= len(kept)
    if script.truncated is not None:
        assert script.truncated == complete + 1
        try:
            parse_script(text, "cut")
        except ScriptError as exc:
            assert exc.line == complete + 1 and "ends in the middle of this line" in exc.message
        else:
            raise AssertionError("a cut-off last line must be an error without allow_truncated_tail")


def test_cut_off_last_line_is_named_and_skipped_when_asked() -> None:
    text = "sockplay 1\nspawn a\na: s = socket(tcp) = 3\na: bind(s, 127.0."
    try:
        parse_script(text, "rec.sockplay")
    except ScriptError as exc:
        assert (exc.line, exc.path) == (4, "rec.sockplay")
        assert "ends in the middle of this line" in str(exc)
    else:
        raise AssertionError("expected a ScriptError")
    script = parse_script(text, "rec.sockplay", allow_truncated_tail=True)
    assert [line.number for line in script.lines] == [2, 3] and script.truncated == 4
    # A bad line that is not the last, or a last line that ends with a newline, is no cut.
    for bad in ("sockplay 1\nspawn a\na: bind(s, 127.0.\nspawn b", "sockplay 1\nspawn a\na: bind(s, 127.0.\n"):
        try:
            parse_script(bad, "x", allow_truncated_tail=True)
        except ScriptError as exc:
            assert exc.line == 3 and "middle of this line" not in exc.message
        else:
            raise AssertionError("expected a ScriptError")


def test_bad_files_get_errors_naming_the_line() -> None:
    cases = [
        (b"sockplay 2\n", 1, "format version 2 is not supported"),
        (b'# hi\n\nsockplay 1\nspawn a\na: write(3, "\xff")\n', 5, "not valid UTF-8"),
        (b"sockplay 1\n" + b"#" * (64 * 1024 * 1024), 1, "larger than"),
        (b"sockplay 1\nspawn a\n" + b"a: read(3, 1) " + b" " * (1024 * 1024) + b"\n", 3, "longer than"),
        (b"sockplay 1\nspawn a\na: s = socket(tcp)\na: bind(s, 127.0.0.1:" + b"9" * 5000 + b")\n", 4, "port"),
        (b'sockplay 1\nspawn a\na: write(3, "" * ' + b"9" * 30 + b")\n", 3, "repeat count"),
        (b"sockplay 1\nsleep " + b"9" * 400 + b".5\n", 2, "too large"),
    ]
    for data, line, words in cases:
        try:
            parse_script(data, "f")
        except ScriptError as exc:
            assert exc.line == line and words in exc.message, (exc, words)
        else:
            raise AssertionError(f"{data[:40]!r} parsed")
