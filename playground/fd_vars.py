"""fd -> variable as a list by descriptor: 8 bytes a name, not a dict entry and an int object.

The lab's index of each process's newest names and the session's tracked names both map
10,000 descriptors with 10,000 connections held (issue 13); a dict of them costs some 50
bytes a name and keeps every descriptor number above 256 as an object of its own.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator, Mapping, MutableMapping

__all__ = ["FdVars"]


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

    def pairs(self) -> Iterator[tuple[int, str]]:
        """(fd, variable) of every name (by descriptor, then the far ones as added): items() without a lookup each."""
        for fd, var in enumerate(self._dense):
            if var is not None:
                yield fd, var
        yield from self._sparse.items()

    def copy(self) -> FdVars:
        new = FdVars()
        new._dense, new._sparse, new._count = list(self._dense), dict(self._sparse), self._count
        return new

    def columns(self) -> tuple[array, list[str]]:
        """(the descriptors ascending, their names), made without a pair or a list of ints: a view
        remakes them at each refresh while a block adds names (10,000 pairs at a time, a few times a
        second, churn the small-object allocator's pools, issue 13)."""
        dense = self._dense
        fds = array("i", (fd for fd in range(len(dense)) if dense[fd] is not None))
        if self._sparse:
            fds = array("i", sorted([*fds, *self._sparse]))
        return fds, [self[fd] for fd in fds]

    def __repr__(self) -> str:
        return f"FdVars({dict(self)!r})"
