"""fd -> variable as an array by descriptor: 4 bytes a name of a family, not a dict entry and a str.

The lab's index of each process's newest names, the session's tracked names and the owners of
the lab's columns by descriptor each map 10,000 descriptors with 10,000 connections held
(issue 13); a dict of them costs some 50 bytes a name, and a list of the names 8 bytes and the
name's str. A name of a family (`c[7]`) is kept as its code (playground.name_codes).
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator, Mapping, MutableMapping

from playground.name_codes import code_of, name_of

__all__ = ["FdVars"]


class FdVars(MutableMapping[int, str]):
    """fd -> variable: the code of each family member's name in an array by descriptor.

    A descriptor far above the others (a dup2 to 100,000), or one whose name has no code (`l`),
    is kept in a dict beside the array.
    """

    __slots__ = ("_dense", "_sparse", "_count")

    def __init__(self, names: Mapping[int, str] | None = None) -> None:
        self._dense = array("I")  # codes by descriptor (0: none there)
        self._sparse: dict[int, str] = {}
        self._count = 0
        for fd, var in (names or {}).items():
            self[fd] = var

    def __getitem__(self, fd: int) -> str:
        # A descriptor is in one of the two: the array, or the dict (where it went while far above the
        # array, which may have grown past it since, or with a name without a code).
        if isinstance(fd, int) and 0 <= fd < len(self._dense):
            code = self._dense[fd]
            if code:
                return name_of(code)
        found = self._sparse.get(fd)
        if found is None:
            raise KeyError(fd)
        return found

    def get(self, fd: int, default: str | None = None) -> str | None:  # type: ignore[override]
        try:
            return self[fd]
        except KeyError:
            return default

    def code(self, fd: int) -> int:
        """The code of fd's name (0: no name, or one kept as a str)."""
        dense = self._dense
        return dense[fd] if 0 <= fd < len(dense) else 0

    def __setitem__(self, fd: int, var: str) -> None:
        self.set_code(fd, code_of(var), var)

    def set_code(self, fd: int, code: int, var: str | None = None) -> None:
        """Name fd by a code (0: by var, which has none)."""
        dense = self._dense
        if code and 0 <= fd < len(dense) + max(1024, 2 * self._count):
            if fd >= len(dense):
                dense.frombytes(bytes(dense.itemsize * (fd + 1 - len(dense))))
            if not dense[fd] and self._sparse.pop(fd, None) is None:
                self._count += 1
            dense[fd] = code
            return
        if var is None:
            var = name_of(code)
        if 0 <= fd < len(dense) and dense[fd]:
            dense[fd] = 0  # (now in the dict)
        elif fd not in self._sparse:
            self._count += 1
        self._sparse[fd] = var

    def __delitem__(self, fd: int) -> None:
        if isinstance(fd, int) and 0 <= fd < len(self._dense) and self._dense[fd]:
            self._dense[fd] = 0
        else:
            del self._sparse[fd]
        self._count -= 1

    def __iter__(self) -> Iterator[int]:
        dense = self._dense
        named = (fd for fd in range(len(dense)) if dense[fd])
        if not self._sparse:
            yield from named
        else:
            yield from sorted([*named, *self._sparse])

    def __len__(self) -> int:
        return self._count

    def copy(self) -> FdVars:
        new = FdVars()
        new._dense, new._sparse, new._count = array("I", self._dense), dict(self._sparse), self._count
        return new

    def columns(self) -> tuple[array, array, dict[int, str]]:
        """(the descriptors ascending, their names' codes, the names without a code by position), made
        without a pair, a list of ints or a str: a view remakes them at each refresh while a block adds
        names (10,000 pairs at a time, a few times a second, churn the small-object allocator's pools,
        issue 13)."""
        dense = self._dense
        fds = array("i", (fd for fd in range(len(dense)) if dense[fd]))
        if not self._sparse:
            return fds, array("I", (dense[fd] for fd in fds)), {}
        fds = array("i", sorted([*fds, *self._sparse]))
        codes = array("I", (self.code(fd) for fd in fds))
        return fds, codes, {at: self._sparse[fd] for at, fd in enumerate(fds) if not codes[at]}

    def __repr__(self) -> str:
        return f"FdVars({dict(self)!r})"
