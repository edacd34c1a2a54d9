"""Compact tables for what a lab keeps per connection: numbers in arrays where dicts of tuples cost ten times more.

Hosts are numbered once (`HOSTS`), so an endpoint is one 32-bit number (`endpoint_key`) and a pair of
them one 64-bit number; `IntMap` maps such numbers to numbers in two arrays; `Strings` keeps names in
one bytearray. `EndpointPairs`, `Owners` and `PortOwners` are the lab's maps built on them.
"""

from __future__ import annotations

import threading
from array import array
from collections.abc import Sequence

Endpoint = tuple[str, int]
_MASK64 = (1 << 64) - 1
_WIDE_PAIR = _MASK64  # pair keys from here on do not fit an IntMap (which stores key + 1 in 64 bits)
_HASH31 = (1 << 31) - 1  # Strings' index keys: 31 bits of a name's hash
_PROBES = 16  # keys tried after a name's own hash is another's (then the name is kept unindexed)


class Interned:
    """Values (host strings, process names) numbered once: a column holds the number."""

    __slots__ = ("values", "_index")

    def __init__(self) -> None:
        self.values: list = []
        self._index: dict = {}

    def index(self, value: object) -> int:
        found = self._index.get(value)
        if found is None:
            with _interning:  # the capture's thread numbers hosts too
                found = self._index.get(value)
                if found is None:
                    self.values.append(value)
                    found = self._index[value] = len(self.values) - 1
        return found


_interning = threading.Lock()
HOSTS = Interned()  # every lab's hosts: a handful of addresses


def endpoint_key(address: Sequence) -> int:
    """(host, port) as one number: the host's index and the port; 32 bits for the first 65,536 hosts
    a session numbers (a host network's may be more: then more bits, kept apart by those who pack keys)."""
    return HOSTS.index(address[0]) << 16 | address[1]


def pair_key(a: int, b: int) -> int:
    """Two endpoint keys as one: 64 bits while both take 32 (an IntMap's key), over 128 otherwise."""
    if (a | b) >> 32 == 0:
        return a << 32 | b
    return 1 << 128 | a << 64 | b


def endpoint_of(key: int) -> Endpoint:
    return (HOSTS.values[key >> 16], key & 0xFFFF)


class PortSet:
    """A set of port numbers as a bitmap: 8 KiB for every port, where a set of 10,000 ints costs 800."""

    __slots__ = ("_bits",)

    def __init__(self) -> None:
        self._bits = bytearray(8192)

    def add(self, port: int) -> None:
        self._bits[port >> 3] |= 1 << (port & 7)

    def __contains__(self, port: object) -> bool:
        return type(port) is int and 0 <= port <= 0xFFFF and bool(self._bits[port >> 3] & 1 << (port & 7))


class Strings:
    """Strings in one bytearray, each numbered (0 is None): a name costs its length, not a str object."""

    __slots__ = ("_blob", "_ends", "_recent", "_read", "_by_hash")

    RECENT = 64  # names looked up lately, remembered to share their number (a connection's packets share one)

    def __init__(self) -> None:
        self._blob = bytearray()
        self._ends = array("I", [0])
        self._recent: dict[str, int] = {}
        self._read: dict[int, str] = {}  # names read lately: the log compares a packet's names on every call
        # Every name's number by its hash, so a name comes back to its number however long ago it was
        # added (the packets of a name the lab gives by port, batch after batch, added it again each time).
        # 31 bits of the hash (4 bytes a slot, not 8): names whose hashes meet take the next free key.
        self._by_hash = IntMap("I", keys="I")

    def add(self, text: str | None) -> int:
        if text is None:
            return 0
        found = self._recent.get(text)
        if found is None:
            if len(self._recent) >= self.RECENT:
                self._recent.clear()
            key = hash(text) & _HASH31
            found = self._by_hash.get(key)
            probes = 0
            while found is not None and self[found] != text and probes < _PROBES:  # another name, that hash
                key, probes = (key + 1) & _HASH31, probes + 1
                found = self._by_hash.get(key)
            if found is None or self[found] != text:  # (past the probes: kept apart, unindexed)
                self._blob += text.encode()
                self._ends.append(len(self._blob))
                if found is None:
                    self._by_hash[key] = len(self._ends) - 1
                found = len(self._ends) - 1
            self._recent[text] = found
        return found

    def __len__(self) -> int:
        """How many names are numbered."""
        return len(self._ends) - 1

    def __getitem__(self, index: int) -> str | None:
        if not index:
            return None
        found = self._read.get(index)
        if found is None:
            if len(self._read) >= self.RECENT:
                self._read.clear()
            ends = self._ends
            found = self._read[index] = self._blob[ends[index - 1] : ends[index]].decode()
        return found


