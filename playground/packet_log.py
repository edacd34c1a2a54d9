"""The lab's captured packets, kept in columns: a session holds 30,000 for 10,000 held connections.

A Packet object costs some 650 bytes with its tuples, numbers, names and frame; a row here costs
under a hundred (numbers in arrays, hosts and names as indices into shared tables, the frames
compressed a chunk at a time). `PacketLog` is a sequence of `StoredPacket`s, each made when asked
for: a view of its row that reads as a Packet does, its names (`src_label`, `dst_label`) written
back to the row when the lab relabels it, so every view of a packet shows its newest names.
"""

from __future__ import annotations

import threading
import zlib
from array import array
from collections.abc import Iterable, Iterator, Sequence
from typing import overload

from playground.capture import _FLAG_TUPLES, Packet, packet_lost, packet_summary

Endpoint = tuple[str, int]
CHUNK = 1024  # rows a chunk holds; a full chunk's frames are compressed together
PROTOCOLS = ("TCP", "UDP", "ICMP", "ICMPv6")
_PROTOCOL_BITS = {name: index << 6 for index, name in enumerate(PROTOCOLS)}
_FLAG_BITS = {flags: bits for bits, flags in enumerate(_FLAG_TUPLES)}
_NO_EXTRA = (b"", None, None, None, None)
_MASK64 = (1 << 64) - 1


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
    """(host, port) as one 32-bit number: the host's index and the port."""
    return HOSTS.index(address[0]) << 16 | address[1]


def endpoint_of(key: int) -> Endpoint:
    return (HOSTS.values[key >> 16], key & 0xFFFF)


class Strings:
    """Strings in one bytearray, each numbered (0 is None): a name costs its length, not a str object."""

    __slots__ = ("_blob", "_ends", "_recent")

    RECENT = 256  # names looked up by text, remembered to share their number (a connection's packets share one)

    def __init__(self) -> None:
        self._blob = bytearray()
        self._ends = array("I", [0])
        self._recent: dict[str, int] = {}

    def add(self, text: str | None) -> int:
        if text is None:
            return 0
        found = self._recent.get(text)
        if found is None:
            if len(self._recent) >= self.RECENT:
                self._recent.clear()
            self._blob += text.encode()
            self._ends.append(len(self._blob))
            found = self._recent[text] = len(self._ends) - 1
        return found

    def __getitem__(self, index: int) -> str | None:
        if not index:
            return None
        ends = self._ends
        return self._blob[ends[index - 1] : ends[index]].decode()


class IntMap:
    """int -> int (both under 2**64 - 1), open addressing in two arrays: 20 to 40 bytes an entry,
    where a dict's entry with its two int objects costs a hundred."""

    __slots__ = ("_keys", "_values", "_mask", "_count")

    def __init__(self) -> None:
        self._keys = array("Q", bytes(64))  # key + 1; 0 is an empty slot
        self._values = array("Q", bytes(64))
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
        self._values[slot] = value

    def _grow(self) -> None:
        keys, values = self._keys, self._values
        size = len(keys) * 2
        self._keys, self._values, self._mask = array("Q", bytes(8 * size)), array("Q", bytes(8 * size)), size - 1
        for stored, value in zip(keys, values, strict=True):
            if stored:
                slot = self._slot(stored)
                self._keys[slot] = stored
                self._values[slot] = value


class EndpointPairs:
    """(endpoint, endpoint) -> a number under 2**64, as a dict of them would (the capture's first sequence numbers)."""

    __slots__ = ("_map",)

    def __init__(self) -> None:
        self._map = IntMap()

    @staticmethod
    def key(pair: Sequence[Sequence]) -> int:
        return endpoint_key(pair[0]) << 32 | endpoint_key(pair[1])

    def __len__(self) -> int:
        return len(self._map)

    def __contains__(self, pair: Sequence[Sequence]) -> bool:
        return self.key(pair) in self._map

    def __getitem__(self, pair: Sequence[Sequence]) -> int:
        found = self._map.get(self.key(pair))
        if found is None:
            raise KeyError(pair)
        return found

    def get(self, pair: Sequence[Sequence], default: int | None = None) -> int | None:
        found = self._map.get(self.key(pair))
        return default if found is None else found

    def __setitem__(self, pair: Sequence[Sequence], value: int) -> None:
        self._map[self.key(pair)] = value


