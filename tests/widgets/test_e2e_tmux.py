"""End to end: the installed `sockplay` in a real terminal (tmux), typed at, read back, quit."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.helpers import children_of, process_state

TMUX = shutil.which("tmux")
SOCKPLAY = shutil.which("sockplay") or str(Path(sys.executable).with_name("sockplay"))

pytestmark = pytest.mark.skipif(
    TMUX is None or not os.path.exists(SOCKPLAY), reason="needs tmux and the installed sockplay"
)


class Terminal:
    """One tmux server of our own, one session running sockplay."""

    def __init__(self, width: int = 120, height: int = 40, args: str = "") -> None:
        self.server = f"sockplay-e2e-{uuid.uuid4().hex[:8]}"
        self.session = "sp"
        env = {"TERM": "xterm-256color", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "HOME": os.environ.get("HOME", "/")}
        self.tmux(
            "new-session",
            "-d",
            "-s",
            self.session,
            "-x",
            str(width),
            "-y",
            str(height),
            f"env TERM=xterm-256color {SOCKPLAY} {args}",
            env=env,
        )

    def tmux(self, *args: str, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
        full_env = dict(os.environ, **(env or {}))
        return subprocess.run(
            [TMUX, "-L", self.server, *args], capture_output=True, text=True, check=check, env=full_env
        )

    def screen(self) -> str:
        # The session ends the moment sockplay exits, possibly between alive() and this call.
        return self.tmux("capture-pane", "-p", "-t", self.session, check=False).stdout

    def alive(self) -> bool:
        return self.tmux("has-session", "-t", self.session, check=False).returncode == 0

    def wait(self, condition, what: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = self.screen() if self.alive() else ""
            if condition(text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; the screen:\n{text}")
            time.sleep(0.05)

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", self.session, *keys)

    def type(self, text: str) -> None:
        self.tmux("send-keys", "-t", self.session, "-l", text)

    def pane_pid(self) -> int:
        return int(self.tmux("display-message", "-p", "-t", self.session, "#{pane_pid}").stdout.strip())

    def close(self) -> None:
        self.tmux("kill-server", check=False)
        socket_file = Path(os.environ.get("TMUX_TMPDIR", "/tmp")) / f"tmux-{os.getuid()}" / self.server
        socket_file.unlink(missing_ok=True)


def lab_workers(pids: list[int]) -> list[int]:
    out = []
    for pid in pids:
        try:
            if b"playground.worker" in Path(f"/proc/{pid}/cmdline").read_bytes():
                out.append(pid)
        except OSError:
            pass
    return out


def test_sockplay_in_tmux_runs_lines_and_quits_cleanly():
    term = Terminal()
    try:
        term.wait(lambda s: s.count("running") >= 2 and "client" in s, "the default lab")
        sockplay_pid = term.pane_pid()
        deadline = time.monotonic() + 10
        while len(lab_workers(workers := children_of(sockplay_pid))) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(lab_workers(workers)) == 2, f"expected server and client processes among {workers}"

        lines = [
            ("server: l = socket(tcp)", "l = socket(tcp) = 3"),
            ("server: bind(l, 127.0.0.1:0)", "bind(l, 127.0.0.1:0) = 0"),
            ("server: listen(l, 8)", "listen(l, 8) = 0"),
            ("client: c = socket(tcp)", "c = socket(tcp) = 3"),
            ("client: connect(c, server.l)", "connect(c, server.l) = 0"),
            ("server: a = accept(l)", "a = accept(l) = 4 from 127.0.0.1:"),
            ('client: write(c, "hi")', 'write(c, "hi") = 2'),
            ("server: read(a, 10)", 'read(a, 10) = 2 "hi"'),
        ]
        term.keys(":")
        # Focus on the command line: the footer drops the one-letter keys, which would now type.
        term.wait(lambda s: "n socket" not in s.rstrip().splitlines()[-1], "the command line to have focus")
        for text, outcome in lines:
            term.type(text)
            term.keys("Enter")
            term.wait(lambda s, o=outcome: o in s, f"the outcome {outcome!r}")
        # A mistake is shown in place, with its column, and the text stays.
        term.type("server: read(zz, 1)")
        term.keys("Enter")
        screen = term.wait(lambda s: "^ column 14" in s, "the error in place")
        assert "server: read(zz, 1)" in screen
        # The tree followed the kernel: both ends established.
        term.wait(lambda s: s.count("ESTABLISHED") >= 2, "both ends ESTABLISHED in the Lab pane")

        term.keys("C-q")
        term.wait(lambda s: not term.alive(), "sockplay to exit", timeout=15)
        deadline = time.monotonic() + 5
        # A zombie has ended; whoever adopted it reaps it (this test process too, if an earlier
        # test's lab made it a subreaper: tmux's server daemonizes and may be adopted here).
        while any(_running(pid) for pid in workers + [sockplay_pid]):
            assert time.monotonic() < deadline, "lab processes outlived sockplay"
            time.sleep(0.05)
        for pid in workers + [sockplay_pid]:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
        assert [pid for pid in children_of(sockplay_pid) if _running(pid)] == []
    finally:
        term.close()


def test_sigkill_mid_session_leaves_a_recording_that_replays(tmp_path: Path) -> None:
    recording = tmp_path / "killed.sockplay"
    term = Terminal(args=f"--record {recording}")
    try:
        term.wait(lambda s: s.count("running") >= 2 and "client" in s, "the default lab")
        sockplay_pid = term.pane_pid()
        deadline = time.monotonic() + 10
        while len(lab_workers(workers := children_of(sockplay_pid))) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        term.keys(":")
        term.wait(lambda s: "n socket" not in s.rstrip().splitlines()[-1], "the command line to have focus")
        for text, outcome in [
            ("server: l = socket(tcp)", "l = socket(tcp) = 3"),
            ("server: bind(l, 127.0.0.1:0)", "bind(l, 127.0.0.1:0) = 0"),
            ("server: listen(l, 8)", "listen(l, 8) = 0"),
            ("client: c = socket(tcp)", "c = socket(tcp) = 3"),
            ("client: connect(c, server.l)", "connect(c, server.l) = 0"),
            ("server: a = accept(l)", "a = accept(l) = 4 from 127.0.0.1:"),
            ('client: write(c, "hi")', 'write(c, "hi") = 2'),
        ]:
            term.type(text)
            term.keys("Enter")
            term.wait(lambda s, o=outcome: o in s, f"the outcome {outcome!r}")
        # Every completed step is in the file before anything else happens.
        deadline = time.monotonic() + 10
        while 'client: write(c, "hi") = 2' not in recording.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(sockplay_pid, 9)  # no chance to clean up: the lab's processes must notice by themselves
        deadline = time.monotonic() + 10
        while any(os.path.exists(f"/proc/{pid}") and _running(pid) for pid in workers):
            assert time.monotonic() < deadline, "lab processes outlived a killed sockplay"
            time.sleep(0.05)
    finally:
        term.close()
    text = recording.read_text()
    assert 'client: write(c, "hi") = 2' in text
    replay = subprocess.run([SOCKPLAY, "replay", "--check", str(recording)], capture_output=True, text=True, timeout=60)
    assert replay.returncode == 0, replay.stdout + replay.stderr


def _running(pid: int) -> bool:
    """Not a zombie: an orphan's zombie waits for its new parent, it runs no more."""
    return process_state(pid) not in (None, "Z")
