"""The terminal goes away without a SIGHUP: sockplay must notice, end, and take its lab with it.

A pty that is not the process's controlling terminal (a program that ran sockplay in a
pseudo-terminal of its own, then died) sends no SIGHUP when its master side closes: the
only sign is a hung-up terminal (poll says POLLHUP, reads say end of file).
"""

from __future__ import annotations

import fcntl
import os
import pty
import select
import shutil
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from tests.helpers import children_of
from tests.widgets.test_e2e_tmux import _running, lab_workers

SOCKPLAY = shutil.which("sockplay") or str(Path(sys.executable).with_name("sockplay"))

pytestmark = pytest.mark.skipif(not os.path.exists(SOCKPLAY), reason="needs the installed sockplay")


def test_sockplay_ends_when_its_terminal_is_gone_without_a_sighup() -> None:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    env = dict(os.environ, TERM="xterm-256color", LANG="C.UTF-8")
    # A new session and no TIOCSCTTY: the pty is not its controlling terminal, so no SIGHUP comes.
    proc = subprocess.Popen(
        [SOCKPLAY, "--no-record"],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
        env=env,
        close_fds=True,
    )
    os.close(slave)
    try:
        screen = b""
        deadline = time.monotonic() + 30
        while screen.count(b"running") < 2:
            assert time.monotonic() < deadline, f"no default lab on the screen: {screen[-500:]!r}"
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                screen += os.read(master, 65536)
        deadline = time.monotonic() + 10
        while len(workers := lab_workers(children_of(proc.pid))) < 2:
            assert time.monotonic() < deadline, "the lab's two processes did not start"
            time.sleep(0.05)
        os.close(master)
        master = -1
        proc.wait(timeout=15)  # raises TimeoutExpired if sockplay goes on without its terminal
        deadline = time.monotonic() + 5
        while any(_running(pid) for pid in workers):
            assert time.monotonic() < deadline, "lab processes outlived sockplay"
            time.sleep(0.05)
    finally:
        if master >= 0:
            os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
