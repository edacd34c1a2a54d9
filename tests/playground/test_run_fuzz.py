"""Fuzzed scripts run through `sockplay run`: a real subprocess, bounded in time and memory.

Whatever the script, sockplay exits 0, 1 or 2, prints no traceback, and leaves
no process behind. The scripts are made of lines that run (sockets, blocked
calls, forks, kills, repeats, big data) and the damage an editor or an attacker
does to them. Each run takes a fraction of a second, so the examples are few:
the parser's own fuzzing (test_parser_fuzz.py) covers the text at length.
"""

from __future__ import annotations

import json
import subprocess
import sys

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import REPO

MEMORY_LIMIT = 2 * 1024**3  # RLIMIT_AS of sockplay and so of its lab processes
RUN_TIMEOUT = 40.0  # seconds for one run; a hang is a failure

# A connected pair and a UDP socket, then lines drawn from BODY (which use only these names).
PREAMBLE = [
    "sockplay 1",
    "spawn a",
    "spawn b",
    "a: s = socket(tcp) = 3",
    "a: bind(s, 127.0.0.1:0) = 0",
    "a: listen(s, 8) = 0",
    "b: c = socket(tcp)",
    "b: connect(c, a.s) = 0",
    "a: x = accept(s)",
    "a: u = socket(udp)",
]
BODY = [
    'b: write(c, "ping" * 3) = 12',
    'b: send(c, "x" * 100000, MSG_DONTWAIT)',
    'b: writev(c, "a", "network programming" * 100000)',
    "a: read(x, 100)",
    "a: read(x, 1000000) = 12",
    "a: recv(x, 10, MSG_DONTWAIT) = -1 EAGAIN (Resource temporarily unavailable)",
    "a: recv(x, 10, MSG_PEEK|MSG_DONTWAIT)",
    "a: poll(x, POLLIN, 10)",
    "b: shutdown(c, SHUT_WR) = 0",
    "b: close(c) = 0",
    "a: close(x)",
    'a: sendto(u, "x", 127.0.0.1:9)',
    'a: sendto(u, "\\x00\\xff" * 1000, a.u)',
    "a: recvfrom(u, 10, MSG_DONTWAIT)",
    "a: getsockname(s)",
    "b: getpeername(c)",
    "b: signal(SIGPIPE, SIG_IGN) = 0",
    'a: write(x, "y")',
    "a: close(3)",
    'a: write(4, "x")',
    "a: dup(s)",
    "a: setsockopt(x, SO_LINGER, {1, 0}) = 0",
    "b: exit(3)",
    "kill b",
    "kill a SIGKILL",
    "sleep 0.01",
    "~ nothing",
    "~ b.c > a.x FIN",
    "state a.s LISTEN",
    "state b.c ESTABLISHED",
    "# a comment",
    "",
]
DAMAGE = st.sampled_from(list('"()=,|{}*+:!~>#.\\ x%[]\t') + ["...", "\\x", "-1", "\x00", "é"])


def _damaged(draw: st.DrawFn, line: str) -> str:
    at = draw(st.integers(0, len(line)))
    if draw(st.booleans()):
        return line[:at] + draw(DAMAGE) + line[at:]
    return line[:at] + line[at + 1 :]


@st.composite
def scripts(draw: st.DrawFn) -> str:
    lines = list(PREAMBLE)
    for line in draw(st.lists(st.sampled_from(BODY), min_size=1, max_size=10)):
        lines.append(_damaged(draw, line) if line and draw(st.integers(0, 7)) == 0 else line)
    if draw(st.integers(0, 5)) == 0:  # now and then, the whole script, damaged anywhere
        at = draw(st.integers(0, len(lines) - 1))
        lines[at] = _damaged(draw, lines[at])
    return "\n".join(lines) + "\n"


# Runs sockplay as a child subreaper would: the lab processes that sockplay leaves
# behind come to this wrapper, which reports them (then ends them) after sockplay exits.
WRAPPER = """
import ctypes, json, os, resource, signal, subprocess, sys, time
ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
limit = int(sys.argv[1])
def bound():
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
script = sys.stdin.buffer.read()
try:
    run = subprocess.run(sys.argv[3:], input=script, capture_output=True, preexec_fn=bound, timeout=float(sys.argv[2]))
    rc, err = run.returncode, run.stderr.decode("utf-8", "replace")
except subprocess.TimeoutExpired as exc:
    rc, err = "timeout", (exc.stderr or b"").decode("utf-8", "replace")
def alive_children():
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = open(f"/proc/{entry}/stat").read()
            except OSError:
                continue
            fields = stat[stat.rfind(")") + 2 :].split()
            if int(fields[1]) == os.getpid() and fields[0] != "Z":
                out.append(int(entry))
    return out
deadline = time.monotonic() + 3.0  # a dying process may take a moment to be gone
left = alive_children()
while left and time.monotonic() < deadline:
    while True:
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0:
                break
        except ChildProcessError:
            break
    time.sleep(0.02)
    left = alive_children()
for pid in left:
    os.kill(pid, signal.SIGKILL)
print(json.dumps({"rc": rc, "stderr": err[-4000:], "left": left}))
"""


SOCKPLAY_RUN = [sys.executable, "-m", "playground.cli", "run", "--timeout", "0.5", "-"]


def run_bounded(script: str, command: list[str] = SOCKPLAY_RUN) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", WRAPPER, str(MEMORY_LIMIT), str(RUN_TIMEOUT), *command],
        cwd=REPO,
        input=script,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT + 15,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scripts())
def test_fuzzed_scripts_run_and_exit_cleanly(script: str) -> None:
    outcome = run_bounded(script)
    assert outcome["rc"] in (0, 1, 2), (outcome, script)
    assert "Traceback" not in outcome["stderr"], (outcome["stderr"], script)
    assert outcome["left"] == [], (outcome, script)


def test_the_wrapper_sees_a_process_left_behind() -> None:
    """The check can fail: a process that outlives its parent comes to the wrapper and is reported."""
    leaked = run_bounded("", ["sh", "-c", "sleep 60 >/dev/null 2>&1 &"])
    assert leaked["rc"] == 0 and len(leaked["left"]) == 1
    clean = run_bounded("sockplay 1\nspawn a\nspawn b\na: k = fork()\n")
    assert clean["rc"] == 0 and clean["left"] == [], clean
