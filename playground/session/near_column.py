"""The log's shown lines and each entry's line: numbers near their own position, kept as the difference.

Shown line p is entry p, give or take the entries the log put in time order (packets captured
before a call was logged) or left out (a filter); entry i's line is line i, as near. Kept as
the difference from the position in 16 bits, a column is 2 bytes an entry, not 4 (issue 13:
60,000 entries with 10,000 connections held). A difference past 16 bits (a filter leaving
out thousands) makes the column 32-bit, once, then 64.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator, Sequence
from itertools import count
from operator import add, sub
from typing import overload

from playground.sequences import item_or_slice, list_index

__all__ = ["MISSING", "NearColumn"]

MISSING = -1  # an entry not shown (kept as its type's lowest number)
_WIDER = {"h": "i", "i": "q"}
_LOWEST = {"h": -(1 << 15), "i": -(1 << 31), "q": -(1 << 63)}


class NearColumn(Sequence[int]):
    """Non-negative numbers (or MISSING) by position, each kept as its difference from the position."""

    __slots__ = ("_deltas",)

    def __init__(self, values: Iterable[int] = ()) -> None:
        self._deltas = array("h")
        if isinstance(values, range) and values.start == 0 and values.step == 1:
            self._deltas.frombytes(bytes(2 * len(values)))  # (each at its own position: the log unfiltered)
        else:
            self.extend(values)

    @classmethod
    def of(cls, values: Sequence[int]) -> NearColumn:
        """The column of these numbers (MISSING none of them), made at once: a relist of 60,000 lines."""
        made = cls()
        for typecode in ("h", "i", "q"):
            try:
                deltas = array(typecode, map(sub, values, count()))  # (in C)
            except OverflowError:
                continue
            if _LOWEST[typecode] not in deltas:  # (that number stands for MISSING)
                made._deltas = deltas
                return made
        raise OverflowError("numbers too far from their positions")

    @classmethod
    def positions(cls, values: NearColumn, length: int) -> NearColumn:
        """Where each of 0..length-1 is among `values` (MISSING: not there), made at once: value v at
        position p is p - v from v's own position, the other's difference negated. `values` are
        distinct, under `length`, and none MISSING (what `of` makes of a filtered relist)."""
        deltas = values._deltas
        made = cls()
        out = made._deltas = array(deltas.typecode, [_LOWEST[deltas.typecode]]) * length
        for position, delta in enumerate(deltas):
            out[position + delta] = -delta
        return made

    def __len__(self) -> int:
        return len(self._deltas)

    @overload
    def __getitem__(self, at: int) -> int: ...
    @overload
    def __getitem__(self, at: slice) -> list[int]: ...
    def __getitem__(self, at: int | slice) -> int | list[int]:
        return item_or_slice(at, len(self._deltas), self._value, "position out of range")

    def _value(self, at: int) -> int:
        delta = self._deltas[at]
        return MISSING if delta == _LOWEST[self._deltas.typecode] else at + delta

    def __iter__(self) -> Iterator[int]:
        deltas = self._deltas
        lowest = _LOWEST[deltas.typecode]
        if lowest not in deltas:
            return map(add, count(), deltas)  # (no MISSING: a position and its difference added in C)
        return (MISSING if delta == lowest else at + delta for at, delta in enumerate(deltas))

    def __setitem__(self, at: int, value: int) -> None:
        at = list_index(at, len(self._deltas), "position out of range")
        self._deltas[at] = self._code(at, value)

    def append(self, value: int) -> None:
        code = self._code(len(self._deltas), value)  # (the column made wider first, if it must be)
        self._deltas.append(code)

    def extend(self, values: Iterable[int]) -> None:
        for value in values:
            self.append(value)

    def _code(self, at: int, value: int) -> int:
        """What the column keeps for value at `at`, the column made wider first if it does not fit."""
        while True:
            typecode = self._deltas.typecode
            lowest = _LOWEST[typecode]
            if value == MISSING:
                return lowest
            delta = value - at
            if lowest < delta <= -lowest - 1:
                return delta
            if typecode not in _WIDER:
                raise OverflowError(f"{value} is too far from {at}")
            wider = _WIDER[typecode]
            self._deltas = array(wider, (_LOWEST[wider] if d == lowest else d for d in self._deltas))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (NearColumn, array, list, tuple, range)):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"NearColumn({list(self)!r})"
