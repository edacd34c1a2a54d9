"""The system's ssh, as sockplay runs it: its argv, and what its failures mean.

The destination is one argument of its own after `--`, never part of a shell
string, so the user's ~/.ssh/config (aliases, ports, ProxyJump, keys, agent,
known_hosts) applies and nothing in a script can become an option or a command.
BatchMode means ssh never asks anything: a password or host-key prompt would
hang the TUI, so it fails instead, and sockplay says why.
"""

from __future__ import annotations

import os
import re

from playground.errors import LabError
from playground.remote.payload import MIN_PYTHON

# sockplay's own ssh config file instead of ~/.ssh/config (tests use one, so the user's is untouched).
CONFIG_ENV = "SOCKPLAY_SSH_CONFIG"
CONNECT_TIMEOUT = 10
# A dropped connection is noticed within about INTERVAL * COUNT seconds.
ALIVE_INTERVAL = 5
ALIVE_COUNT = 3

_UNREACHABLE = re.compile(
    r"Could not resolve hostname|Connection refused|No route to host|Connection timed out|"
    r"Network is unreachable|Name or service not known|Connection closed by|Connection reset|"
    r"Operation timed out|kex_exchange_identification"
)


def ssh_argv(destination: str) -> list[str]:
    """ssh's argv for a destination the parser accepted (refused again here if it could be an option)."""
    if destination.startswith("-") or not destination:
        raise LabError(f"{destination!r} is not a destination ssh may be given")
    argv = ["ssh"]
    config = os.environ.get(CONFIG_ENV)
    if config:
        argv += ["-F", config]
    argv += [
        "-T",
        "-o",
        "BatchMode=yes",
        "-o",
        f"ConnectTimeout={CONNECT_TIMEOUT}",
        "-o",
        f"ServerAliveInterval={ALIVE_INTERVAL}",
        "-o",
        f"ServerAliveCountMax={ALIVE_COUNT}",
        # Use the user's master connection if one is up, but never become one (a master outlives sockplay).
        "-o",
        "ControlMaster=no",
        "-e",
        "none",
        "--",
        destination,
    ]
    return argv


def failure(host: str, destination: str, returncode: int | None, stderr: str, greeting: str | None) -> str:
    """Why a remote host could not be used, in words, from ssh's exit status and what it said."""
    said = _last_line(stderr)
    where = f"remote host {host} ({destination})"
    if greeting is not None:
        version = greeting.strip()
        if _too_old(version):
            minimum = ".".join(map(str, MIN_PYTHON))
            return f"{where}: its python3 is {version}; sockplay needs Python {minimum} or newer there"
        return f"{where}: its python3 stopped before the lab-process code ran" + (f" ({said})" if said else "")
    if returncode == 255 or returncode is None:
        if "Permission denied" in stderr or "Too many authentication failures" in stderr:
            return (
                f"{where}: authentication refused ({said}). sockplay runs ssh in batch mode, without prompts: "
                "use a key (ssh-agent, or IdentityFile in ~/.ssh/config)"
            )
        if "Host key verification failed" in stderr or "REMOTE HOST IDENTIFICATION HAS CHANGED" in stderr:
            return (
                f"{where}: its host key is not known or has changed; connect once with `ssh {destination}` to check it"
            )
        if _UNREACHABLE.search(stderr):
            return f"{where}: cannot be reached ({said})"
        return f"{where}: ssh failed" + (f" ({said})" if said else " without saying why")
    if returncode == 127 or "python3: not found" in stderr or "python3: command not found" in stderr:
        return f"{where}: there is no python3 on it (sockplay needs python3, {'.'.join(map(str, MIN_PYTHON))} or newer)"
    return f"{where}: the remote command ended with status {returncode}" + (f" ({said})" if said else "")


def dropped(returncode: int | None, stderr: str) -> str:
    """What ssh said when a connection that was up ended."""
    said = _last_line(stderr)
    return said or (f"ssh ended with status {returncode}" if returncode is not None else "ssh ended")


def _too_old(version: str) -> bool:
    try:
        numbers = tuple(int(part) for part in version.split(".")[:2])
    except ValueError:
        return False
    return numbers < MIN_PYTHON


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("Warning: Permanently")]
    return lines[-1][:300].rstrip(".") if lines else ""
