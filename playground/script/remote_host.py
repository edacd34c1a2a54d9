"""The `ssh` form of the host directive: `host NAME ssh DESTINATION [address A.B.C.D]`.

A destination is handed to the system's ssh as one argument of its own (never
through a shell), so it may be anything ssh accepts (`user@machine`, an alias
of ~/.ssh/config, `ssh://user@machine:2222`), except what ssh would read as
an option (a leading `-`) or what no destination holds (spaces, quotes,
control characters).
"""

from __future__ import annotations

import ipaddress
import re

from playground.script.checks import RESERVED, Scope
from playground.script.errors import LineError
from playground.script.model import RemoteHost

HOST_NAME = re.compile(r"[a-z][a-z0-9_-]*\Z")
# What an ssh destination is made of: user names, host names, IPv6 in brackets, ssh:// URIs, ports.
DESTINATION = re.compile(r"[A-Za-z0-9_.@:/\[\]%+~-]+\Z")
MAX_DESTINATION = 255
_FORM = "host NAME ssh DESTINATION [address A.B.C.D], as in 'host far ssh user@machine.example'"


def is_ssh_host_line(body: str) -> bool:
    """Whether the line is the `ssh` form of `host` (`+DELAY` allowed first)."""
    words = body.split()
    if words and words[0].startswith("+"):
        words = words[1:]
    return len(words) >= 3 and words[0] == "host" and words[2] == "ssh"


def ssh_host(body: str, scope: Scope) -> RemoteHost:
    """Parse `[+DELAY] host NAME ssh DESTINATION [address A.B.C.D]` (LineError with a 1-based column)."""
    words = [(m.group(), m.start() + 1) for m in re.finditer(r"\S+", body)]
    delay = None
    if words[0][0].startswith("+"):
        delay = _delay(*words[0])
        words = words[1:]
    (name, name_col), _ssh = words[1], words[2]
    if not HOST_NAME.match(name):
        raise LineError(name_col, f"{name!r} is not a host name: use lowercase letters, digits, '_' and '-'")
    if name in RESERVED:
        raise LineError(name_col, f"{name!r} is a reserved word; choose another name")
    if name in scope.hosts or name in scope.processes:
        raise LineError(name_col, f"the name {name!r} is taken already: a host needs a name of its own")
    if len(words) < 4:
        raise LineError(len(body.rstrip()) + 1, f"ssh needs a destination: {_FORM}")
    destination, dest_col = words[3]
    check_destination(destination, dest_col)
    address = None
    rest = words[4:]
    if rest:
        word, col = rest[0]
        if word != "address" or len(rest) != 2:
            raise LineError(col, f"after the destination only 'address A.B.C.D' may come: {_FORM}")
        address = _address(*rest[1])
    scope.hosts[name] = "ssh"
    return RemoteHost(name, destination, address, delay)


# The network lab's faults, and what each would do to a host: none of it can be done to a real machine.
FAULTS = {
    "cut": "cut its cable",
    "mend": "mend its cable",
    "crash": "crash it",
    "boot": "boot it",
    "cable": "impair its cable",
}


def refuse_fault(body: str, scope: Scope) -> None:
    """`cut`, `mend`, `crash`, `boot` and `cable` on a remote host: LineError saying why, and what would work."""
    words = body.split(None, 2)
    if words and words[0].startswith("+"):
        words = body.split(None, 3)[1:]
    if len(words) < 2 or words[0] not in FAULTS or scope.hosts.get(words[1]) != "ssh":
        return
    directive, host = words[0], words[1]
    raise LineError(
        body.index(host) + 1,
        f"{directive} does not apply to {host}: it is a real machine reached over ssh, and sockplay cannot "
        f"{FAULTS[directive]}; faults are for the network lab's hosts (`host NAME 192.0.2.1`), whose cables "
        "sockplay owns",
    )


def check_destination(destination: str, column: int = 1) -> None:
    """Refuse a destination ssh would take for an option, or that no destination looks like."""
    if destination.startswith("-"):
        raise LineError(column, f"{destination!r} starts with '-': ssh would read it as an option, not a destination")
    if len(destination) > MAX_DESTINATION:
        raise LineError(column, f"a destination has at most {MAX_DESTINATION} characters")
    if not DESTINATION.match(destination):
        bad = next(c for c in destination if not DESTINATION.match(c))
        raise LineError(column + destination.index(bad), f"{bad!r} has no place in an ssh destination")


def _address(word: str, column: int) -> str:
    try:
        return str(ipaddress.ip_address(word))
    except ValueError:
        raise LineError(column, f"{word!r} is not an IP address, as in 'address 203.0.113.7'") from None


def _delay(word: str, column: int) -> float:
    try:
        value = float(word[1:])
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise LineError(column, "'+' must be followed by a delay in seconds, as in +0.5")
    return value
