"""Families of sockets: NAME[0], NAME[1], ... of one process, shown as one entry.

A `repeat N as i` block names its sockets `c[i]`: a lab may hold 10,000 of them. The Lab
pane shows each family as one node (`c[0..9999]  10,000 tcp ESTABLISHED`) that opens on
demand, and the Inspector a summary of the family (issue 13).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playground.session.view import SelectionKey, SocketView

__all__ = ["FAMILY_MIN", "FamilyView", "compact_names", "family_of", "group_families"]

_INDEXED = re.compile(r"(?P<base>[A-Za-z_][A-Za-z0-9_]*)\[(?P<index>[0-9]+)\]")
FAMILY_MIN = 2  # fewer sockets of one NAME[i] family are shown one by one


def family_of(name: str | None) -> tuple[str, int] | None:
    """("c", 7) for `c[7]`; None for a name that is not indexed."""
    if name is None or not name.endswith("]"):
        return None
    match = _INDEXED.fullmatch(name)
    return (match.group("base"), int(match.group("index"))) if match else None


@dataclass(frozen=True, eq=False)
class FamilyView:
    """The sockets NAME[i] of one process, by index, and what they add up to."""

    process: str
    name: str
    members: tuple[SocketView, ...]  # by index
    indices: tuple[int, ...]
    states: tuple[tuple[str, int], ...]  # most sockets first
    kinds: tuple[tuple[str, int], ...]
    inq: int  # bytes queued to read, all members together
    outq: int
    busy: int  # members with bytes queued either way

    @property
    def key(self) -> SelectionKey:
        return ("family", self.process, self.name)

    @property
    def count(self) -> int:
        return len(self.members)

    @property
    def first(self) -> int:
        return self.indices[0]

    @property
    def last(self) -> int:
        return self.indices[-1]

    @property
    def missing(self) -> int:
        """Indices between the first and the last with no socket (closed, or never made)."""
        return self.last - self.first + 1 - self.count

    @property
    def range_text(self) -> str:
        return f"{self.name}[{self.first}..{self.last}]"

    def summary(self) -> str:
        """`10,000 tcp ESTABLISHED`, or the count by state when they differ (`8 ESTABLISHED · 2 CLOSE-WAIT`)."""
        kind = self.kinds[0][0] if len(self.kinds) == 1 else "sockets"
        if len(self.states) == 1:
            return f"{self.count:,} {kind} {self.states[0][0]}"
        return f"{self.count:,} {kind}: " + " · ".join(f"{n:,} {state}" for state, n in self.states)

    def position(self, key: SelectionKey) -> int | None:
        """Where the socket with this key is among the members (None: not a member)."""
        for at, sock in enumerate(self.members):
            if sock.key == key:
                return at
        return None


def _family(process: str, name: str, members: list[tuple[int, SocketView]]) -> FamilyView:
    members.sort(key=lambda pair: pair[0])
    socks = tuple(sock for _, sock in members)
    states = Counter(sock.shown_state for sock in socks)
    kinds = Counter(sock.kind for sock in socks)
    return FamilyView(
        process=process,
        name=name,
        members=socks,
        indices=tuple(index for index, _ in members),
        states=tuple(sorted(states.items(), key=lambda item: (-item[1], item[0]))),
        kinds=tuple(sorted(kinds.items(), key=lambda item: (-item[1], item[0]))),
        inq=sum(sock.inq or 0 for sock in socks),
        outq=sum(sock.outq or 0 for sock in socks),
        busy=sum(1 for sock in socks if sock.inq or sock.outq),
    )


def group_families(process: str, sockets: tuple[SocketView, ...]) -> tuple[SocketView | FamilyView, ...]:
    """The sockets in descriptor order, each family (FAMILY_MIN members or more) in one entry where its first is."""
    by_family: dict[str, list[tuple[int, SocketView]]] = {}
    for sock in sockets:
        found = family_of(sock.name)
        if found is not None:
            by_family.setdefault(found[0], []).append((found[1], sock))
    grouped = {name for name, members in by_family.items() if len(members) >= FAMILY_MIN}
    if not grouped:
        return tuple(sockets)
    entries: list[SocketView | FamilyView] = []
    placed: set[str] = set()
    for sock in sockets:
        found = family_of(sock.name)
        if found is None or found[0] not in grouped:
            entries.append(sock)
        elif found[0] not in placed:
            placed.add(found[0])
            entries.append(_family(process, found[0], by_family[found[0]]))
    return tuple(entries)


_COMPACTED: dict[int, tuple[tuple, str]] = {}  # id(names) -> (names, text): the last few made
_COMPACTED_KEPT = 8


def compact_names(names: tuple[tuple[str, int], ...]) -> str:
    """`l=3, c[0..9999] (10,000)`: a process's names, each family of FAMILY_MIN or more in one item.

    The view gives the same names tuple while a process's names are unchanged: its text is
    made once (10,000 names took 30 ms, at every key press that showed the process).
    """
    kept = _COMPACTED.get(id(names))
    if kept is not None and kept[0] is names:
        return kept[1]
    text = _compact(names)
    if len(_COMPACTED) >= _COMPACTED_KEPT:
        _COMPACTED.pop(next(iter(_COMPACTED)))
    _COMPACTED[id(names)] = (names, text)
    return text


def _compact(names: tuple[tuple[str, int], ...]) -> str:
    by_family: dict[str, list[int]] = {}
    for var, _ in names:
        found = family_of(var)
        if found is not None:
            by_family.setdefault(found[0], []).append(found[1])
    items: list[str] = []
    placed: set[str] = set()
    for var, fd in names:
        found = family_of(var)
        if found is None or len(by_family[found[0]]) < FAMILY_MIN:
            items.append(f"{var}={fd}")
        elif found[0] not in placed:
            placed.add(found[0])
            indices = by_family[found[0]]
            items.append(f"{found[0]}[{min(indices)}..{max(indices)}] ({len(indices):,})")
    return ", ".join(items)