class Owners:
    """(local, peer) of each connection the lab made -> (process, "proc.var"), as a dict would map them.

    Kept as numbers: the pair packed in one, the process and the name (in `names`, shared with the
    packets' name columns) in another, so a packet takes its name's number without making the string.
    """

    __slots__ = ("_map", "names", "processes")

    def __init__(self, names: Strings) -> None:
        self._map = EndpointPairs()
        self.names = names
        self.processes = Interned()

    def __len__(self) -> int:
        return len(self._map)

    def __setitem__(self, pair: Sequence[Sequence], owner: tuple[str, str]) -> None:
        self._map[pair] = self.processes.index(owner[0]) << 32 | self.names.add(owner[1])

    def label_index(self, local: int, peer: int) -> int | None:
        """The number of the name of the socket at `local` (an endpoint_key) to `peer` (None: no such connection)."""
        found = self._map._map.get(local << 32 | peer)
        return None if found is None else found & 0xFFFFFFFF

    def get(self, pair: Sequence[Sequence]) -> tuple[str, str] | None:
        found = self._map.get(pair)
        if found is None:
            return None
        return (self.processes.values[found >> 32], self.names[found & 0xFFFFFFFF] or "")

    def __contains__(self, pair: Sequence[Sequence]) -> bool:
        return pair in self._map


class PacketChunk:
    """Up to CHUNK packets, a column per field; what few packets have (data, ICMP, a fate) in `extra`."""

    __slots__ = (
        "names",
        "t_ns",
        "wall_ns",
        "seq",
        "ack",
        "relative_seq",
        "relative_ack",
        "length",
        "window",
        "bits",
        "src",
        "dst",
        "src_label",
        "dst_label",
        "frames",
        "frame_ends",
        "extra",
    )

    def __init__(self, names: Strings) -> None:
        self.names = names
        self.t_ns = array("q")
        self.wall_ns = array("q")
        self.seq = array("I")
        self.ack = array("I")
        self.relative_seq = array("I")
        self.relative_ack = array("I")
        self.length = array("I")
        self.window = array("H")
        self.bits = array("B")  # the protocol's index << 6 | the TCP flags
        self.src = array("I")  # endpoint_key
        self.dst = array("I")
        self.src_label = array("I")  # numbers in `names`
        self.dst_label = array("I")
        self.frames: bytearray | bytes = bytearray()  # compressed (bytes) once the chunk is full
        self.frame_ends = array("I")
        self.extra: dict[int, tuple] = {}

    def __len__(self) -> int:
        return len(self.t_ns)

    def add(self, packet: Packet, src_label: int, dst_label: int) -> int:
        row = len(self.t_ns)
        self.t_ns.append(packet.t_ns)
        self.wall_ns.append(packet.wall_ns)
        self.seq.append(packet.seq)
        self.ack.append(packet.ack)
        self.relative_seq.append(packet.relative_seq)
        self.relative_ack.append(packet.relative_ack)
        self.length.append(packet.length)
        self.window.append(packet.window)
        self.bits.append(_PROTOCOL_BITS[packet.protocol] | _FLAG_BITS[packet.flags])
        self.src.append(endpoint_key(packet.src))
        self.dst.append(endpoint_key(packet.dst))
        self.src_label.append(src_label)
        self.dst_label.append(dst_label)
        frames = self.frames
        assert isinstance(frames, bytearray)
        frames += packet.frame
        self.frame_ends.append(len(frames))
        extra = (packet.preview, packet.icmp, packet.icmp_about, packet.fate, packet.delivered_ns)
        if extra != _NO_EXTRA:
            self.extra[row] = extra
        if row + 1 == CHUNK:
            self.frames = zlib.compress(frames, 6)
        return row

    def frame(self, row: int) -> bytes:
        frames = self.frames
        if not isinstance(frames, bytearray):
            frames = _decompressed(self)
        start = self.frame_ends[row - 1] if row else 0
        return bytes(frames[start : self.frame_ends[row]])


_last_decompressed: list = [None, b""]  # (chunk, its frames): a pcap export reads a chunk's frames in turn


def _decompressed(chunk: PacketChunk) -> bytes:
    if _last_decompressed[0] is not chunk:
        _last_decompressed[:] = [chunk, zlib.decompress(chunk.frames)]
    return _last_decompressed[1]


