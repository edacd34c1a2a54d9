"""What a replay needs before it runs: the recording read, its reach beyond loopback, its pauses scaled, and
what differs from the machine it was recorded on."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import replace
from pathlib import Path

from playground.addresses import is_loopback
from playground.constants import MAX_SCRIPT_BYTES, MAX_SCRIPT_DATA
from playground.recording import wait_before
from playground.script.errors import ScriptError
from playground.script.model import AddressArg, Completion, Host, Line, RemoteHost, Repeat, Script, Sleep, Step

# Calls whose address argument says where traffic goes (or which address is taken).
_ADDRESS_CALLS = {"bind": "bind", "connect": "connect to", "sendto": "send to"}


def load_recording(path: str, max_data: int = MAX_SCRIPT_DATA) -> Script:
    """Parse a recording; a cut-off last line is left out (Script.truncated says which)."""
    file = Path(path)
    if file.is_file() and file.stat().st_size > MAX_SCRIPT_BYTES:
        raise ScriptError(path, 1, 1, f"file is larger than {MAX_SCRIPT_BYTES} bytes")
    with file.open("rb") as f:
        raw = f.read(MAX_SCRIPT_BYTES + 1)
    return parse(raw, path, max_data)


def parse(raw: bytes, path: str, max_data: int = MAX_SCRIPT_DATA) -> Script:
    from playground.script.parser import parse_script

    return parse_script(raw, path, allow_truncated_tail=True, max_data=max_data)


def beyond_loopback(script: Script) -> list[tuple[int, str]]:
    """(line, what) for every call that would bind, connect or send to an address other than loopback.

    A wildcard bind (`0.0.0.0:0`, `[::]:9000`) is left to the lab, as `run` leaves it: in the
    private namespace only loopback exists, so it exposes nothing; on the host's network the
    lab refuses it when the call comes.
    """
    out = []
    hosts = lab_hosts(script)
    for line in script.steps():
        node = line.node
        if isinstance(node, RemoteHost):
            out.append((line.number, f"run processes on {node.destination}, a real machine reached with ssh"))
        if not isinstance(node, Step):
            continue
        for arg in node.call.args:
            if node.call.name == "bind" and isinstance(arg, AddressArg) and _is_wildcard(arg.address.host):
                continue
            if isinstance(arg, AddressArg) and arg.address.host in hosts:
                continue  # a host of the lab (by name or address): its own network, which nothing leaves
            if isinstance(arg, AddressArg) and not is_loopback(arg.address.host):
                verb = _ADDRESS_CALLS.get(node.call.name, node.call.name)
                out.append((line.number, f"{verb} {arg.address}"))
    return out


def lab_hosts(script: Script) -> set[str]:
    """The names and addresses of the script's `host` lines."""
    hosts = [line.node for line in script.lines if isinstance(line.node, Host)]
    return {host.name for host in hosts} | {host.address for host in hosts}


def _is_wildcard(host: str) -> bool:
    return ipaddress.ip_address(host.partition("%")[0]).is_unspecified


def scaled(script: Script, speed: float) -> Script:
    """The script with every `+DELAY` multiplied by speed (0 drops them), and every `sleep` too
    unless speed is 0 (a sleep gives the kernel time the outcomes after it may need)."""

    def scale(line: Line) -> Line:
        node = line.node
        if isinstance(node, Repeat):
            return replace(line, node=replace(node, lines=tuple(scale(inner) for inner in node.lines)))
        if isinstance(node, (Step, Completion)) and node.delay:
            delay = node.delay * speed
            return replace(line, node=replace(node, delay=delay if delay > 0 else None))
        if isinstance(node, Sleep) and speed > 0:
            return replace(line, node=replace(node, seconds=node.seconds * speed))
        return line

    return replace(script, lines=[scale(line) for line in script.lines])


def recorded_gaps(script: Script) -> tuple[float, float]:
    """(the longest single pause, the longest wait for a blocked call's outcome) the recording kept."""
    longest = outcome_wait = 0.0
    for line in script.steps():
        node = line.node
        longest = max(longest, wait_before(line.leading))
        if isinstance(node, (Step, Completion)) and node.delay:
            longest = max(longest, node.delay)
            if isinstance(node, Completion):
                outcome_wait = max(outcome_wait, node.delay)
    return longest, outcome_wait


# sockplay replay.


def kernel_notes(header: dict, release: str | None = None) -> list[str]:
    """What differs from the recording before anything runs: the kernel."""
    release = release or os.uname().release
    recorded = header.get("kernel")
    if recorded and recorded != release:
        return [
            f"recorded on kernel {recorded}; this is kernel {release}: outcomes that depend on the kernel may differ"
        ]
    return []


def environment_notes(header: dict, lab_kind: str, sysctls: dict[str, str]) -> list[str]:
    """What differs from the recording in the lab: where it runs, and its sysctls."""
    notes = []
    recorded_lab = header.get("lab")
    if recorded_lab and recorded_lab != lab_kind:
        notes.append(f"recorded in a lab on the {recorded_lab}; this lab runs on the {lab_kind}")
    differ = [
        f"{name} was {value!r}, is {sysctls[name]!r}"
        for name, value in header.get("sysctls", {}).items()
        if name in sysctls and " ".join(sysctls[name].split()) != " ".join(value.split())
    ]
    if differ:
        notes.append("sysctls differ from the recording: " + "; ".join(differ))
    return notes
