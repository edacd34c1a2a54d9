"""One process's sockets as the periodic inspection keeps them: in columns, not a dict a socket.

With 10,000 connections held, a dict per socket (with its addresses, ports and TCP_INFO)
cost some 900 bytes a socket (issue 13). Here a socket is a row of numbers in arrays
(descriptor, inode, ports, queues, the TCP_INFO fields shown) and one index into a table
of what many sockets have alike (family, type, state, hosts, options): 24 bytes while its
numbers fit 16 bits (an idle socket's do), a column made 32-bit when one does not.
An entry is made again, as the lab process sent it, when it is asked for.

A table never changes once made: a new reading that changes something makes a new table
(the arrays copied: memcpy), so what a view made of the last one stays true.
"""

from __future__ import annotations

import marshal
import sys
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence
from itertools import compress
from typing import overload

from playground.constants import TCP_SHOWN
from playground.sequences import item_or_slice

__all__ = ["NONE", "Shapes", "SocketTable", "value"]

NONE = 0  # a column's None: queues and TCP_INFO fields are kept plus one (a value past 32 bits keeps its entry)
_KEYS: tuple[str, ...] = ("fd", "socket", "ino", "family", "type", "listening", "local", "peer", "state")
_KEYS += ("tcp", "inq", "outq", "options")
_ODD = 0  # the shape of a row kept as its entry (an entry of another form than _KEYS)
_COLUMNS = ("fds", "inos", "shape_ids", "lports", "pports", "inqs", "outqs", *(f"tcp_{k}" for k in TCP_SHOWN))
# A socket's inode is 32 bits (sockfs numbers them so) and a port 16; descriptors, shapes, queues and TCP_INFO
# fields start at 16 bits and a column is made 32-bit when a number does not fit (_WIDER): a row is 24 bytes,
# where all in 64 bits took 88 (issue 13).
_TYPECODES = ("H", "I", "H", "H", "H", "H", "H", *("H" for _ in TCP_SHOWN))
_WIDER = {"H": "I", "I": "q"}  # (a row kept as its entry may have any descriptor a C int holds, negative too)
_ODD_ROW = (0, _ODD, 0, 0, *[NONE] * (2 + len(TCP_SHOWN)))  # a row kept as its entry, after its descriptor
_BIG = 64  # removing more rows than this at once: one pass (compress), not a memmove each


class Shapes:
    """What sockets have alike, each told once: (family, type, listening, state, local host,
    peer host, whether there is TCP_INFO, options)."""

    def __init__(self) -> None:
        self.rows: list[tuple | None] = [None]  # 0: _ODD
        self._ids: dict[tuple, int] = {}
        self._options: dict[bytes, dict] = {}

    def options(self, options: dict) -> dict:
        """The shared dict with these options (read-only: nothing changes an entry's options)."""
        key = marshal.dumps(options)
        return self._options.setdefault(key, options)

    def id(self, shape: tuple, options: dict) -> int:
        key = (*shape, marshal.dumps(options))
        found = self._ids.get(key)
        if found is None:
            found = self._ids[key] = len(self.rows)
            self.rows.append((*shape, self.options(options)))
        return found


def _end(value: object) -> tuple[str | None, int] | None:
    """(host, port) of an end that fits a row; None if it does not."""
    if value is None:
        return (None, 0)
    if isinstance(value, (tuple, list)) and len(value) == 2 and isinstance(value[0], str):
        if type(value[1]) is int and -(1 << 31) <= value[1] < (1 << 31):
            return (sys.intern(value[0]), value[1])
    return None


def _column(value: object) -> int | None:
    """A column's number for a value that fits one (an int, or None): the value plus one; None if it does not."""
    if value is None:
        return NONE
    if type(value) is int and 0 <= value < (1 << 32) - 1:
        return value + 1
    return None


def compact(shapes: Shapes, entry: dict) -> dict:
    """An entry kept as it is (one that fits no row), made small as a row would be: options
    shared, TCP_INFO cut to the fields shown, hosts interned (every key it had is kept)."""
    options = entry.get("options")
    if isinstance(options, dict):
        entry["options"] = shapes.options(options)
    tcp = entry.get("tcp")
    if isinstance(tcp, dict):
        entry["tcp"] = {k: tcp.get(k) for k in TCP_SHOWN}
    for end in ("local", "peer"):
        address = entry.get(end)
        if isinstance(address, (list, tuple)) and len(address) == 2 and isinstance(address[0], str):
            entry[end] = (sys.intern(address[0]), address[1])
    return entry


