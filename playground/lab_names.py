"""A process's names (variable -> descriptor) as the lab keeps them, and the descriptor numbers' shared ints.

A module of its own, light: the session's view asks whether a process's names are these before
any lab has started (the TUI's first frame), without the lab's processes imported.
"""

from __future__ import annotations

from typing import Any

from playground.fd_vars import FdVars

__all__ = ["Names", "fd_number"]


# Descriptor numbers as int objects, one each, made 4,096 at a time. Names keeps each socket's
# number as long as the socket, and lab processes number their sockets alike (3, 4, ...): one int
# a number, not one a socket and process (CPython shares only those up to 256; bench/heap_layout.py,
# 10,000 held: small objects 526-529 -> 498-503 B a connection, issue 13). The table grows only to
# the next 4,096 and never past 65,536: one dup2 to a far number would otherwise keep megabytes of
# ints for the interpreter's life (a number past the table is kept as it came).
_FD_NUMBERS: list[int] = list(range(256))
_FD_STEP = 4096
_FD_MAX = 65_536


def fd_number(fd: int) -> int:
    """The shared int object of this descriptor number (the number itself past the table)."""
    table = _FD_NUMBERS
    if 0 <= fd < len(table):
        return table[fd]
    grown = min(len(table) + _FD_STEP, _FD_MAX)
    if len(table) <= fd < grown:
        table.extend(range(len(table), grown))
        return table[fd]
    return fd


class Names(dict[str, int]):
    """A process's names (variable -> descriptor), knowing which name of each number is the newest.

    The newest name of a number is the last one with that number in the dict's order (a name
    given anew is popped and set again, so it comes last). That is what a scan of every name
    gave; the index gives it without one (it was asked on every bind and connect: O(names)
    a step, with 10,000 connections held). A new name set at the end keeps the index; any other
    change drops it, to be rebuilt when next asked (`|=`, which the lab never uses on names, is not tracked).
    """

    _index: FdVars | None = None  # a list by descriptor: 8 bytes a number (issue 13)
    version = 0  # counts the changes: the view remakes what it shows of the names only when it moved

    def newest(self, fd: int) -> str | None:
        return self.by_descriptor().get(fd)

    def by_descriptor(self) -> FdVars:
        """fd -> the newest name of that number (the index itself: read it, never change it)."""
        if self._index is None:
            index = self._index = FdVars()
            for var, number in self.items():
                index[number] = var  # the last name of each number wins
        return self._index

    def __setitem__(self, var: str, fd: int) -> None:
        self.version += 1
        if var in self or self._index is None:
            self._index = None
        else:
            self._index[fd] = var  # a new name comes last: the newest of its number
        super().__setitem__(var, fd_number(fd) if type(fd) is int else fd)

    def __delitem__(self, var: str) -> None:
        self._index = None
        self.version += 1
        super().__delitem__(var)

    def pop(self, var: str, *default: Any) -> Any:
        if var in self:
            self._index = None
            self.version += 1
        return super().pop(var, *default)

    def popitem(self) -> tuple[str, int]:
        self._index = None
        self.version += 1
        return super().popitem()

    def clear(self) -> None:
        self._index = None
        self.version += 1
        super().clear()

    def update(self, *args: Any, **kwargs: Any) -> None:
        self._index = None
        self.version += 1
        super().update(*args, **kwargs)

    def setdefault(self, var: str, fd: int) -> int:
        if var not in self:
            self[var] = fd
        return self[var]
