"""A lab's AF_UNIX directory goes with the lab: on a normal end, and when a signal stops sockplay at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.cli.test_signals import STOP_WAIT
from tests.helpers import REPO, wait_until

UNIX_SCRIPT = """sockplay 1
spawn a
a: u = socket(unix) = 3
a: bind(u, "left.sock") = 0
"""


def _env(tmp: Path) -> dict[str, str]:
    return {**os.environ, "TMPDIR": str(tmp)}


def _lab_dirs(tmp: Path) -> list[str]:
    return [name for name in os.listdir(tmp) if name.startswith("sockplay-lab-")]


def test_a_run_removes_its_lab_directory_and_the_sockets_in_it(tmp_path: Path) -> None:
    script = tmp_path / "unix.sockplay"
    script.write_text(UNIX_SCRIPT)
    done = subprocess.run(
        [sys.executable, "-m", "playground.cli", "run", str(script)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(tmp_path),
    )
    assert done.returncode == 0, done.stderr
    assert _lab_dirs(tmp_path) == []


def test_a_run_stopped_while_blocked_on_its_output_removes_its_lab_directory(tmp_path: Path) -> None:
    script = tmp_path / "fast.sockplay"
    # Steps that return at once, printed faster than anyone reads them.
    script.write_text(UNIX_SCRIPT + "a: s = socket(udp)\nrepeat 100000\n  a: getsockopt(s, SO_ERROR) = 0\nend\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "playground.cli", "run", str(script)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=_env(tmp_path),
    )
    try:
        deadline = time.monotonic() + 30
        while not Path(f"/proc/{proc.pid}/wchan").read_text().endswith("pipe_write"):  # the pipe is full
            assert time.monotonic() < deadline and proc.poll() is None, "sockplay never blocked on its output"
            time.sleep(0.01)
        assert len(_lab_dirs(tmp_path)) == 1
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=STOP_WAIT) == 128 + signal.SIGTERM  # the watchdog's exit
        assert _lab_dirs(tmp_path) == []
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=STOP_WAIT)
        assert proc.stdout is not None
        proc.stdout.close()


def test_a_killed_sockplays_lab_processes_remove_its_lab_directory(tmp_path: Path) -> None:
    script = tmp_path / "blocked.sockplay"
    script.write_text(UNIX_SCRIPT + "a: x, y = socketpair(unix)\na: read(x, 10)\n")  # blocks (10 s timeout)
    proc = subprocess.Popen(
        [sys.executable, "-m", "playground.cli", "run", str(script)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=_env(tmp_path),
    )
    try:
        wait_until(lambda: any(os.listdir(tmp_path / d) for d in _lab_dirs(tmp_path)), 30, "the socket bound")
        proc.kill()  # SIGKILL: sockplay cleans nothing up; its lab processes see their channels close
        proc.wait(timeout=STOP_WAIT)
        wait_until(lambda: _lab_dirs(tmp_path) == [], STOP_WAIT, "the lab directory removed")
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=STOP_WAIT)
