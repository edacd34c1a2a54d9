"""Shutting the lab down, or stopping sockplay, leaves no process, zombie or socket behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from playground.executor import run_typed_line
from playground.lab import Lab
from tests.helpers import PAIR_SCRIPT, REPO, children_of, connected_pair, process_exists

BLOCKING_SCRIPT = (
    PAIR_SCRIPT
    + """server: kid = fork()
kid: read(a, 10) ...
server: accept(l) ...
client: read(c, 10) ...
sleep 60
"""
)


def socket_inodes(pid: int) -> set[int]:
    out = set()
    try:
        entries = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return out
    for entry in entries:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{entry}")
        except OSError:
            continue
        if target.startswith("socket:["):
            out.add(int(target[8:-1]))
    return out


def live_socket_inodes() -> set[int]:
    """Inodes of every TCP/UDP socket the kernel still ties to a file (TIME-WAIT has none)."""
    out = set()
    for table in ("tcp", "tcp6", "udp", "udp6"):
        for row in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            out.add(int(row.split()[9]))
    return out


async def test_shutdown_leaves_nothing_behind() -> None:
    lab = await Lab.start()
    await connected_pair(lab)
    await run_typed_line(lab, "server: kid = fork()")
    await run_typed_line(lab, "server: kid2 = fork()")
    await run_typed_line(lab, "kid2: exit(0)")  # a zombie at shutdown time
    await run_typed_line(lab, "client: u = socket(udp)")
    pids = [p.pid for p in lab.processes.values()]
    inodes = set().union(*(socket_inodes(pid) for pid in pids))
    assert len(inodes) >= 4
    await lab.shutdown()
    assert [pid for pid in pids if process_exists(pid)] == []
    assert children_of(os.getpid()) == []
    assert inodes & live_socket_inodes() == set()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_stopping_sockplay_run_ends_its_lab(tmp_path: Path, signum: int) -> None:
    script = tmp_path / "blocking.sockplay"
    script.write_text(BLOCKING_SCRIPT)
    proc = subprocess.Popen(
        [sys.executable, "-m", "playground.cli", "run", str(script)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    # Synchronise on the output: the sleep line is printed once it is reached.
    lines = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        lines.append(line)
        if line.startswith("client: read(c, 10) ..."):
            break
    else:
        proc.kill()
        pytest.fail(f"the script never reached its blocking steps: {lines}")
    lab_pids = children_of(proc.pid)
    assert len(lab_pids) in (2, 3)  # server, client (and the network namespace's holder); kid is server's
    grandchildren = [pid for parent in lab_pids for pid in children_of(parent)]
    assert len(grandchildren) == 1
    inodes = set().union(*(socket_inodes(pid) for pid in lab_pids + grandchildren))
    proc.send_signal(signum)
    code = proc.wait(timeout=20)
    assert code == 128 + signum
    leftover = [pid for pid in lab_pids + grandchildren if process_exists(pid)]
    assert leftover == []
    assert inodes & live_socket_inodes() == set()


def test_lab_processes_end_when_sockplay_is_killed(tmp_path: Path) -> None:
    script = tmp_path / "blocking.sockplay"
    script.write_text(BLOCKING_SCRIPT)
    proc = subprocess.Popen(
        [sys.executable, "-m", "playground.cli", "run", str(script)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.stdout.readline().startswith("client: read(c, 10) ..."):
            break
    lab_pids = children_of(proc.pid)
    all_pids = lab_pids + [pid for parent in lab_pids for pid in children_of(parent)]
    assert len(all_pids) in (3, 4)  # server, client, kid (and the namespace holder)
    proc.kill()  # SIGKILL: sockplay cannot clean up; its processes must notice
    proc.wait(timeout=10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(process_exists(pid) and _not_zombie(pid) for pid in all_pids):
        time.sleep(0.02)
    assert [pid for pid in all_pids if process_exists(pid) and _not_zombie(pid)] == []
    for pid in all_pids:  # orphans may have come to this process (a subreaper): reap them
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass


def _not_zombie(pid: int) -> bool:
    from tests.helpers import process_state

    return process_state(pid) not in (None, "Z")