class IntMap:
    """int -> int (both under 2**64 - 1, or narrower as the arrays' types say), open addressing in two
    arrays: 11 to 40 bytes an entry, where a dict's entry with its two int objects costs a hundred.

    Values "I" are made "Q" when one past 32 bits comes; keys stay as their type says.
    """

    __slots__ = ("_keys", "_values", "_mask", "_count")

    def __init__(self, values: str = "Q", keys: str = "Q") -> None:
        # key + 1 in each slot, 0 where it is empty ("I": keys under 2**32 - 1)
        self._keys = array(keys, bytes(8 * array(keys).itemsize))
        self._values = array(values, bytes(8 * array(values).itemsize))  # "I": values under 2**32
        self._mask = 7
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def _slot(self, stored: int) -> int:
        keys, mask = self._keys, self._mask
        slot = ((stored * 0x9E3779B97F4A7C15) & _MASK64) >> 32 & mask
        while True:
            found = keys[slot]
            if found == stored or not found:
                return slot
            slot = (slot + 1) & mask

    def get(self, key: int) -> int | None:
        slot = self._slot(key + 1)
        return self._values[slot] if self._keys[slot] else None

    def __contains__(self, key: int) -> bool:
        return bool(self._keys[self._slot(key + 1)])

    def __setitem__(self, key: int, value: int) -> None:
        stored = key + 1
        slot = self._slot(stored)
        if not self._keys[slot]:
            if (self._count + 1) * 4 > (self._mask + 1) * 3:
                self._grow()
                slot = self._slot(stored)
            self._keys[slot] = stored
            self._count += 1
        try:
            self._values[slot] = value
        except OverflowError:  # (values "I" made "Q" once one is past 32 bits)
            if self._values.typecode != "I":
                raise
            self._values = array("Q", self._values)
            self._values[slot] = value

    def _grow(self) -> None:
        keys, values = self._keys, self._values
        size = len(keys) * 2
        self._keys, self._mask = array(keys.typecode, bytes(keys.itemsize * size)), size - 1
        self._values = array(values.typecode, bytes(values.itemsize * size))
        for stored, value in zip(keys, values, strict=True):
            if stored:
                slot = self._slot(stored)
                self._keys[slot] = stored
                self._values[slot] = value


class EndpointPairs:
    """(endpoint, endpoint) -> a number, as a dict of them would (the capture's first sequence numbers).

    The numbers are under 2**32 with `values` "I" (as sequence numbers are), under 2**64 with "Q".
    """

    __slots__ = ("_map", "_wide")

    def __init__(self, values: str = "I") -> None:
        self._map = IntMap(values)
        self._wide: dict[int, int] = {}  # pairs with an end past 32 bits (a host numbered past 65,535)

    @staticmethod
    def key(pair: Sequence[Sequence]) -> int:
        return pair_key(endpoint_key(pair[0]), endpoint_key(pair[1]))

    def __len__(self) -> int:
        return len(self._map) + len(self._wide)

    def __contains__(self, pair: Sequence[Sequence]) -> bool:
        return self.get_by_key(self.key(pair)) is not None

    def __getitem__(self, pair: Sequence[Sequence]) -> int:
        found = self.get_by_key(self.key(pair))
        if found is None:
            raise KeyError(pair)
        return found

    def get(self, pair: Sequence[Sequence], default: int | None = None) -> int | None:
        found = self.get_by_key(self.key(pair))
        return default if found is None else found

    def get_by_key(self, key: int) -> int | None:
        """The value of the pair whose key() is `key` (None: none)."""
        return self._map.get(key) if key < _WIDE_PAIR else self._wide.get(key)

    def __setitem__(self, pair: Sequence[Sequence], value: int) -> None:
        key = self.key(pair)
        if key < _WIDE_PAIR:
            self._map[key] = value
        else:
            self._wide[key] = value


