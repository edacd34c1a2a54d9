"""A real OpenSSH server for the remote-host tests: throw-away keys and config, on a free loopback port.

The client side is an ssh config file of its own (SOCKPLAY_SSH_CONFIG, so the
user's ~/.ssh is never read or touched) with an alias for each case:

    remote      a working remote host (root on this machine, over 127.0.0.1)
    nopython    the same, but python3 is not on the PATH there
    oldpython   the same, but its python3 says it is 3.6
    python38    the same, but its python3 is a real Python 3.8 (where one is installed: python3.8, pyenv)
    nocapture   the same, but without CAP_NET_RAW (no packet capture there; needs setpriv)
    stranger    a key the server does not accept (authentication refused)
    nowhere     a port nothing listens on (unreachable)
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from glob import glob
from pathlib import Path

import pytest

SSHD = "/usr/sbin/sshd"
CONFIG_ENV = "SOCKPLAY_SSH_CONFIG"
MARKER = b"sockplay-agent"

# A python3 that says it is 3.6: it runs the bootstrap with that version_info.
OLD_PYTHON_SHIM = """import sys
sys.version_info = (3, 6, 9, "final", 0)
code = sys.argv[sys.argv.index("-c") + 1]
exec(compile(code, "<bootstrap>", "exec"), {"__name__": "__main__"})
"""


def oldest_python() -> str | None:
    """A real Python 3.8 on this machine (the oldest a remote host may run), if there is one."""
    found = [*sorted(glob(os.path.expanduser("~/.pyenv/versions/3.8.*/bin/python3.8"))), shutil.which("python3.8")]
    # pyenv's shims choose a version by pyenv's own settings, not by their name
    return next((path for path in found if path and "/shims/" not in path and os.access(path, os.X_OK)), None)


@dataclass
class Sshd:
    port: int
    pid: int
    config: Path  # the client's ssh config
    folder: Path

    def agents_and_workers(self) -> list[int]:
        """Every process on the 'remote' (this machine) that sockplay's agent started through this server."""
        found = []
        tag = f" {self.port}".encode()
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
                if MARKER not in cmdline:
                    continue
                environ = Path(f"/proc/{entry}/environ").read_bytes()
            except OSError:
                continue
            connection = next((v for v in environ.split(b"\0") if v.startswith(b"SSH_CONNECTION=")), b"")
            if connection.endswith(tag) and _state(int(entry)) != "Z":
                found.append(int(entry))
        return found

    def sessions(self) -> list[int]:
        """The server's per-connection processes (killing one drops that connection)."""
        return [int(e) for e in os.listdir("/proc") if e.isdigit() and _ppid(int(e)) == self.pid and int(e) != self.pid]


def _stat(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return []
    return raw[raw.rfind(")") + 2 :].split()


def _state(pid: int) -> str:
    fields = _stat(pid)
    return fields[0] if fields else "?"


def _ppid(pid: int) -> int:
    fields = _stat(pid)
    return int(fields[1]) if fields else 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _keygen(path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path.with_suffix(".pub").read_text().strip()


def start_sshd(folder: Path) -> tuple[subprocess.Popen, Sshd]:
    folder.mkdir(mode=0o700, exist_ok=True)
    host_pub = _keygen(folder / "host_key")
    user_pub = _keygen(folder / "id_user")
    _keygen(folder / "id_stranger")
    nopython_pub = _keygen(folder / "id_nopython")
    oldpython_pub = _keygen(folder / "id_oldpython")
    nocapture_pub = _keygen(folder / "id_nocapture")
    python38_pub = _keygen(folder / "id_python38")
    py38 = folder / "py38"
    py38.mkdir()
    python38 = oldest_python()
    if python38:
        (py38 / "python3").symlink_to(python38)
    (folder / "empty").mkdir()
    old = folder / "old"
    old.mkdir()
    (old / "shim.py").write_text(OLD_PYTHON_SHIM)
    (old / "python3").write_text(f'#!/bin/sh\nexec {shutil.which("python3")} {old / "shim.py"} "$@"\n')
    (old / "python3").chmod(0o755)
    (folder / "authorized_keys").write_text(
        f"{user_pub}\n"
        # A forced command sets PATH after the login shell's own start-up files had their say.
        f'command="export PATH={folder / "empty"}; eval \\"$SSH_ORIGINAL_COMMAND\\"" {nopython_pub}\n'
        f'command="export PATH={old}:/usr/bin:/bin; eval \\"$SSH_ORIGINAL_COMMAND\\"" {oldpython_pub}\n'
        f'command="export PATH={py38}:/usr/bin:/bin; eval \\"$SSH_ORIGINAL_COMMAND\\"" {python38_pub}\n'
        # root without CAP_NET_RAW: no packet capture there
        f'command="exec setpriv --bounding-set=-net_raw --inh-caps=-net_raw -- /bin/sh -c \\"$SSH_ORIGINAL_COMMAND\\"" '
        f"{nocapture_pub}\n"
    )
    port = _free_port()
    server_config = folder / "sshd_config"
    server_config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {folder / 'host_key'}\nPidFile {folder / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {folder / 'authorized_keys'}\nStrictModes no\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nPubkeyAuthentication yes\nPermitRootLogin prohibit-password\n"
        "UsePAM no\nLogLevel ERROR\n"
    )
    (folder / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_pub}\n")
    client = folder / "ssh_config"
    common = (
        f"  HostName 127.0.0.1\n  Port {port}\n  User root\n  IdentitiesOnly yes\n  StrictHostKeyChecking yes\n"
        f"  UserKnownHostsFile {folder / 'known_hosts'}\n  LogLevel ERROR\n"
    )
    hosts = {"remote machine.example": "id_user", "stranger": "id_stranger", "nopython": "id_nopython"}
    hosts["oldpython"] = "id_oldpython"
    hosts["nocapture"] = "id_nocapture"
    hosts["python38"] = "id_python38"
    text = "".join(f"Host {names}\n{common}  IdentityFile {folder / key}\n" for names, key in hosts.items())
    text += (
        f"Host nowhere\n  HostName 127.0.0.1\n  Port {_free_port()}\n  UserKnownHostsFile {folder / 'known_hosts'}\n"
    )
    client.write_text(text)
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege-separation directory
    server = subprocess.Popen([SSHD, "-D", "-e", "-f", str(server_config)], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if server.poll() is not None:
                said = server.stderr.read().decode() if server.stderr else ""
                raise RuntimeError(f"sshd did not start: {said}") from None
            time.sleep(0.02)
    return server, Sshd(port, server.pid, client, folder)


def sshd_reason() -> str | None:
    """Why the remote-host tests cannot run here, if they cannot."""
    if not os.path.exists(SSHD):
        return f"no OpenSSH server ({SSHD}): apt-get install openssh-server"
    if shutil.which("ssh") is None or shutil.which("ssh-keygen") is None:
        return "no OpenSSH client (ssh, ssh-keygen)"
    if os.geteuid() != 0:
        return "the test sshd logs in as root: run the tests as root"
    return None


@pytest.fixture(scope="module")
def sshd_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    reason = sshd_reason()
    if reason:
        pytest.skip(reason)
    server, info = start_sshd(tmp_path_factory.mktemp("sshd") / "ssh")
    try:
        yield info
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=5)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture
def sshd(sshd_server: Sshd, monkeypatch: pytest.MonkeyPatch) -> Sshd:
    """The test sshd, with sockplay's ssh pointed at its config."""
    monkeypatch.setenv(CONFIG_ENV, str(sshd_server.config))
    return sshd_server
