"""What the lab knows of each named socket (its inode, its address), kept by descriptor, not by name.

A dict of 20,000 names to inodes, and another to addresses, cost some 150 bytes a socket: the
dict's entry, an int object for each inode and port, an Address for each (issue 13: 10,000
connections held). Here a name's value sits in an array at its descriptor's number for as
long as the name is the one that descriptor was last given a value under (the "owner" of the
slot, a list by descriptor: playground.fd_vars). A name whose descriptor number has since been
taken by another name's value, or that names no descriptor, keeps its value in a small dict.
It reads as the dict of names to values it replaces, but for one thing: a name given another
descriptor keeps the value it had only if that was moved to the dict meanwhile, so whoever names
a descriptor anew sets its value or drops it (the lab does both).
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from typing import Generic, TypeVar

from playground.compact import endpoint_key, endpoint_of
from playground.fd_vars import FdVars
from playground.script.model import Address

__all__ = ["FdColumn", "address_column", "inode_column"]

FAR = 4096  # a descriptor this far above the array's end (a dup2 to 100,000) keeps its value in the dict

V = TypeVar("V")


class FdColumn(MutableMapping[str, V], Generic[V]):
    """name -> value, stored at the descriptor `names` gives the name (values encoded as non-zero ints).

    `encode` makes a value a positive int that fits the array's typecode; `decode` makes it back.
    """

    __slots__ = ("_names", "_encode", "_decode", "_values", "_owner", "_other")

    def __init__(
        self,
        names: Mapping[str, int],
        encode: Callable[[V], int],
        decode: Callable[[int], V],
        typecode: str = "Q",
        values: Mapping[str, V] | None = None,
    ) -> None:
        self._names = names
        self._encode, self._decode = encode, decode
        self._values = array(typecode)
        self._owner = FdVars()  # descriptor -> the name whose value its slot holds
        self._other: dict[str, V] = {}
        for var, value in (values or {}).items():
            self[var] = value

    def _slot(self, var: str) -> int | None:
        """The descriptor whose slot holds var's value, if one does."""
        fd = self._names.get(var)
        if fd is None or fd < 0 or self._owner.get(fd) != var:
            return None
        return fd

    def __getitem__(self, var: str) -> V:
        fd = self._slot(var)
        if fd is not None:
            return self._decode(self._values[fd])
        return self._other[var]

    def __setitem__(self, var: str, value: V) -> None:
        fd = self._names.get(var)
        code = self._encode(value)
        values = self._values
        if fd is None or fd < 0 or code <= 0 or fd >= len(values) + FAR or code.bit_length() > 8 * values.itemsize:
            self._drop_slot(var)
            self._other[var] = value
            return
        previous = self._owner.get(fd)
        if previous is not None and previous != var and self._names.get(previous) == fd:
            self._other[previous] = self._decode(self._values[fd])  # its number taken by another name
        self._drop_slot(var)  # (its value at another number, if it had one there)
        self._other.pop(var, None)
        if fd >= len(values):
            values.frombytes(bytes(values.itemsize * (fd + 1 - len(values))))
        values[fd] = code
        self._owner[fd] = var

    def _drop_slot(self, var: str) -> bool:
        """Empty var's slot; whether it had one."""
        fd = self._slot(var)
        if fd is None:
            return False
        del self._owner[fd]
        self._values[fd] = 0
        return True

    def __delitem__(self, var: str) -> None:
        if self._drop_slot(var):
            self._other.pop(var, None)
        else:
            del self._other[var]

    def __contains__(self, var: object) -> bool:
        return isinstance(var, str) and (self._slot(var) is not None or var in self._other)

    def __iter__(self) -> Iterator[str]:
        owner = self._owner
        for fd in owner:
            var = owner[fd]
            if self._names.get(var) == fd:
                yield var
        yield from self._other

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __repr__(self) -> str:
        return f"FdColumn({dict(self)!r})"


def inode_column(names: Mapping[str, int], values: Mapping[str, int] | None = None) -> FdColumn[int]:
    """name -> its socket's inode."""
    return FdColumn(names, _same, _same, "I", values)  # (an inode past 32 bits kept in the dict)


def address_column(names: Mapping[str, int], values: Mapping[str, Address] | None = None) -> FdColumn[Address]:
    """name -> the address its socket was last bound to (a host's number and a port: compact.HOSTS)."""
    return FdColumn(names, _address_code, _address_of, "I", values)  # (past the 65,535th host: in the dict)


def _same(value: int) -> int:
    return value


def _address_code(address: Address) -> int:
    if not isinstance(address.host, str) or not 0 <= address.port <= 0xFFFF:
        return 0  # (kept in the dict as it is)
    return endpoint_key((address.host, address.port)) + 1


def _address_of(code: int) -> Address:
    return Address(*endpoint_of(code - 1))