def encode(shapes: Shapes, entry: dict) -> tuple | None:
    """The row of an entry (fd, ino, shape, ports, queues, TCP_INFO), or None for one that does not fit."""
    if tuple(entry) != _KEYS or entry["socket"] is not True:
        return None
    fd, ino, tcp, options = entry["fd"], entry["ino"], entry["tcp"], entry["options"]
    if type(fd) is not int or not 0 <= fd < (1 << 31) or type(ino) is not int or not 0 <= ino < (1 << 32):
        return None
    local, peer = _end(entry["local"]), _end(entry["peer"])
    if local is None or peer is None or not isinstance(options, dict):
        return None
    if not (0 <= local[1] <= 0xFFFF and 0 <= peer[1] <= 0xFFFF):
        return None
    if tcp is not None and not isinstance(tcp, dict):
        return None
    numbers = [_column(entry["inq"]), _column(entry["outq"])]
    # TCP_INFO: only the fields the Inspector shows are kept (its state is the entry's own)
    numbers += [_column(tcp.get(k)) for k in TCP_SHOWN] if tcp is not None else [NONE] * len(TCP_SHOWN)
    if None in numbers:
        return None
    family, type_, listening, state = entry["family"], entry["type"], entry["listening"], entry["state"]
    if not (type(family) is int and type(type_) is int and type(listening) is bool):
        return None
    if state is not None and type(state) is not int:
        return None
    shape = (family, type_, listening, state, local[0], peer[0], tcp is not None)
    return (fd, ino, shapes.id(shape, options), local[1], peer[1], *numbers)


