"""`sockplay export --python`: a standalone program that makes the same calls and prints each outcome."""

from __future__ import annotations

import ast
import os
import re
import stat
import subprocess
import sys
import time
from pathlib import Path

from tests.helpers import FIRST, REPO, process_state

# Blocking calls pending while later steps run, a forked child, waitpid, SIGPIPE's default,
# options, UDP and IPv6: what the exported program must do as the lab does.
TOUR = """sockplay 1
spawn server
spawn client
server: u = socket(udp)                        = 3
server: bind(u, 127.0.0.1:0)                   = 0
client: v = socket(AF_INET, SOCK_DGRAM, 0)     = 3
client: sendto(v, "dgram\\n", server.u)        = 6
server: poll(u, POLLIN|POLLOUT, 100)           = 1 POLLIN|POLLOUT
server: recvfrom(u, 100)                       = 6 "dgram\\n"
server: recv(u, 10, MSG_DONTWAIT)              = -1 EAGAIN
server: l = socket(tcp6)                       = 4
server: setsockopt(l, SO_LINGER, {1, 0})       = 0
server: getsockopt(l, SO_LINGER)               = {1, 0}
server: setsockopt(l, TCP_NODELAY, 1)          = 0
server: getsockopt(l, TCP_NODELAY)             = 1
server: bind(l, [::1]:0)                       = 0
server: listen(l, 4)                           = 0
server: fcntl(l, O_NONBLOCK, 1)                = 0
server: fcntl(l, O_NONBLOCK)                   = 1
server: accept(l)                              = -1 EAGAIN
client: c = socket(tcp6)                       = 4
client: connect(c, server.l)                   = 0
server: a = accept(l)                          = 5
server: d = dup(a)                             = 6
client: writev(c, "ab", "cdcdcd")             = 8
server: read(d, 100)                           = 8 "abcdcdcd"
server: signal(SIGCHLD, catch)                 = 0
server: kid = fork()
kid: read(a, 10) ...
client: send(c, "\\0\\x01z", MSG_NOSIGNAL)     = 3
kid: ... = 3 "\\0\\x01z"
kid: exit(7)                                   = exited 7
sleep 0.05
server: waitpid(-1, WNOHANG)                   = 1 exited 7
server: waitpid(-1, WNOHANG)                   = -1 ECHILD
server: close(d)                               = 0
server: close(d)                               = -1 EBADF
server: shutdown(a, SHUT_WR)                   = 0
client: read(c, 10)                            = 0
server: write(a, "x")                          = killed SIGPIPE
"""


