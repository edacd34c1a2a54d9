"""`sockplay export --python` of issue 13's further calls: the program makes them and prints what the lab does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from playground.runner import run_script
from playground.script.parser import parse_script
from tests.helpers import REPO
from tests.playground.test_export import export, printed, run_program

MORE = """sockplay 1
spawn a
spawn b
a: x, y = socketpair(unix)                     = {3, 4}
a: u = socket(unix)                            = 5
a: bind(u, "srv.sock")                         = 0
a: listen(u, 4)                                = 0
a: getsockname(u)                              = "srv.sock"
b: c = socket(unix)                            = 3
b: connect(c, a.u)                             = 0
a: s = accept4(u, SOCK_NONBLOCK|SOCK_CLOEXEC)  = 6
a: read(s, 10)                                 = -1 EAGAIN
a: sendmsg(s, "fd", x)                         = 2
b: f = recvmsg(c, 100)                         = 2 "fd" from "srv.sock" rights {4}
b: write(f, "hi")                              = 2
a: readv(y, 1, 10)                             = 2 "hi"
a: d = socket(unix_dgram)                      = 7
a: bind(d, "d.sock")                           = 0
b: e = socket(unix_dgram)                      = 5
b: bind(e, "e.sock")                           = 0
b: sendto(e, "dg", a.d)                        = 2
a: recvfrom(d, 10)                             = 2 "dg" from "e.sock"
a: setrlimit(RLIMIT_NOFILE, {9, 4096})         = 0
a: getrlimit(RLIMIT_NOFILE)                    = {9, 4096}
a: socket(tcp)                                 = 8
a: socket(tcp)                                 = -1 EMFILE
a: setrlimit(RLIMIT_NOFILE, {4096, 1024})      = -1 EINVAL
b: g = socket(udp)                             = 6
b: bind(g, 127.0.0.1:0)                        = 0
b: close(g)                                    = 0
b: r = socket(udp)                             = 6
b: setsockopt(r, IP_RECVERR, 1)                = 0
b: sendto(r, "x", b.g)                         = 1
b: poll(r, POLLIN, 1000)                       = 1 POLLERR
b: recvfrom(r, 10)                             = -1 ECONNREFUSED
b: t = socket(tcp)                             = 7
b: setsockopt(t, TCP_SYNCNT, 2)                = 0
b: getsockopt(t, TCP_SYNCNT)                   = 2
"""


async def test_the_script_runs_in_the_lab_as_stated() -> None:
    report = await run_script(parse_script(MORE))
    assert [(s.line.number, s.divergence or s.error) for s in report.divergences] == []


def test_the_exported_program_makes_the_same_calls_with_the_same_outcomes(tmp_path: Path) -> None:
    program, made = export(tmp_path, MORE)
    assert made.returncode == 0, made.stderr
    result = run_program(program)
    assert result.returncode == 0, result.stderr
    stated = [" ".join(line.split()) for line in MORE.splitlines()]
    got = [" ".join(line.replace(" (errno", "\0").split("\0")[0].split()) for line in printed(result)]
    assert got == stated
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".sock")]  # its paths were its own


def test_tcp_info_is_refused_with_a_reason(tmp_path: Path) -> None:
    _, made = export(tmp_path, "sockplay 1\nspawn a\na: s = socket(tcp)\na: getsockopt(s, TCP_INFO)\n")
    assert made.returncode == 2 and "TCP_INFO" in made.stderr and "Traceback" not in made.stderr


def test_so_meminfo_is_refused_with_a_reason(tmp_path: Path) -> None:
    _, made = export(tmp_path, "sockplay 1\nspawn a\na: s = socket(tcp)\na: getsockopt(s, SO_MEMINFO)\n")
    assert made.returncode == 2 and "SO_MEMINFO" in made.stderr and "Traceback" not in made.stderr


def test_run_json_gives_rights_and_tcp_info_fields(tmp_path: Path) -> None:
    script = tmp_path / "j.sockplay"
    script.write_text(
        'sockplay 1\nspawn a\na: x, y = socketpair(unix)\na: sendmsg(x, "m", x, y)\na: f, g = recvmsg(y, 10)\n'
        "a: l = socket(tcp)\na: bind(l, 127.0.0.1:0)\na: listen(l, 1)\na: getsockopt(l, TCP_INFO)\n"
    )
    ran = subprocess.run(
        [sys.executable, "-m", "playground.cli", "run", "--json", str(script)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ran.returncode == 0, ran.stderr
    steps = {row["call"]: row for row in map(json.loads, ran.stdout.splitlines()) if "call" in row}
    assert steps["recvmsg"]["rights"] == [5, 6]
    assert steps["getsockopt"]["fields"]["state"] == "LISTEN"