class SocketTable(Sequence[dict]):
    """One process's socket entries by descriptor, in columns; an entry is made when asked for."""

    __slots__ = ("shapes", "odd", *_COLUMNS)
    fds: array
    inos: array
    shape_ids: array
    lports: array
    pports: array
    inqs: array
    outqs: array

    def __init__(self, shapes: Shapes, rows: Sequence[tuple] = (), odd: dict[int, dict] | None = None) -> None:
        self.shapes = shapes
        self.odd: dict[int, dict] = odd or {}  # fd -> entry, for the rows of shape _ODD
        columns = zip(*rows, strict=True) if rows else [()] * len(_COLUMNS)
        for name, code, values in zip(_COLUMNS, _TYPECODES, columns, strict=True):
            setattr(self, name, _fitting(code, values))

    @classmethod
    def of(cls, shapes: Shapes, entries: list[dict]) -> SocketTable:
        """A table of these entries (by descriptor)."""
        rows, odd = [], {}
        for entry in sorted(entries, key=lambda e: e["fd"]):
            row = encode(shapes, entry)
            if row is None:
                odd[entry["fd"]] = compact(shapes, entry)
                row = (entry["fd"], *_ODD_ROW)
            rows.append(row)
        return cls(shapes, rows, odd)

    def _columns(self) -> list[array]:
        return [getattr(self, name) for name in _COLUMNS]

    def _copy(self) -> SocketTable:
        new = SocketTable.__new__(SocketTable)
        new.shapes, new.odd = self.shapes, dict(self.odd)
        for name in _COLUMNS:
            column = getattr(self, name)
            setattr(new, name, array(column.typecode, column))
        return new

    def changed(self, entries: list[dict], gone: list[int]) -> SocketTable:
        """A new table: these entries read again (new or changed), these descriptors gone."""
        new = self._copy()
        drop = {fd for fd in gone if fd in new}
        drop.update(e["fd"] for e in entries if e["fd"] in new)  # a changed row is taken out, then put in
        if drop:
            new._drop(drop)
        for entry in sorted(entries, key=lambda e: e["fd"]):
            new._put(entry)
        return new

    def _drop(self, fds: set[int]) -> None:
        for fd in fds:
            self.odd.pop(fd, None)
        if len(fds) > _BIG:
            keep = [fd not in fds for fd in self.fds]
            for name in _COLUMNS:
                column = getattr(self, name)
                setattr(self, name, array(column.typecode, compress(column, keep)))
            return
        for at in sorted((self.position(fd) for fd in fds), reverse=True):
            for column in self._columns():
                del column[at]

    def _put(self, entry: dict) -> None:
        fd = entry["fd"]
        row = encode(self.shapes, entry)
        if row is None:
            self.odd[fd] = compact(self.shapes, entry)
            row = (fd, *_ODD_ROW)
        fds = self.fds
        at = len(fds) if not fds or fds[-1] < fd else bisect_left(fds, fd)
        for name, number in zip(_COLUMNS, row, strict=True):
            column = getattr(self, name)
            while True:
                try:
                    column.insert(at, number)
                    break
                except OverflowError:  # (made wider, once: a row's numbers are checked to fit 32 bits)
                    column = array(_WIDER[column.typecode], column)
                    setattr(self, name, column)

    def position(self, fd: int) -> int:
        """The row of a descriptor (KeyError if the table has none)."""
        at = bisect_left(self.fds, fd)
        if at == len(self.fds) or self.fds[at] != fd:
            raise KeyError(fd)
        return at

    def __contains__(self, fd: object) -> bool:
        if not isinstance(fd, int):
            return False
        at = bisect_left(self.fds, fd)
        return at < len(self.fds) and self.fds[at] == fd

    def __len__(self) -> int:
        return len(self.fds)

    @overload
    def __getitem__(self, at: int) -> dict: ...
    @overload
    def __getitem__(self, at: slice) -> list[dict]: ...
    def __getitem__(self, at: int | slice) -> dict | list[dict]:
        return item_or_slice(at, len(self), self.entry)

    def __iter__(self) -> Iterator[dict]:
        return (self.entry(i) for i in range(len(self)))

    def shape(self, at: int) -> tuple | None:
        """What the row's socket has alike with others (None: a row kept as its entry)."""
        return self.shapes.rows[self.shape_ids[at]]

    def rows_with(self, **values: int) -> list[int]:
        """The rows whose columns hold these values (`rows_with(lports=80, pports=51000)`): the column
        where its value is rarest is searched as bytes (in C: 20,000 rows in microseconds, where a
        loop in Python took milliseconds), the others compared on the rows found. (A server's
        10,000 connections share their local port, a client's their peer port.)"""
        searches = []
        for name, value in values.items():
            column: array = getattr(self, name)
            try:
                needle = array(column.typecode, [value]).tobytes()
            except OverflowError:
                return []  # a value the column cannot hold is in no row
            data = column.tobytes()
            searches.append((data.count(needle), name, data, needle, column.itemsize))
        _, searched, data, needle, size = min(searches, key=lambda search: search[0])
        rows = []
        at = data.find(needle)
        while at != -1:
            if at % size:  # across two numbers: not one of them
                at = data.find(needle, at + 1)
                continue
            rows.append(at // size)
            at = data.find(needle, at + size)
        others = [(getattr(self, name), value) for name, value in values.items() if name != searched]
        return [row for row in rows if all(column[row] == value for column, value in others)]

    def rows_of_shapes(self, wanted: Callable[[tuple], bool]) -> list[int]:
        """The rows whose shape is wanted, and the rows kept as their entries (which have none), in order."""
        ids = [0, *(at for at, shape in enumerate(self.shapes.rows) if shape is not None and wanted(shape))]
        return sorted(row for shape_id in ids for row in self.rows_with(shape_ids=shape_id))

    def same(self, other: SocketTable) -> bool:
        """Whether the two tables hold the same entries (made with the same Shapes)."""
        return self.shapes is other.shapes and self.odd == other.odd and self._columns() == other._columns()

    def differing(self, other: SocketTable) -> set[int]:
        """The rows whose entries may differ from the other table's (same descriptors, same Shapes):
        any column but the inode differs, or a row kept as its entry is not the same entry."""
        rows: set[int] = set()
        for name in _COLUMNS[2:]:
            mine, theirs = getattr(self, name), getattr(other, name)
            if mine != theirs:
                rows.update(at for at, (a, b) in enumerate(zip(mine, theirs, strict=True)) if a != b)
        rows.update(self.position(fd) for fd, entry in self.odd.items() if other.odd.get(fd) is not entry)
        return rows

    def entry(self, at: int) -> dict:
        """The row as the lab process sent it (compacted as the inspection keeps it)."""
        shape = self.shapes.rows[self.shape_ids[at]]
        fd = self.fds[at]
        if shape is None:
            return self.odd[fd]
        family, type_, listening, state, lhost, phost, has_tcp, options = shape
        tcp = None
        if has_tcp:
            tcp = {k: value(getattr(self, f"tcp_{k}")[at]) for k in TCP_SHOWN}
        return {
            "fd": fd,
            "socket": True,
            "ino": self.inos[at],
            "family": family,
            "type": type_,
            "listening": listening,
            "local": (lhost, self.lports[at]) if lhost is not None else None,
            "peer": (phost, self.pports[at]) if phost is not None else None,
            "state": state,
            "tcp": tcp,
            "inq": value(self.inqs[at]),
            "outq": value(self.outqs[at]),
            "options": options,
        }

    def __eq__(self, other: object) -> bool:
        if isinstance(other, SocketTable):
            if self is other:
                return True
            return len(self) == len(other) and list(self) == list(other)
        if isinstance(other, list):
            return list(self) == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"SocketTable({list(self)!r})"


def _fitting(typecode: str, values: Sequence[int]) -> array:
    """The values in an array of this type, or of the next wider one they fit."""
    while True:
        try:
            return array(typecode, values)
        except OverflowError:
            typecode = _WIDER[typecode]


def value(number: int) -> int | None:
    """A column's number as the entry had it (None for NONE)."""
    return None if number == NONE else number - 1
