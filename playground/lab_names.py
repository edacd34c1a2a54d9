"""A process's names (variable -> descriptor) as the lab keeps them: a family's names in arrays by index.

A module of its own, light: the session's view asks whether a process's names are these before
any lab has started (the TUI's first frame), without the lab's processes imported.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator, Mapping, MutableMapping
from itertools import compress
from typing import Any

from playground.fd_vars import FdVars
from playground.name_codes import INDEX_BITS, INDEX_MASK, code_of, family_name, name_of, split_name

__all__ = ["Names"]


_FAR = 4096  # an index this far past a family's arrays (s[1000000] beside s[0]) is kept in the dict
_FD_LOW, _FD_HIGH = -(2**31), 2**31 - 1  # what a C int holds
_ORDER_MAX = 2**32 - 1  # names given past this many in one process are kept in the dict


class _Family:
    """One family's names in a process: the descriptor and the order given of each index."""

    __slots__ = ("fds", "order", "count")

    def __init__(self) -> None:
        self.fds = array("i")  # by index
        self.order = array("I")  # by index: when the name was first given (0: no such name)
        self.count = 0


class Names(MutableMapping[str, int]):
    """A process's names (variable -> descriptor), knowing which name of each number is the newest.

    It reads as the dict it replaced: names in the order first given (a name given anew keeps its
    place; one popped and set again comes last). A family member's name (`c[7]`) is kept in its
    family's arrays, by index: 8 bytes, not a dict entry, a str and an int (issue 13: 10,000
    connections held); any other name, or one past what the arrays keep, in a dict.

    The newest name of a number is the last one with that number in that order: what a scan of
    every name gave; the index gives it without one (it was asked on every bind and connect:
    O(names) a step, with 10,000 connections held). A new name given keeps the index; any other
    change drops it, to be rebuilt when next asked.
    """

    __slots__ = ("_plain", "_plain_order", "_families", "_clock", "_index", "version")

    def __init__(self, names: Mapping[str, int] | None = None) -> None:
        self._plain: dict[str, int] = {}
        self._plain_order: dict[str, int] = {}
        self._families: dict[int, _Family] = {}
        self._clock = 0
        self._index: FdVars | None = None  # by descriptor: 4 bytes a family member's name
        self.version = 0  # counts the changes: the view remakes what it shows of the names only when it moved
        for var, fd in (names or {}).items():
            self[var] = fd

    def _place(self, var: object, code: int | None = None) -> tuple[_Family, int] | None:
        """var's family and index, if var is kept there (`code`: var's, if known)."""
        if code is None:
            code = code_of(var) if isinstance(var, str) else 0
        if not code:
            return None
        family = self._families.get(code >> INDEX_BITS)
        index = code & INDEX_MASK
        if family is None or index >= len(family.order) or not family.order[index]:
            return None
        return family, index

    def __getitem__(self, var: str) -> int:
        placed = self._place(var)
        if placed is not None:
            return placed[0].fds[placed[1]]  # (an int made as it is read: none kept a name)
        return self._plain[var]

    def get(self, var: str, default: Any = None) -> Any:
        placed = self._place(var)
        if placed is not None:
            return placed[0].fds[placed[1]]
        return self._plain.get(var, default)

    def __contains__(self, var: object) -> bool:
        return isinstance(var, str) and (var in self._plain or self._place(var) is not None)

    def __len__(self) -> int:
        return len(self._plain) + sum(family.count for family in self._families.values())

    def __iter__(self) -> Iterator[str]:
        if not self._families:
            yield from list(self._plain)
            return
        for _, name in self._ordered():
            yield name if isinstance(name, str) else name_of(name)

    def _ordered(self) -> list[tuple[int, str | int]]:
        """(order, the name or its code) of every name, in the order given."""
        out: list[tuple[int, str | int]] = [(self._plain_order[var], var) for var in self._plain]
        for number, family in self._families.items():
            order = family.order
            out.extend((order[index], number << INDEX_BITS | index) for index in range(len(order)) if order[index])
        out.sort()
        return out

    def natural(self) -> tuple[array, dict[int, str], array] | None:
        """(codes, the names kept as strs by position, descriptors) of every name in natural order
        (name_codes.natural_key), made without a str or a pair a name: a view sorts a process's names at
        each refresh while a block adds them (10,000 a time churned the small-object allocator, issue 13).
        None where a name kept as a str is a family's (`c[07]`): those are sorted as strs."""
        groups: list[tuple[str, str | int]] = []  # (where it sorts, the name or the family's number)
        for var in self._plain:
            if split_name(var) is not None:
                return None
            groups.append((var, var))
        for number in self._families:
            groups.append((family_name(number << INDEX_BITS) + "[", number))
        groups.sort(key=lambda group: group[0])
        codes, odd, fds = array("I"), {}, array("i")
        for _, what in groups:
            if isinstance(what, str):
                odd[len(codes)] = what
                codes.append(0)
                fds.append(self._plain[what])
            else:
                family, first = self._families[what], what << INDEX_BITS
                codes.extend(compress(range(first, first + len(family.order)), family.order))
                fds.extend(compress(family.fds, family.order))
        return codes, odd, fds

    def newest(self, fd: int) -> str | None:
        return self.by_descriptor().get(fd)

    def by_descriptor(self) -> FdVars:
        """fd -> the newest name of that number (the index itself: read it, never change it)."""
        if self._index is None:
            index = self._index = FdVars()
            families, plain = self._families, self._plain
            for _, name in self._ordered():  # the last name of each number wins
                if isinstance(name, str):
                    index[plain[name]] = name
                else:
                    family = families[name >> INDEX_BITS]
                    index.set_code(family.fds[name & INDEX_MASK], name)
        return self._index

    def __setitem__(self, var: str, fd: int) -> None:
        self.version += 1
        code = code_of(var) if isinstance(var, str) else 0  # (read once: a block gives thousands of names)
        placed = self._place(var, code)
        in_plain = placed is None and var in self._plain
        if placed is not None or in_plain or self._index is None:
            self._index = None
        else:
            self._index[fd] = var  # a new name comes last: the newest of its number
        if in_plain:
            self._plain[var] = fd
            return
        if placed is not None:
            family, index = placed
            if type(fd) is int and _FD_LOW <= fd <= _FD_HIGH:
                family.fds[index] = fd
                return
            family.order[index], order = 0, family.order[index]  # (moved to the dict, in its place)
            family.count -= 1
        else:
            self._clock += 1
            order = self._clock
            if self._keep_in_family(code, fd):
                return
        self._plain[var] = fd
        self._plain_order[var] = order

    def _keep_in_family(self, code: int, fd: int) -> bool:
        """Keep a new name (by its code) in its family's arrays, if it has a code and fits them."""
        if not code or type(fd) is not int or not _FD_LOW <= fd <= _FD_HIGH or self._clock > _ORDER_MAX:
            return False
        family = self._families.get(code >> INDEX_BITS)
        index = code & INDEX_MASK
        if family is None:
            if index >= _FAR:  # (a far index: kept in the dict)
                return False
            family = self._families[code >> INDEX_BITS] = _Family()
        order = family.order
        if index >= len(order):
            if index >= len(order) + max(_FAR, 2 * family.count):
                return False
            grow = index + 1 - len(order)
            order.frombytes(bytes(order.itemsize * grow))
            family.fds.frombytes(bytes(family.fds.itemsize * grow))
        family.fds[index] = fd
        order[index] = self._clock
        family.count += 1
        return True

    def __delitem__(self, var: str) -> None:
        placed = self._place(var)
        if placed is not None:
            family, index = placed
            family.order[index] = 0
            family.count -= 1
        else:
            del self._plain[var]
            del self._plain_order[var]
        self._index = None
        self.version += 1

    def popitem(self) -> tuple[str, int]:
        """The newest name given (and its descriptor), taken out: as a dict's popitem."""
        if not self:
            raise KeyError("popitem(): no names")
        *_, last = self
        return last, self.pop(last)

    def clear(self) -> None:
        self._plain.clear()
        self._plain_order.clear()
        self._families.clear()
        self._index = None
        self.version += 1

    def __repr__(self) -> str:
        return f"Names({dict(self.items())!r})"
