"""The lab's own network namespace: made as root, as an ordinary user, or not at all."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from playground.executor import run_typed_line
from playground.lab import Lab
from tests.helpers import REPO, outcome

# An interpreter an unprivileged user may run (the project's venv may live under /root).
SYSTEM_PYTHON = next((p for p in ("/usr/bin/python3", "/usr/local/bin/python3") if os.access(p, os.X_OK)), None)

PROBE = """
import asyncio, os
from playground.executor import run_typed_line
from playground.lab import Lab
async def main():
    lab = await Lab.start()
    try:
        await run_typed_line(lab, "spawn a")
        await run_typed_line(lab, "a: s = socket(tcp)")
        bind = await run_typed_line(lab, "a: bind(s, 127.0.0.1:80)")
        print(os.getuid(), "|", lab.network.kind, "|", lab.network.reason, "|",
              lab.network.packet_socket is not None, lab.network.diag_socket is not None, "|",
              bind.outcome.value, bind.outcome.errno)
    finally:
        await lab.shutdown()
asyncio.run(main())
"""


@pytest.fixture(scope="module")
def readable_copy() -> Iterator[Path]:
    """The package where any user may read it: a clone may sit in a private (0700) directory,
    which an unprivileged probe (uid 65534) could not enter."""
    root = Path(tempfile.mkdtemp(prefix="sockplay-readable-"))  # in /tmp, which anyone may pass through
    try:
        shutil.copytree(REPO / "playground", root / "playground", ignore=shutil.ignore_patterns("__pycache__"))
        for path in [root, *root.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run_as(prefix: tuple[str, ...], root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert SYSTEM_PYTHON is not None
    return subprocess.run(
        [*prefix, SYSTEM_PYTHON, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(root)},
        cwd="/",
    )


def probe(root: Path, *prefix: str) -> list[str]:
    result = run_as(prefix, root, "-c", PROBE)
    assert result.returncode == 0, result.stderr
    return [part.strip() for part in result.stdout.strip().split("|")]


# uid 0 without any capability may neither unshare a network nor map root into a user namespace.
NO_CAPABILITIES = (
    "setpriv",
    "--bounding-set=-all",
    "--inh-caps=-all",
    "--securebits=+noroot,+noroot_locked,+no_setuid_fixup,+no_setuid_fixup_locked",
)


async def test_root_gets_a_private_namespace_with_its_own_loopback(lab: Lab) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    assert lab.network.kind == "private namespace (root)", lab.network.reason
    await run_typed_line(lab, "spawn a")
    pid = lab.processes["a"].pid
    assert os.readlink(f"/proc/{pid}/ns/net") != os.readlink("/proc/self/ns/net")
    assert lab.network.packet_socket is not None and lab.network.diag_socket is not None
    assert lab.network.sysctls["net.ipv4.tcp_fin_timeout"].isdigit()


async def test_every_session_starts_clean() -> None:
    # A fixed port left in TIME-WAIT by one lab does not bother the next one.
    for _ in range(2):
        lab = await Lab.start()
        try:
            if not lab.network.private:
                pytest.skip(f"no private namespace here: {lab.network.reason}")
            await run_typed_line(lab, "spawn a")
            await run_typed_line(lab, "a: l = socket(tcp)")
            assert await outcome(lab, "a: bind(l, 127.0.0.1:9000)") == "= 0"
            await run_typed_line(lab, "a: listen(l, 1)")
            await run_typed_line(lab, "a: c = socket(tcp)")
            await run_typed_line(lab, "a: connect(c, a.l)")
            await run_typed_line(lab, "a: s = accept(l)")
            await run_typed_line(lab, "a: close(s)")  # the server closes first: its port goes to TIME-WAIT
            await run_typed_line(lab, "a: close(c)")
            await run_typed_line(lab, "a: close(l)")
        finally:
            await lab.shutdown()


async def test_host_network_is_the_hosts_loopback() -> None:
    lab = await Lab.start(host_network=True)
    try:
        assert lab.network.kind == "host loopback" and not lab.network.private
        await run_typed_line(lab, "spawn a")
        assert os.readlink(f"/proc/{lab.processes['a'].pid}/ns/net") == os.readlink("/proc/self/ns/net")
    finally:
        await lab.shutdown()


def test_an_unprivileged_user_gets_a_user_namespace(readable_copy: Path) -> None:
    if os.geteuid() != 0 or shutil.which("setpriv") is None or SYSTEM_PYTHON is None:
        pytest.skip("needs root (to drop privileges), setpriv and a system python3")
    if int(Path("/proc/sys/user/max_user_namespaces").read_text()) == 0:
        pytest.skip("user namespaces are disabled on this kernel")
    uid, kind, reason, sockets, bind = probe(
        readable_copy, "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"
    )
    assert uid == "65534"
    assert kind == "private namespace (user namespace)", reason
    assert sockets == "True True"  # packet capture and sock_diag work inside it
    assert bind == "0 None"  # root of its own namespace: port 80 is fine


def test_without_privileges_the_lab_falls_back_and_says_why(readable_copy: Path) -> None:
    if os.geteuid() != 0 or shutil.which("setpriv") is None or SYSTEM_PYTHON is None:
        pytest.skip("needs root (to drop privileges), setpriv and a system python3")
    _, kind, reason, sockets, bind = probe(readable_copy, *NO_CAPABILITIES)
    assert kind == "host loopback"
    assert reason.startswith("no network namespace could be made") and "Operation not permitted" in reason
    assert sockets == "False False"
    assert bind == "-1 EACCES"


def test_without_a_namespace_run_and_replay_refuse_the_hosts_network_unless_told(
    readable_copy: Path,
) -> None:
    if os.geteuid() != 0 or shutil.which("setpriv") is None or SYSTEM_PYTHON is None:
        pytest.skip("needs root (to drop privileges), setpriv and a system python3")
    script = readable_copy / "s.sockplay"
    script.write_text("sockplay 1\nspawn a\na: s = socket(tcp)\na: connect(s, 127.0.0.1:1) = -1 ECONNREFUSED\n")
    script.chmod(0o644)
    for command in (("run",), ("replay", "--check")):
        refused = run_as(NO_CAPABILITIES, readable_copy, "-m", "playground.cli", *command, str(script))
        assert refused.returncode == 2, refused
        assert refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr, refused.stderr
        assert "refusing to run on the host's network: no network namespace could be made" in refused.stderr
        assert "--host-network" in refused.stderr and "spawn" not in refused.stdout  # nothing ran
        allowed = run_as(
            NO_CAPABILITIES, readable_copy, "-m", "playground.cli", *command, "--host-network", str(script)
        )
        assert allowed.returncode == 0, allowed.stderr
