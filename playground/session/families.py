"""Families of sockets: NAME[0], NAME[1], ... of one process, shown as one entry.

A `repeat N as i` block names its sockets `c[i]`: a lab may hold 10,000 of them. The Lab
pane shows each family as one node (`c[0..9999]  10,000 tcp ESTABLISHED`) that opens on
demand, and the Inspector a summary of the family (issue 13).
"""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, overload

from playground.name_codes import INDEX_MASK, family_name, split_name
from playground.session.names import NameList, SortedNames

if TYPE_CHECKING:
    from playground.session.view import SelectionKey, SocketView


class LazySockets(Protocol):
    """A process's sockets whose views are made when asked for (view.SocketViews)."""

    def __len__(self) -> int: ...
    def view(self, at: int) -> SocketView: ...
    def name_at(self, at: int) -> str | None: ...
    def names_in_order(self) -> NameList: ...
    def position(self, fd: int) -> int | None: ...
    def summary(self, at: int) -> tuple[str, str, int | None, int | None]: ...


__all__ = ["FAMILY_MIN", "FamilyView", "Members", "compact_names", "group_families"]

FAMILY_MIN = 2  # fewer sockets of one NAME[i] family are shown one by one


@dataclass(frozen=True, eq=False)
class FamilyView:
    """The sockets NAME[i] of one process, by index, and what they add up to."""

    process: str
    name: str
    members: Sequence[SocketView]  # by index (Members: each view made when asked for)
    indices: Sequence[int]
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
        if isinstance(self.members, Members):
            return self.members.position(key) if key[:2] == ("socket", self.process) else None
        for at, sock in enumerate(self.members):
            if sock.key == key:
                return at
        return None

    def _summary(self, at: int) -> tuple[str, str, int | None, int | None]:
        if isinstance(self.members, Members):
            return self.members.summary(at)
        sock = self.members[at]
        return sock.kind, sock.shown_state, sock.inq, sock.outq

    def in_state(self, state: str, limit: int) -> list[int]:
        """The indices of the first `limit` members in this state (no view made)."""
        found: list[int] = []
        for at in range(self.count):
            if self._summary(at)[1] == state:
                found.append(self.indices[at])
                if len(found) == limit:
                    break
        return found

    def busiest(self, limit: int) -> list[tuple[int, int | None, int | None]]:
        """(index, inq, outq) of the `limit` members with the most bytes queued, busiest first."""
        queued: list[tuple[int, int, int | None, int | None]] = []
        idle: list[tuple[int, int, int | None, int | None]] = []
        for at in range(self.count):
            _, _, inq, outq = self._summary(at)
            if inq or outq:
                queued.append((-((inq or 0) + (outq or 0)), at, inq, outq))
            elif len(idle) < limit:
                idle.append((0, at, inq, outq))  # after the busy ones, as a stable sort puts them
        queued.sort(key=lambda item: (item[0], item[1]))
        return [(self.indices[at], inq, outq) for _, at, inq, outq in (queued + idle)[:limit]]


class Members(Sequence["SocketView"]):
    """A family's members, by index: positions in the process's sockets, each view made when asked for."""

    __slots__ = ("sockets", "at")

    def __init__(self, sockets: LazySockets, at: array) -> None:
        self.sockets = sockets
        self.at = at

    def __len__(self) -> int:
        return len(self.at)

    @overload
    def __getitem__(self, i: int) -> SocketView: ...
    @overload
    def __getitem__(self, i: slice) -> tuple[SocketView, ...]: ...
    def __getitem__(self, i: int | slice) -> SocketView | tuple[SocketView, ...]:
        if isinstance(i, slice):
            return tuple(self.sockets.view(at) for at in self.at[i])
        return self.sockets.view(self.at[i])

    def __iter__(self) -> Iterator[SocketView]:
        return (self.sockets.view(at) for at in self.at)

    def summary(self, i: int) -> tuple[str, str, int | None, int | None]:
        return self.sockets.summary(self.at[i])

    def position(self, key: SelectionKey) -> int | None:
        found = self.sockets.position(key[2]) if isinstance(key[2], int) else None
        if found is None:
            return None
        try:
            return self.at.index(found)
        except ValueError:
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


def _lazy_family(process: str, name: str, sockets: LazySockets, at: array, indices: array) -> FamilyView:
    """A family of `at` (positions in the process's sockets), `indices` their indices, both by index."""
    states: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    inq = outq = busy = 0
    for position in at:
        kind, state, sock_inq, sock_outq = sockets.summary(position)
        states[state] += 1
        kinds[kind] += 1
        inq += sock_inq or 0
        outq += sock_outq or 0
        busy += 1 if sock_inq or sock_outq else 0
    return FamilyView(
        process=process,
        name=name,
        members=Members(sockets, at),
        indices=indices,
        states=tuple(sorted(states.items(), key=lambda item: (-item[1], item[0]))),
        kinds=tuple(sorted(kinds.items(), key=lambda item: (-item[1], item[0]))),
        inq=inq,
        outq=outq,
        busy=busy,
    )


