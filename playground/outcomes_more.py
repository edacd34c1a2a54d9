"""The outcomes of issue 13's further calls: limits and pairs, TCP_INFO's fields, recvmsg's rights, AF_UNIX paths."""

from __future__ import annotations

from typing import Any

from playground.constants import TCP_STATES
from playground.script.model import Address, Fields, Pair, UnixAddress

_CA_STATES = {0: "Open", 1: "Disorder", 2: "CWR", 3: "Recovery", 4: "Loss"}
# TCP_INFO's and SO_MEMINFO's fields whose value a script may state and have checked: the others
# (round-trip times, timers, the congestion window; buffer caps that sysctls and autotuning set,
# memory reserved ahead) differ from run to run and never fail a check.
STABLE_FIELDS = frozenset(
    ("state", "ca_state", "retransmits", "probes", "backoff", "unacked", "lost", "total_retrans", "snd_mss", "rcv_mss")
    + ("rmem_alloc", "wmem_alloc", "wmem_queued", "backlog", "drops")
)
_PAIRS = {"getrlimit", "socketpair"}
_DATA = {"readv", "recvmsg"}


def more_fields(call: str, raw: dict) -> dict[str, Any]:
    """Outcome fields for these calls (beyond value and signals), from a successful raw result."""
    fields: dict[str, Any] = {}
    if call in _PAIRS and isinstance(raw.get("value"), list):
        fields["value"] = Pair(*raw["value"])
    if isinstance(raw.get("fields"), dict):
        fields["value"] = tcp_info(raw["fields"])
    if call in ("getsockname", "getpeername") and isinstance(raw.get("path"), str):
        fields["value"] = UnixAddress(raw["path"])
    if call in _DATA and "data" in raw:
        fields["data"] = raw["data"]
    if call == "recvmsg":
        fields["rights"] = tuple(raw.get("rights", ()))
        if isinstance(raw.get("path"), str):
            fields["peer"] = UnixAddress(raw["path"])
        elif raw.get("peer"):
            fields["peer"] = Address(*raw["peer"])
    if call == "recvfrom" and isinstance(raw.get("path"), str):
        fields["peer"] = UnixAddress(raw["path"])
    if call == "accept4" and raw.get("peer"):
        fields["peer"] = Address(*raw["peer"])
    return fields


def tcp_info(raw: dict) -> Fields:
    """TCP_INFO as the script shows it: the state by name, then the numbers."""
    items: list[tuple[str, int | str]] = []
    for name, value in raw.items():
        if name == "state":
            items.append((name, TCP_STATES.get(value, str(value))))
        elif name == "ca_state":
            items.append((name, _CA_STATES.get(value, str(value))))
        else:
            items.append((name, value))
    return Fields(tuple(items))


def same_fields(expected: Fields, actual: object) -> bool:
    """A stated field set holds if each stated stable field has that value (the rest are not checked)."""
    if not isinstance(actual, Fields):
        return False
    have = dict(actual.items)
    return all(name not in STABLE_FIELDS or have.get(name) == value for name, value in expected.items)