def export(tmp_path: Path, text: str, *extra: str) -> tuple[Path, subprocess.CompletedProcess[str]]:
    script = tmp_path / "experiment.sockplay"
    script.write_text(text)
    program = tmp_path / "experiment.py"
    result = subprocess.run(
        [sys.executable, "-m", "playground.cli", "export", str(script), "--python", "-o", str(program), *extra],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return program, result


def run_program(program: Path) -> subprocess.CompletedProcess[str]:
    # Run as a learner would: `python3` alone, outside the project, with nothing of sockplay importable.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
    python = "python3" if subprocess.run(["python3", "-c", ""], capture_output=True).returncode == 0 else sys.executable
    return subprocess.run(
        [python, program.name, "0"], cwd=program.parent, capture_output=True, text=True, timeout=60, env=env
    )


def printed(result: subprocess.CompletedProcess[str]) -> list[str]:
    """The program's lines without comments and durations."""
    return [re.sub(r"\s+# .*$", "", line) for line in result.stdout.splitlines() if not line.startswith("#")]


def test_the_first_example_runs_standalone_with_its_outcomes(tmp_path: Path) -> None:
    program, made = export(tmp_path, FIRST)
    assert made.returncode == 0, made.stderr
    result = run_program(program)
    assert result.returncode == 0, result.stderr
    lines = printed(result)
    assert lines[0] == "sockplay 1"
    assert lines[1:3] == ["spawn server", "spawn client"]
    assert lines[3:12] == [
        "server: l = socket(tcp) = 3",
        "server: setsockopt(l, SO_REUSEADDR, 1) = 0",
        "server: bind(l, 127.0.0.1:0) = 0",
        "server: listen(l, 8) = 0",
        "server: signal(SIGPIPE, catch) = 0",
        "client: c = socket(tcp) = 3",
        "client: connect(c, server.l) = 0",
        lines[10],
        "client: close(c) = 0",
    ]
    assert re.fullmatch(r"server: a = accept\(l\) = 4 from 127\.0\.0\.1:\d+", lines[10])
    assert lines[12:] == [
        "server: read(a, 100) = 0",
        'server: write(a, "ping") = 4',
        "sleep 0.05",
        'server: write(a, "ping") = -1 EPIPE (errno 32, Broken pipe) ! SIGPIPE',
    ]
    # The program's output is itself a script that sockplay can check.
    again = tmp_path / "again.sockplay"
    again.write_text(result.stdout)
    check = subprocess.run(
        [sys.executable, "-m", "playground.cli", "replay", "--check", str(again)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 0, check.stderr


def test_the_tour_blocks_forks_and_dies_as_the_lab_does(tmp_path: Path) -> None:
    program, made = export(tmp_path, TOUR)
    assert made.returncode == 0, made.stderr
    result = run_program(program)
    assert result.returncode == 0, result.stderr
    lines = printed(result)
    expected = [re.sub(r"\s+=", " =", re.sub(r"\s+", " ", line)) for line in TOUR.splitlines()[1:]]
    pid_lines = {i for i, line in enumerate(expected) if "fork()" in line or "waitpid(-1" in line}
    for i, (want, got) in enumerate(zip(expected, lines[1:], strict=True)):
        want = want.replace("EAGAIN", "EAGAIN (errno 11, Resource temporarily unavailable)")
        want = want.replace("ECHILD", "ECHILD (errno 10, No child processes)")
        want = want.replace("EBADF", "EBADF (errno 9, Bad file descriptor)")
        if i in pid_lines:
            pattern = re.escape(want.replace("= 1 exited", "= PID exited")).replace("PID", r"\d+")
            assert re.fullmatch(pattern + r"( = \d+)?", got), (want, got)
        elif " from " in got:
            assert got.startswith(want + " from "), (want, got)
        else:
            assert got == want, (want, got)
    comments = [line for line in result.stdout.splitlines() if line.startswith("# ")]
    assert "# kid exited 7 (a zombie until its parent reaps it)" in comments
    assert "# server caught SIGCHLD between calls" in comments
    assert "# server killed SIGPIPE" in comments
    # It leaves no process behind.
    pids = [int(p) for p in re.findall(r"# pid (\d+)|fork\(\) = (\d+)", result.stdout) for p in p if p]
    assert len(pids) == 3
    deadline = time.monotonic() + 5
    while any(process_state(pid) not in (None, "Z") for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert all(process_state(pid) in (None, "Z") for pid in pids)


def test_the_program_is_readable_and_stdlib_only(tmp_path: Path) -> None:
    program, made = export(tmp_path, TOUR)
    assert made.returncode == 0, made.stderr
    source = program.read_text()
    assert source.startswith("#!/usr/bin/env python3\n") and os.access(program, os.X_OK)
    tree = ast.parse(source)
    modules = {
        alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    }
    modules |= {
        node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    }
    assert modules <= set(sys.stdlib_module_names), modules - set(sys.stdlib_module_names)
    # One commented block per step: the script's line, then the call as Python makes it.
    assert (
        "# ── line 12: server: setsockopt(l, SO_LINGER, {1, 0}) = 0\n"
        '@step(12, "server", "setsockopt(l, SO_LINGER, {1, 0})")\n'
        "def _(me):\n"
        "    return setsockopt(me.l, SOL_SOCKET, SO_LINGER, (1, 0))\n" in source
    )
    assert '    return connect(me.c, at["server.l"])\n' in source
    assert '    me.kid = fork(me, "kid")\n' in source
    assert '    return send(me.c, b"\\x00\\x01z", MSG_NOSIGNAL)\n' in source
    assert 'outcome(31, "kid")' in source
    # The experiment runs again from a file written to standard output.
    stdout = subprocess.run(
        [sys.executable, "-m", "playground.cli", "export", str(tmp_path / "experiment.sockplay"), "--python"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    undated = re.compile(r" on \d{4}-\d\d-\d\d \d\d:\d\d")
    assert stdout.returncode == 0 and undated.sub("", stdout.stdout) == undated.sub("", source)


def test_export_refuses_what_it_cannot_or_should_not_write(tmp_path: Path) -> None:
    script = tmp_path / "far.sockplay"
    script.write_text("sockplay 1\nspawn a\na: s = socket(tcp)\na: connect(s, 192.0.2.1:80)\n")
    far = subprocess.run(
        [sys.executable, "-m", "playground.cli", "export", str(script), "--python"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert far.returncode == 2 and "would connect to 192.0.2.1:80" in far.stderr and far.stdout == ""
    bare = subprocess.run(
        [sys.executable, "-m", "playground.cli", "export", str(script)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bare.returncode == 2 and "--python" in bare.stderr


CLAIMS = """sockplay 1
spawn server
spawn client
server: l = socket(tcp) = 3
server: bind(l, 127.0.0.1:0) = 0
server: listen(l, 8) = 0
client: c = socket(tcp) = 3
client: connect(c, server.l) = 0
server: a = accept(l) = 4
server: read(a, 10) ...
+0.05 client: write(c, "hi") = 2 within 1s
server: ... = 2 "hi" after 30ms
client: write(c, "x") = 1
server: read(a, 10) = 1 "x" after 30ms
server: kid = fork() = 4242
kid: exit(0) = exited 0
state kid zombie
server: waitpid(-1, 0) = 4242 exited 0
state kid exited
"""


def test_timing_claims_and_process_states_are_exported(tmp_path: Path) -> None:
    program, made = export(tmp_path, CLAIMS)
    assert made.returncode == 0, made.stderr
    compile(program.read_text(), str(program), "exec")
    result = run_program(program)
    assert result.returncode == 0, result.stderr
    out = result.stdout.splitlines()
    lines = printed(result)
    # The claim stays after the outcome (the output is a script sockplay can check) and is judged.
    assert 'server: ... = 2 "hi" after 30ms' in lines
    assert 'server: read(a, 10) = 1 "x" after 30ms' in lines
    assert "# after 30ms: holds" in out
    assert any(line.startswith("# after 30ms: does not hold, took ") for line in out)
    assert lines[-3:] == ["state kid zombie", lines[-2], "state kid exited"]


def test_export_writes_only_a_regular_file_and_never_changes_another_files_mode(tmp_path: Path) -> None:
    script = tmp_path / "experiment.sockplay"
    script.write_text(FIRST)

    def export_to(target: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "playground.cli", "export", str(script), "--python", "-o", str(target)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )

    # A symlink to a file: neither followed nor replaced, the file's mode and text unchanged.
    victim = tmp_path / "victim.txt"
    victim.write_text("mine\n")
    victim.chmod(0o600)
    link = tmp_path / "link.py"
    link.symlink_to(victim)
    refused = export_to(link)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and "symbolic link" in refused.stderr
    assert victim.read_text() == "mine\n" and stat.S_IMODE(victim.stat().st_mode) == 0o600 and link.is_symlink()
    # A device node (as root, `-o /dev/null` used to make /dev/null 0755) and a FIFO: left alone, no hang.
    device = tmp_path / "null"
    os.mknod(device, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    device.chmod(0o666)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo, 0o644)
    for target in (device, fifo, tmp_path):
        refused = export_to(target)
        assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and "regular file" in refused.stderr
    assert stat.S_IMODE(device.stat().st_mode) == 0o666 and stat.S_ISCHR(device.stat().st_mode)
    assert stat.S_IMODE(fifo.stat().st_mode) == 0o644
    # A missing directory: one clear line.
    missing = export_to(tmp_path / "no" / "such.py")
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "does not exist" in missing.stderr
    # A regular file is replaced by the new program, executable; nothing else is left beside it.
    old = tmp_path / "old.py"
    old.write_text("old\n")
    written = export_to(old)
    assert written.returncode == 0, written.stderr
    assert old.read_text().startswith("#!/usr/bin/env python3\n") and os.access(old, os.X_OK)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["experiment.sockplay", "victim.txt", "link.py", "null", "fifo", "old.py"]
    )


def test_threads_are_exported_as_threads_of_their_process(tmp_path: Path) -> None:
    lesson = REPO / "playground/lessons/17-thread-per-connection.sockplay"
    program, made = export(tmp_path, lesson.read_text())
    assert made.returncode == 0, made.stderr
    result = run_program(program)
    assert result.returncode == 0, result.stderr
    lines = printed(result)
    assert "thread for-alice in server" in lines and "thread for-bob in server" in lines
    # Each thread's read waits for its own client, while the main thread goes on.
    bob_read = lines.index('for-bob: ... = 8 "from bob"')
    assert lines.index("server: poll(l, POLLIN, 0) = 0") < bob_read < lines.index('for-alice: ... = 10 "from alice"')
    assert "for-bob: s = socket(tcp) = 6" in lines and "for-alice: close(s) = 0" in lines
    assert "for-bob: pthread_exit(0) = exited 0" in lines  # that thread ends; the process goes on
    assert lines[-3:] == ["kill server", "for-alice: ... = killed SIGTERM", "alice: read(c, 100) = 0"]
