"""Turns what a process reported into an Outcome, and checks it against a stated one."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

from playground.constants import POLL_EVENTS, SIGNAL_NAMES, errno_name, same_errno
from playground.outcomes_more import more_fields, same_fields
from playground.readiness import ready_outcome
from playground.script.format import format_outcome
from playground.script.model import Address, Death, Fields, Outcome, Pair, UnixAddress

_READS = {"read", "recv", "recvfrom"}


def to_outcome(call: str, raw: dict, death: Death | None = None) -> Outcome:
    """The Outcome of a call from its raw result (or from the process's death)."""
    caught = raw.get("signals")
    signals = tuple(SIGNAL_NAMES.get(s, str(s)) for s in caught) if caught else ()
    if death is not None:
        return Outcome(death=death, signals=signals)
    ret = raw["ret"]
    if call == "pthread_exit" and ret == 0:  # it never returns: the thread ended, with this value
        return Outcome(death=Death("exited", raw.get("value", 0)), signals=signals)
    if ret == -1 and "errno" in raw:
        number = raw["errno"]
        return Outcome(value=-1, errno=errno_name(number), errno_message=os.strerror(number), signals=signals)
    value: object = ret
    if call == "getsockopt" or (call == "fcntl" and "value" in raw):
        value = raw["value"]
        if isinstance(value, list):
            value = Pair(value[0], value[1])
    elif call in ("getsockname", "getpeername"):
        value = Address(*raw["value"]) if raw.get("value") else ret
    fields: dict[str, Any] = {"value": value, "signals": signals}
    if call in _READS and "data" in raw:
        fields["data"] = raw["data"]
    if raw.get("peer") and call in ("recvfrom", "accept"):
        fields["peer"] = Address(*raw["peer"])
    if call == "poll" and "revents" in raw:
        fields["revents"] = tuple(n for n, bit in POLL_EVENTS.items() if raw["revents"] & bit)
    if "ready_named" in raw:
        fields["ready"] = ready_outcome(call, raw["ready_named"])
    if call == "waitpid" and "child" in raw:
        how, detail = raw["child"]
        fields["child"] = Death(how, SIGNAL_NAMES.get(detail, str(detail)) if how in ("killed", "stopped") else detail)
    fields.update(more_fields(call, raw))
    return Outcome(**fields)


@lru_cache(maxsize=1)
def ephemeral_ports() -> range:
    try:
        low, high = open("/proc/sys/net/ipv4/ip_local_port_range").read().split()
        return range(int(low), int(high) + 1)
    except (OSError, ValueError):
        return range(32768, 61000)


def _same_address(expected: Address | UnixAddress, actual: Address | UnixAddress) -> bool:
    if not isinstance(expected, Address) or not isinstance(actual, Address):  # AF_UNIX paths
        return expected == actual
    if expected.host != actual.host:
        return False
    # An ephemeral port differs from run to run: it never fails a check on its own.
    if expected.port in ephemeral_ports() or expected.port == 0:
        return True
    return expected.port == actual.port


# Calls whose positive return value is a pid, which differs from run to run.
_PID_RESULTS = {"fork", "waitpid"}


def divergence(call: str | None, expected: Outcome, actual: Outcome) -> str | None:
    """Why the actual outcome does not match the stated one, or None if it does."""
    reasons = []
    if expected.death is not None or actual.death is not None:
        if expected.death != actual.death:
            reasons.append("process ended differently")
    elif (expected.errno is None) != (actual.errno is None):
        reasons.append("errno differs")
    elif expected.errno is not None and actual.errno is not None:
        if not same_errno(expected.errno, actual.errno):
            reasons.append("errno differs")
    elif not _same_value(call, expected.value, actual.value):
        reasons.append("return value differs")
    if expected.death is None and actual.death is None and expected.errno is None:
        reasons += _detail_reasons(expected, actual)
    if set(expected.signals) != set(actual.signals):
        reasons.append("signals caught differ")
    if not reasons:
        return None
    return f"expected {format_outcome(expected)}, got {format_outcome(actual)} ({'; '.join(reasons)})"


def _detail_reasons(expected: Outcome, actual: Outcome) -> list[str]:
    """How a successful call's details differ from those stated (data, peer, events, ...)."""
    reasons = []
    if expected.data is not None and expected.data != actual.data:
        reasons.append("data differs")
    if expected.peer is not None and (actual.peer is None or not _same_address(expected.peer, actual.peer)):
        reasons.append("peer address differs")
    if expected.revents is not None and set(expected.revents) != set(actual.revents or ()):
        reasons.append("poll events differ")
    if expected.child is not None and expected.child != actual.child:
        reasons.append("child status differs")
    if expected.ready is not None and _ready_set(expected.ready) != _ready_set(actual.ready or ()):
        reasons.append("ready descriptors differ")
    if expected.rights is not None and expected.rights != actual.rights:
        reasons.append("descriptors received differ")
    return reasons


def _ready_set(ready: tuple[tuple[str, tuple[str, ...]], ...]) -> dict[str, frozenset[str]]:
    return {who: frozenset(events) for who, events in ready}


def _same_value(call: str | None, expected: object, actual: object) -> bool:
    if isinstance(expected, Fields):
        return same_fields(expected, actual)
    if isinstance(expected, Address) and isinstance(actual, Address):
        return _same_address(expected, actual)
    if call in _PID_RESULTS and isinstance(expected, int) and isinstance(actual, int):
        if expected > 0 and actual > 0:
            return True
    if isinstance(expected, float) or isinstance(actual, float):
        try:
            return abs(float(expected) - float(actual)) < 1e-6  # type: ignore[arg-type]  # any value: TypeError below
        except (TypeError, ValueError):
            return False
    return expected == actual
