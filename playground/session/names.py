"""A process's names as the view keeps them: frozen, in arrays, not a dict and tuples.

With 10,000 connections a process has 10,000 names; a dict (fd -> variable) and a tuple of
(variable, fd) pairs cost some 100 bytes a name (issue 13). Here each is an array of the
names' codes (playground.name_codes: a family member's name in 4 bytes, made a str when read)
and an array of the descriptors (C ints): 8 bytes a name. The session's tracked names
(fd -> variable, changed at each call) are an array by descriptor (playground.fd_vars, which
the lab's own index of names is too).
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import cast, overload

from playground.fd_vars import FdVars
from playground.lab_names import Names
from playground.name_codes import code_of, name_of, natural_key
from playground.sequences import item_or_slice

__all__ = ["FdNames", "FdVars", "NameList", "SortedNames"]


class NameList(Sequence[str | None]):
    """Names by position: the codes of family members' names, the others kept as strs by position
    (None where there is no name)."""

    __slots__ = ("codes", "odd")

    def __init__(
        self, names: Iterable[str | None] = (), codes: array | None = None, odd: dict[int, str] | None = None
    ) -> None:
        if codes is not None:
            self.codes, self.odd = codes, odd or {}
            return
        self.codes = array("I")
        self.odd = {}
        for name in names:
            self.append_code(0 if name is None else code_of(name), name)

    def append_code(self, code: int, name: str | None) -> None:
        """Add a name by its code (0: `name`, kept as it is; None for no name)."""
        if not code and name is not None:
            self.odd[len(self.codes)] = name
        self.codes.append(code)

    def __len__(self) -> int:
        return len(self.codes)

    @overload
    def __getitem__(self, at: int) -> str | None: ...
    @overload
    def __getitem__(self, at: slice) -> list[str | None]: ...
    def __getitem__(self, at: int | slice) -> str | None | list[str | None]:
        return item_or_slice(at, len(self.codes), self._name)

    def _name(self, at: int) -> str | None:
        code = self.codes[at]
        return name_of(code) if code else self.odd.get(at)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, NameList):
            if len(self.codes) != len(other.codes):
                return False
            if self.odd == other.odd:  # (kept alike: the codes tell, in C)
                return self.codes == other.codes
            apart = self.odd.keys() | other.odd.keys()  # a name kept as a str on one side, a code on the other
            if any(self[at] != other[at] for at in apart):
                return False
            mine, theirs = array("I", self.codes), array("I", other.codes)
            for at in apart:
                mine[at] = theirs[at] = 0
            return mine == theirs
        if isinstance(other, list):
            return list(self) == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"NameList({list(self)!r})"


class FdNames(Mapping[int, str]):
    """fd -> variable, frozen (by descriptor)."""

    __slots__ = ("fds", "vars")

    def __init__(self, names: Mapping[int, str]) -> None:
        if isinstance(names, FdVars):
            fds, codes, odd = names.columns()
            self.fds, self.vars = fds, NameList(codes=codes, odd=odd)
        else:
            self.fds = array("i", sorted(names))
            self.vars = NameList(names[fd] for fd in self.fds)

    def __getitem__(self, fd: int) -> str:
        at = bisect_left(self.fds, fd) if isinstance(fd, int) else len(self.fds)
        if at == len(self.fds) or self.fds[at] != fd:
            raise KeyError(fd)
        return cast(str, self.vars[at])  # (every descriptor here has a name)

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
    """A process's names in natural order (name_codes.natural_key: c[2] before c[10]), as (variable, fd)
    pairs: each pair made when asked for."""

    __slots__ = ("vars", "fds", "compacted")

    def __init__(self, names: Mapping[str, int] | list[tuple[str, int]]) -> None:
        """From a process's names (var -> fd: the lab's sorted without a str made), or from pairs."""
        self.compacted: str | None = None  # families.compact_names's text of these names, once made
        natural = names.natural() if isinstance(names, Names) else None
        if natural is not None:
            codes, odd, self.fds = natural
            self.vars = NameList(codes=codes, odd=odd)
        elif isinstance(names, Mapping):
            ordered = sorted(names, key=natural_key)
            self.vars = NameList(ordered)
            self.fds = array("i", map(names.__getitem__, ordered))
        else:
            pairs = sorted(names, key=lambda pair: (natural_key(pair[0]), pair[1]))
            self.vars = NameList(var for var, _ in pairs)
            self.fds = array("i", [fd for _, fd in pairs])

    def __len__(self) -> int:
        return len(self.vars)

    @overload
    def __getitem__(self, at: int) -> tuple[str, int]: ...
    @overload
    def __getitem__(self, at: slice) -> tuple[tuple[str, int], ...]: ...
    def __getitem__(self, at: int | slice) -> tuple[str, int] | tuple[tuple[str, int], ...]:
        names = cast(Sequence[str], self.vars)  # (every name here is one)
        if isinstance(at, slice):
            return tuple(zip(names[at], self.fds[at], strict=True))
        return (names[at], self.fds[at])

    def __iter__(self) -> Iterator[tuple[str, int]]:
        return zip(cast(Sequence[str], self.vars), self.fds, strict=True)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, SortedNames):
            return self is other or (self.vars == other.vars and self.fds == other.fds)
        if isinstance(other, tuple):
            return tuple(self) == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash((bytes(self.vars.codes), tuple(self.vars.odd.items())))

    def __repr__(self) -> str:
        return f"SortedNames({tuple(self)!r})"