def _narrow(indices: array) -> array:
    """The indices in C ints when they fit (4 bytes a member the view keeps, not 8)."""
    try:
        return array("i", indices)
    except OverflowError:
        return indices


def _group_lazy(process: str, sockets: LazySockets) -> tuple[SocketView | FamilyView, ...]:
    """As group_families, reading names and rows: a view is made only for a socket not in a family.

    Each socket's family and index go into arrays, not a tuple each: a view is grouped again at
    each refresh while a block adds names, and 10,000 tuples (and their index ints) a time, alive
    together, churn the small-object allocator's pools (issue 13)."""
    count = len(sockets)
    codes = array("i", bytes(4 * count))  # the socket's family's number + 1 (0: in none)
    indices = array("q", bytes(8 * count))
    numbers: dict[str, int] = {}
    sizes: list[int] = []
    in_order = sockets.names_in_order()
    name_codes, odd = in_order.codes, in_order.odd
    for at in range(count):
        code = name_codes[at]
        # (a family member's name by its code, read without a str made; another name as it is)
        found = (family_name(code), code & INDEX_MASK) if code else split_name(odd.get(at))
        if found is not None:
            number = numbers.setdefault(found[0], len(sizes))
            if number == len(sizes):
                sizes.append(0)
            sizes[number] += 1
            codes[at] = number + 1
            indices[at] = found[1]
    positions = [array("i") if size >= FAMILY_MIN else None for size in sizes]
    for at in range(count):
        members = positions[codes[at] - 1] if codes[at] else None
        if members is not None:
            members.append(at)
    names = list(numbers)
    entries: list[SocketView | FamilyView] = []
    for at in range(count):
        members = positions[codes[at] - 1] if codes[at] else None
        if members is None:
            entries.append(sockets.view(at))
        elif members[0] == at:  # where the family's first socket (by descriptor) is
            by_index = array("q", (indices[position] for position in members))
            if any(by_index[i] > by_index[i + 1] for i in range(len(by_index) - 1)):
                order = sorted(range(len(members)), key=by_index.__getitem__)
                members = array("i", (members[i] for i in order))
                by_index = array("q", (indices[position] for position in members))
            entries.append(_lazy_family(process, names[codes[at] - 1], sockets, members, _narrow(by_index)))
    return tuple(entries)


def group_families(process: str, sockets: Sequence[SocketView]) -> tuple[SocketView | FamilyView, ...]:
    """The sockets in descriptor order, each family (FAMILY_MIN members or more) in one entry where its first is."""
    if hasattr(sockets, "names_in_order"):
        return _group_lazy(process, sockets)  # type: ignore[arg-type]
    by_family: dict[str, list[tuple[int, SocketView]]] = {}
    for sock in sockets:
        found = split_name(sock.name)
        if found is not None:
            by_family.setdefault(found[0], []).append((found[1], sock))
    grouped = {name for name, members in by_family.items() if len(members) >= FAMILY_MIN}
    if not grouped:
        return tuple(sockets)
    entries: list[SocketView | FamilyView] = []
    placed: set[str] = set()
    for sock in sockets:
        found = split_name(sock.name)
        if found is None or found[0] not in grouped:
            entries.append(sock)
        elif found[0] not in placed:
            placed.add(found[0])
            entries.append(_family(process, found[0], by_family[found[0]]))
    return tuple(entries)


def compact_names(names: Sequence[tuple[str, int]]) -> str:
    """`l=3, c[0..9999] (10,000)`: a process's names, each family of FAMILY_MIN or more in one item.

    The view gives the same SortedNames while a process's names are unchanged: its text is
    made once, and kept with it (10,000 names took 30 ms, at every key press that showed the
    process).
    """
    if isinstance(names, SortedNames):
        if names.compacted is None:
            names.compacted = _compact(names)
        return names.compacted
    return _compact(names)


def _compact(names: Sequence[tuple[str, int]]) -> str:
    by_family: dict[str, list[int]] = {}  # base -> [count, lowest index, highest index]
    for var, _ in names:
        found = split_name(var)
        if found is not None:
            seen = by_family.get(found[0])
            if seen is None:
                by_family[found[0]] = [1, found[1], found[1]]
            else:
                seen[0] += 1
                seen[1], seen[2] = min(seen[1], found[1]), max(seen[2], found[1])
    items: list[str] = []
    placed: set[str] = set()
    for var, fd in names:
        found = split_name(var)
        if found is None or by_family[found[0]][0] < FAMILY_MIN:
            items.append(f"{var}={fd}")
        elif found[0] not in placed:
            placed.add(found[0])
            count, first, last = by_family[found[0]]
            items.append(f"{found[0]}[{first}..{last}] ({count:,})")
    return ", ".join(items)
