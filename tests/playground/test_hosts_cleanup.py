"""The network lab leaves nothing behind, however sockplay ends; and it runs for an ordinary user too."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pyroute2
import pytest

from tests.helpers import REPO, children_of, process_exists, process_state
from tests.playground.test_hosts import HOSTS, netns_inode, processes_in

SYSTEM_PYTHON = next((p for p in ("/usr/bin/python3", "/usr/local/bin/python3") if os.access(p, os.X_OK)), None)

BLOCKED = HOSTS + "client: read(c, 100) ...\nsleep 30\n"


def lab_pids(sockplay: int) -> list[int]:
    """sockplay's children: the lab's namespace holder, each host's, and the lab processes."""
    return children_of(sockplay)


def start_blocked(tmp_path: Path) -> tuple[subprocess.Popen[str], list[int], set[str]]:
    script = tmp_path / "hosts.sockplay"
    script.write_text(BLOCKED)
    proc = subprocess.Popen(
        [sys.executable, "-m", "playground.cli", "run", str(script)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    seen = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        seen.append(line)
        if line.startswith("client: read(c, 100) ..."):
            break
    else:
        proc.kill()
        pytest.fail(f"the script never reached its blocked read: {seen}")
    pids = lab_pids(proc.pid)
    assert len(pids) == 6  # the holders of the lab's namespace, alpha's and beta's; the switch; server and client
    spaces = {netns_inode(pid) for pid in pids}
    assert len(spaces) == 3
    return proc, pids, spaces


def wait_gone(pids: list[int], spaces: set[str]) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        alive = [pid for pid in pids if process_exists(pid) and process_state(pid) != "Z"]
        if not alive and not processes_in(spaces):
            break
        time.sleep(0.02)
    assert [pid for pid in pids if process_exists(pid) and process_state(pid) != "Z"] == []
    # No process is left in any of the lab's namespaces: with their last process they went, and every
    # veth and the bridge in them went too (nothing was ever made in the machine's own namespace).
    assert processes_in(spaces) == []


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_stopping_sockplay_leaves_no_host_namespace_or_process(tmp_path: Path, signum: int) -> None:
    proc, pids, spaces = start_blocked(tmp_path)
    proc.send_signal(signum)
    assert proc.wait(timeout=20) == 128 + signum
    wait_gone(pids, spaces)


def test_killing_sockplay_leaves_no_host_namespace_or_process(tmp_path: Path) -> None:
    proc, pids, spaces = start_blocked(tmp_path)
    proc.kill()  # SIGKILL: sockplay cleans nothing; every holder and process sees its channel close
    proc.wait(timeout=10)
    wait_gone(pids, spaces)


def test_no_link_is_made_in_the_machines_own_namespace(tmp_path: Path) -> None:
    before = set(os.listdir("/sys/class/net"))
    proc, pids, spaces = start_blocked(tmp_path)
    during = set(os.listdir("/sys/class/net"))
    proc.kill()
    proc.wait(timeout=10)
    wait_gone(pids, spaces)
    assert not {name for name in during - before if name.startswith(("host", "labswitch", "eth"))}


@pytest.fixture(scope="module")
def readable_copy() -> Iterator[Path]:
    """The package and pyroute2 where any user may read them (the venv may be in a private directory)."""
    root = Path(tempfile.mkdtemp(prefix="sockplay-hosts-readable-"))
    try:
        shutil.copytree(REPO / "playground", root / "playground", ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copytree(Path(pyroute2.__file__).parent, root / "pyroute2", ignore=shutil.ignore_patterns("__pycache__"))
        (root / "probe.py").write_text(PROBE)
        for path in [root, *root.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


PROBE = """
import asyncio, os, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from playground.runner import run_script
from playground.script.parser import parse_script
async def main():
    report = await run_script(parse_script(sys.stdin.read()))
    for step in report.steps:
        print(step.text, "|", step.divergence or step.error or "")
    print("exit", report.exit_code, "uid", os.getuid())
asyncio.run(main())
"""

FAULTS = """client: write(c, "x")                   = 1
server: read(a, 5)                       = 1 "x"
cut beta
client: write(c, "y")                    = 1
mend beta
server: read(a, 5)                       = 1 "y"
client: read(c, 5) ...
crash alpha
boot alpha
client: write(c, "z")                    = 1
client: ... = -1 ECONNRESET
"""


@pytest.mark.skipif(os.geteuid() != 0 or SYSTEM_PYTHON is None or not shutil.which("setpriv"), reason="needs root")
def test_an_ordinary_user_gets_hosts_in_its_user_namespace(readable_copy: Path) -> None:
    assert SYSTEM_PYTHON is not None
    result = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", SYSTEM_PYTHON, str(readable_copy / "probe.py")],
        input=HOSTS + FAULTS,
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = result.stdout.splitlines()
    if lines and "hosts need network namespaces" in lines[0]:
        pytest.skip(f"no unprivileged user namespaces here: {lines[0]}")
    assert lines[-1] == "exit 0 uid 65534", result.stdout + result.stderr
    assert [line for line in lines[:-1] if line.split("|")[1].strip()] == []
