"""A process's names as the view keeps them: frozen, in a list and an array, not a dict and tuples.

With 10,000 connections a process has 10,000 names; a dict (fd -> variable) and a tuple of
(variable, fd) pairs cost some 100 bytes a name (issue 13). Here each is a list of the
variables (the process's own strings) and an array of the descriptors (C ints): 12 bytes a name.
The session's tracked names (fd -> variable, changed at each call) are a list by descriptor
(playground.fd_vars, which the lab's own index of names is too).
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Iterator, Mapping, Sequence
from typing import overload

from playground.fd_vars import FdVars

__all__ = ["FdNames", "FdVars", "SortedNames"]


class FdNames(Mapping[int, str]):
    """fd -> variable, frozen (by descriptor)."""

    __slots__ = ("fds", "vars")

    def __init__(self, names: Mapping[int, str]) -> None:
        if isinstance(names, FdVars):
            self.fds, self.vars = names.columns()
        else:
            fds = sorted(names)
            self.fds = array("i", fds)
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

    def __init__(self, names: Mapping[str, int] | list[tuple[str, int]]) -> None:
        """From a process's names (var -> fd; sorted by variable without a pair made), or from pairs."""
        self.compacted: str | None = None  # families.compact_names's text of these names, once made
        if isinstance(names, Mapping):
            self.vars = sorted(names)
            self.fds = array("i", map(names.__getitem__, self.vars))
        else:
            pairs = sorted(names)
            self.vars = [var for var, _ in pairs]
            self.fds = array("i", [fd for _, fd in pairs])

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