class StoredPacket:
    """A packet in a PacketLog, read from its row as a Packet's fields are (made on demand)."""

    __slots__ = ("_chunk", "_row")

    def __init__(self, chunk: PacketChunk, row: int) -> None:
        self._chunk = chunk
        self._row = row

    @property
    def place(self) -> tuple[PacketChunk, int]:
        """Where its row is (PacketLabels names the packet there)."""
        return self._chunk, self._row

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StoredPacket) and other._chunk is self._chunk and other._row == self._row

    def __hash__(self) -> int:
        return hash((id(self._chunk), self._row))

    def __repr__(self) -> str:
        return f"StoredPacket({self.summary!r})"

    @property
    def t_ns(self) -> int:
        return self._chunk.t_ns[self._row]

    @property
    def wall_ns(self) -> int:
        return self._chunk.wall_ns[self._row]

    @property
    def protocol(self) -> str:
        return PROTOCOLS[self._chunk.bits[self._row] >> 6]

    @property
    def flags(self) -> tuple[str, ...]:
        return _FLAG_TUPLES[self._chunk.bits[self._row] & 0x3F]

    @property
    def src(self) -> Endpoint:
        return endpoint_of(self._chunk.src[self._row])

    @property
    def dst(self) -> Endpoint:
        return endpoint_of(self._chunk.dst[self._row])

    @property
    def length(self) -> int:
        return self._chunk.length[self._row]

    @property
    def seq(self) -> int:
        return self._chunk.seq[self._row]

    @property
    def ack(self) -> int:
        return self._chunk.ack[self._row]

    @property
    def relative_seq(self) -> int:
        return self._chunk.relative_seq[self._row]

    @property
    def relative_ack(self) -> int:
        return self._chunk.relative_ack[self._row]

    @property
    def window(self) -> int:
        return self._chunk.window[self._row]

    def _extra(self) -> tuple:
        return self._chunk.extra.get(self._row, _NO_EXTRA)

    @property
    def preview(self) -> bytes:
        return self._extra()[0]  # type: ignore[no-any-return]

    @property
    def icmp(self) -> str | None:
        return self._extra()[1]  # type: ignore[no-any-return]

    @property
    def icmp_about(self) -> tuple[Endpoint, Endpoint] | None:
        return self._extra()[2]  # type: ignore[no-any-return]

    @property
    def fate(self) -> str | None:
        return self._extra()[3]  # type: ignore[no-any-return]

    @property
    def delivered_ns(self) -> int | None:
        return self._extra()[4]  # type: ignore[no-any-return]

    @property
    def frame(self) -> bytes:
        return self._chunk.frame(self._row)

    @property
    def src_label(self) -> str | None:
        return self._chunk.names[self._chunk.src_label[self._row]]

    @src_label.setter
    def src_label(self, label: str | None) -> None:
        self._chunk.src_label[self._row] = self._chunk.names.add(label)

    @property
    def dst_label(self) -> str | None:
        return self._chunk.names[self._chunk.dst_label[self._row]]

    @dst_label.setter
    def dst_label(self, label: str | None) -> None:
        self._chunk.dst_label[self._row] = self._chunk.names.add(label)

    def set_labels(self, src_label: int, dst_label: int) -> None:
        """Name both ends by their numbers in the log's `names`."""
        self._chunk.src_label[self._row] = src_label
        self._chunk.dst_label[self._row] = dst_label

    @property
    def lost(self) -> bool:
        return packet_lost(self)

    @property
    def summary(self) -> str:
        return packet_summary(self)


AnyPacket = Packet | StoredPacket


class PacketLog(Sequence[StoredPacket]):
    """The newest `maxlen` packets the lab captured, oldest first, as a deque of them would hold them."""

    def __init__(self, maxlen: int, names: Strings | None = None) -> None:
        self.maxlen = maxlen
        self.names = names if names is not None else Strings()
        self._chunks: list[PacketChunk] = []
        self._skip = 0  # rows of the first chunk past the newest maxlen
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def add(self, packet: Packet, src_label: int = 0, dst_label: int = 0) -> StoredPacket:
        """Keep a packet (its names as numbers in `names`); the stored packet reads it back."""
        chunks = self._chunks
        if not chunks or len(chunks[-1]) == CHUNK:
            chunks.append(PacketChunk(self.names))
        chunk = chunks[-1]
        row = chunk.add(packet, src_label, dst_label)
        if self._count == self.maxlen:
            self._skip += 1
            if self._skip == CHUNK:  # views of its packets keep the chunk for as long as they last
                del chunks[0]
                self._skip = 0
        else:
            self._count += 1
        return StoredPacket(chunk, row)

    def extend(self, packets: Iterable[Packet]) -> None:
        for packet in packets:
            self.add(packet, self.names.add(packet.src_label), self.names.add(packet.dst_label))

    def _locate(self, index: int) -> tuple[PacketChunk, int]:
        if index < 0:
            index += self._count
        if not 0 <= index < self._count:
            raise IndexError("packet index out of range")
        index += self._skip
        return self._chunks[index // CHUNK], index % CHUNK

    @overload
    def __getitem__(self, index: int) -> StoredPacket: ...
    @overload
    def __getitem__(self, index: slice) -> list[StoredPacket]: ...
    def __getitem__(self, index: int | slice) -> StoredPacket | list[StoredPacket]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._count))]
        return StoredPacket(*self._locate(index))

    def __iter__(self) -> Iterator[StoredPacket]:
        skip = self._skip
        for chunk in list(self._chunks):
            for row in range(skip, len(chunk)):
                yield StoredPacket(chunk, row)
            skip = 0

    def recent(self, count: int) -> Iterator[tuple[PacketChunk, int]]:
        """The newest `count` packets' places, newest first."""
        chunks, skip = self._chunks, self._skip
        for number in range(len(chunks) - 1, -1, -1):
            chunk = chunks[number]
            first = skip if number == 0 else 0
            for row in range(len(chunk) - 1, first - 1, -1):
                if count <= 0:
                    return
                count -= 1
                yield chunk, row

    def __reversed__(self) -> Iterator[StoredPacket]:
        for index in range(self._count - 1, -1, -1):
            yield StoredPacket(*self._locate(index))

    def __bool__(self) -> bool:
        return self._count > 0
