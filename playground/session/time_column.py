"""The log's times (monotonic nanoseconds) as 32-bit offsets from a base that moves on: 4 bytes an entry, not 8.

A stream of entries comes within seconds of each other (10,000 connections made: 60,000 entries
in 30 s, issue 13); a time within ±2.1 s of the newest base is kept as its offset from it, a
time past that starts a new base. Entries far apart in time (a person typing) each start one:
16 bytes an entry, where there are few. A time rewritten past its base's reach is kept aside.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right

from playground.sequences import list_index

__all__ = ["TimeColumn"]

_REACH = (1 << 31) - 1  # what a C int holds either way


class TimeColumn:
    """Times by entry: `column[i]`, `column[i] = t`, `append(t)`, `len(column)`."""

    __slots__ = ("_offsets", "_bases", "_starts", "_aside")

    def __init__(self) -> None:
        self._offsets = array("i")
        self._bases = array("q")  # each run's base time
        self._starts = array("I")  # the entry each run starts at
        self._aside: dict[int, int] = {}  # entry -> a time rewritten past its run's reach

    def __len__(self) -> int:
        return len(self._offsets)

    def append(self, t_ns: int) -> None:
        bases = self._bases
        if bases and -_REACH <= t_ns - bases[-1] <= _REACH:
            self._offsets.append(t_ns - bases[-1])
            return
        bases.append(t_ns)
        self._starts.append(len(self._offsets))
        self._offsets.append(0)

    def _base(self, index: int) -> int:
        return self._bases[bisect_right(self._starts, index) - 1]

    def __getitem__(self, index: int) -> int:
        index = list_index(index, len(self._offsets), "time index out of range")
        if self._aside:
            found = self._aside.get(index)
            if found is not None:
                return found
        return self._base(index) + self._offsets[index]

    def __setitem__(self, index: int, t_ns: int) -> None:
        index = list_index(index, len(self._offsets), "time index out of range")
        offset = t_ns - self._base(index)
        if -_REACH <= offset <= _REACH:
            self._offsets[index] = offset
            self._aside.pop(index, None)
        else:
            self._aside[index] = t_ns
