"""A process's names as the view keeps them: frozen, in a list and an array, not a dict and tuples.

With 10,000 connections a process has 10,000 names; a dict (fd -> variable) and a tuple of
(variable, fd) pairs cost some 100 bytes a name (issue 13). Here each is a list of the
variables (the process's own strings) and an array of the descriptors: 16 bytes a name.
The session's tracked names (fd -> variable, changed at each call) are a list by descriptor.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from typing import overload

__all__ = ["FdNames", "FdVars", "SortedNames"]


class FdVars(MutableMapping[int, str]):
    """fd -> variable, as the session tracks it: a list by descriptor (8 bytes a name, not a dict entry).

    A descriptor far above the others (a dup2 to 100,000) is kept in a dict beside the list.
    """

    __slots__ = ("_dense", "_sparse", "_count")

    def __init__(self, names: Mapping[int, str] | None = None) -> None:
        self._dense: list[str | None] = []
        self._sparse: dict[int, str] = {}
        self._count = 0
        for fd, var in (names or {}).items():
            self[fd] = var

    def __getitem__(self, fd: int) -> str:
        # A descriptor is in one of the two: the list, or the dict (where it went while far above the list,
        # which may have grown past it since).
        if isinstance(fd, int) and 0 <= fd < len(self._dense):
            var = self._dense[fd]
            if var is not None:
                return var
        found = self._sparse.get(fd)
        if found is None:
            raise KeyError(fd)
        return found

    def __setitem__(self, fd: int, var: str) -> None:
        dense = self._dense
        if 0 <= fd < len(dense) + max(1024, 2 * self._count):
            if fd >= len(dense):
                dense.extend([None] * (fd + 1 - len(dense)))
            if dense[fd] is None and self._sparse.pop(fd, None) is None:
                self._count += 1
            dense[fd] = var
        else:
            if fd not in self._sparse:
                self._count += 1
            self._sparse[fd] = var

    def __delitem__(self, fd: int) -> None:
        if isinstance(fd, int) and 0 <= fd < len(self._dense) and self._dense[fd] is not None:
            self._dense[fd] = None
        else:
            del self._sparse[fd]
        self._count -= 1

    def __iter__(self) -> Iterator[int]:
        dense = self._dense
        yield from (fd for fd in range(len(dense)) if dense[fd] is not None)
        yield from self._sparse

    def __len__(self) -> int:
        return self._count

    def __repr__(self) -> str:
        return f"FdVars({dict(self)!r})"


class FdNames(Mapping[int, str]):
    """fd -> variable, frozen (by descriptor)."""

    __slots__ = ("fds", "vars")

    def __init__(self, names: dict[int, str]) -> None:
        fds = sorted(names)
        self.fds = array("q", fds)
        self.vars = [names[fd] for fd in fds]

    def __getitem__(self, fd: int) -> str:
        at = bisect_left(self.fds, fd) if isinstance(fd, int) else len(self.fds)
        if at == len(self.fds) or self.fds[at] != fd:
            raise KeyError(fd)
        return self.vars[at]

    def get(self, fd: int, default: str | None = None) -> str | None:  # type: ignore[override]
        at = bisect_left(self.fds, fd)
        return self.vars[at] if at < len(self.fds) and self.fds[at] == fd else default

    def __iter__(self) -> Iterator[int]:
        return iter(self.fds)

    def __len__(self) -> int:
        return len(self.fds)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FdNames):
            return self is other or (self.fds == other.fds and self.vars == other.vars)
        return super().__eq__(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"FdNames({dict(self)!r})"


class SortedNames(Sequence[tuple[str, int]]):
    """A process's names sorted, as (variable, fd) pairs: each pair made when asked for."""

    __slots__ = ("vars", "fds", "compacted")

    def __init__(self, pairs: list[tuple[str, int]]) -> None:
        self.compacted: str | None = None  # families.compact_names's text of these names, once made
        pairs = sorted(pairs)
        self.vars = [var for var, _ in pairs]
        self.fds = array("q", [fd for _, fd in pairs])

    def __len__(self) -> int:
        return len(self.vars)

    @overload
    def __getitem__(self, at: int) -> tuple[str, int]: ...
    @overload
    def __getitem__(self, at: slice) -> tuple[tuple[str, int], ...]: ...
    def __getitem__(self, at: int | slice) -> tuple[str, int] | tuple[tuple[str, int], ...]:
        if isinstance(at, slice):
            return tuple(zip(self.vars[at], self.fds[at], strict=True))
        return (self.vars[at], self.fds[at])

    def __iter__(self) -> Iterator[tuple[str, int]]:
        return zip(self.vars, self.fds, strict=True)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, SortedNames):
            return self is other or (self.vars == other.vars and self.fds == other.fds)
        if isinstance(other, tuple):
            return tuple(self) == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self.vars))

    def __repr__(self) -> str:
        return f"SortedNames({tuple(self)!r})"