class Owners:
    """(local, peer) of each connection the lab made -> (process, "proc.var"), as a dict would map them.

    Kept as numbers: the pair packed in one, the process and the name (in `names`, shared with the
    packets' name columns) in another, so a packet takes its name's number without making the string.
    """

    __slots__ = ("_map", "names", "processes")

    def __init__(self, names: Strings) -> None:
        # The name's number above the process's 16 bits, as PortOwners keeps them: 4 bytes a slot while
        # names are under 65,536, then 8 (issue 13: 20,000 entries with 10,000 connections held).
        self._map = EndpointPairs("I")
        self.names = names
        self.processes = Interned()

    def __len__(self) -> int:
        return len(self._map)

    def __setitem__(self, pair: Sequence[Sequence], owner: tuple[str, str]) -> None:
        process = _process_code(self.processes, owner[0])
        # (an owner past the processes' 16 bits is told as none: any earlier owner of the pair goes)
        self._map[pair] = _NO_OWNER if process is None else self.names.add(owner[1]) << 16 | process

    def label_index(self, local: int, peer: int) -> int | None:
        """The number of the name of the socket at `local` (an endpoint_key) to `peer` (None: no such connection)."""
        found = self._map.get_by_key(pair_key(local, peer))
        return None if found is None or found == _NO_OWNER else found >> 16

    def get(self, pair: Sequence[Sequence]) -> tuple[str, str] | None:
        found = self._map.get(pair)
        if found is None or found == _NO_OWNER:
            return None
        return (self.processes.values[found & 0xFFFF], self.names[found >> 16] or "")

    def __contains__(self, pair: Sequence[Sequence]) -> bool:
        return pair in self._map


class PortOwners:
    """port -> the (process, var) that have had an address with that port, in the order first told, each once.

    Most ports had one socket: a number in an IntMap (the number of its `proc.var` in `names`, the name
    the packets' columns take too, and the process's).
    A port several had (a listener and the sockets it accepted) keeps two arrays: those numbers, and a
    hash of each (process, var) that tells one told again.
    """

    __slots__ = ("_one", "_many", "names", "processes")

    def __init__(self, names: Strings, processes: Interned) -> None:
        self._one = IntMap("I", keys="I")  # port (16 bits) -> the number of `proc.var` << 16 | the process's
        self._many: dict[int, tuple[array, array]] = {}  # port -> (hashes, numbers)
        self.names = names
        self.processes = processes

    def add(self, port: int, process: str, var: str) -> None:
        if not 0 <= port <= 0xFFFF:  # (no packet has such a port to be named by)
            return
        # (`proc.var`, not the var: the packets' labels are those names, numbered once for both)
        code = _process_code(self.processes, process)
        if code is None:
            return
        number = self.names.add(f"{process}.{var}") << 16 | code
        many = self._many.get(port)
        if many is not None:
            told = hash((process, var)) & _MASK64
            if told not in many[0]:
                many[0].append(told)
                many[1].append(number)
            return
        found = self._one.get(port)
        if found is None:
            self._one[port] = number
        elif found != number:
            first = self.owner(found)
            if first != (process, var):
                hashes = array("Q", [hash(first) & _MASK64, hash((process, var)) & _MASK64])
                self._many[port] = (hashes, array("Q", [found, number]))

    def numbers(self, port: int) -> Sequence[int]:
        """The owners' numbers (owner() reads one), in the order they were first told."""
        many = self._many.get(port)
        if many is not None:
            return many[1]
        found = self._one.get(port)
        return () if found is None else (found,)

    def label_index(self, number: int) -> int:
        """The number in `names` of the owner's `proc.var` (what a packet's label column holds)."""
        return number >> 16

    def owner(self, number: int) -> tuple[str, str]:
        process = self.processes.values[number & 0xFFFF]
        return process, (self.names[self.label_index(number)] or "")[len(process) + 1 :]


_NO_OWNER = 0xFFFF  # an owner whose process is past the 16 bits (its packets go unnamed)


def _process_code(processes: Interned, process: str) -> int | None:
    """The process's number in the 16 bits owners are packed with (None past them: after 65,535 process
    names in one lab, an owner is not kept)."""
    code = processes.index(process)
    return code if code < _NO_OWNER else None
