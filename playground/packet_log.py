"""The lab's captured packets, kept in columns: a session holds 30,000 for 10,000 held connections.

A Packet object costs some 650 bytes with its tuples, numbers, names and frame; a row here costs
under a hundred (numbers in arrays, hosts and names as indices into shared tables, the frames
compressed a chunk at a time). `PacketLog` is a sequence of `StoredPacket`s, each made when asked
for: a view of its row that reads as a Packet does, its names (`src_label`, `dst_label`) written
back to the row when the lab relabels it, so every view of a packet shows its newest names.
"""

from __future__ import annotations

import itertools
import threading
import zlib
from array import array
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, overload

from playground.capture import _FLAG_TUPLES, Packet, decode, packet_lost, packet_summary
from playground.compact import HOSTS, Strings, endpoint_of

Endpoint = tuple[str, int]
CHUNK = 256  # rows a chunk holds; a full chunk's columns are compressed together
PROTOCOLS = ("TCP", "UDP", "ICMP", "ICMPv6")
_PROTOCOL_BITS = {name: index << 6 for index, name in enumerate(PROTOCOLS)}
_FLAG_BITS = {flags: bits for bits, flags in enumerate(_FLAG_TUPLES)}
_NO_EXTRA = (b"", None, None, None, None)


# A sealed chunk's columns in their packed order: as kept ("frames": what the frames tell, decoded again when
# read) or all of them (for packets without their frames, as tests make them).
_KEPT = ("t_ns", "wall_ns", "relative_seq", "relative_ack", "frame_ends")
_ALL = (*_KEPT, "seq", "ack", "length", "window", "bits")


class _Body:
    """A sealed chunk's columns but its ends and names, read back from the compressed string."""

    __slots__ = (*_ALL, "frames")

    def __init__(self) -> None:
        self.t_ns = array("q")
        self.wall_ns = array("q")
        self.relative_seq = array("I")
        self.relative_ack = array("I")
        self.frame_ends = array("I")
        self.seq = array("I")
        self.ack = array("I")
        self.length = array("I")
        self.window = array("H")
        self.bits = array("B")  # the protocol's index << 6 | the TCP flags
        self.frames = b""

    @staticmethod
    def pack(packets: list[Packet], whole: bool) -> bytes:
        """The packets' columns in one compressed string: times and frame sizes as differences (they compress
        to a byte or two where the numbers take four or five), the wall clock from the monotonic one.
        Without `whole`, what the frames tell is left to them."""
        t_ns = [p.t_ns for p in packets]
        columns = [
            array("q", [b - a for a, b in zip([0, *t_ns], t_ns, strict=False)]),
            array("q", [p.wall_ns - p.t_ns for p in packets]),
            array("I", [p.relative_seq for p in packets]),
            array("I", [p.relative_ack for p in packets]),
            array("I", [len(p.frame) for p in packets]),
        ]
        if whole:
            columns += [
                array("I", [p.seq for p in packets]),
                array("I", [p.ack for p in packets]),
                array("I", [p.length for p in packets]),
                array("H", [p.window for p in packets]),
                array("B", [_PROTOCOL_BITS[p.protocol] | _FLAG_BITS[p.flags] for p in packets]),
            ]
        frames = b"".join(p.frame for p in packets)
        return zlib.compress(b"".join(column.tobytes() for column in columns) + frames, 6)

    @classmethod
    def unpack(cls, packed: bytes, count: int, whole: bool) -> _Body:
        data, body, at = zlib.decompress(packed), cls(), 0
        for name in _ALL if whole else _KEPT:
            column = getattr(body, name)
            size = column.itemsize * count
            column.frombytes(data[at : at + size])
            at += size
        body.t_ns = array("q", itertools.accumulate(body.t_ns))
        body.wall_ns = array("q", (o + t for o, t in zip(body.wall_ns, body.t_ns, strict=True)))
        body.frame_ends = array("I", itertools.accumulate(body.frame_ends))
        body.frames = frames = data[at:]
        if not whole:  # decoded again, as the capture decoded them
            start = 0
            for end in body.frame_ends:
                packet = decode(frames[start:end], 0)
                assert packet is not None
                body.seq.append(packet.seq)
                body.ack.append(packet.ack)
                body.length.append(packet.length)
                body.window.append(packet.window)
                body.bits.append(_PROTOCOL_BITS[packet.protocol] | _FLAG_BITS[packet.flags])
                start = end
        return body


class PacketChunk:
    """Up to CHUNK packets: while it fills, the Packets themselves (keeping one costs next to nothing,
    and the lab names them as they come); once full, sealed: their names as numbers in two arrays
    (the lab may still rename the newest), what few packets have (data, ICMP, a fate) in `extra`,
    the rest compressed together and read back when asked for (a few chunks are kept open at a time).
    """

    __slots__ = ("names", "first", "packets", "src", "dst", "src_label", "dst_label", "extra", "_packed", "_whole")

    def __init__(self, names: Strings, first: int) -> None:
        self.names = names
        self.first = first  # the serial number of its first packet
        self.packets: list[Packet] | None = []  # None once sealed
        # Once sealed: the ends (endpoint_key), the names (numbers in `names`): what the lab reads and
        # rewrites as it renames the newest packets, left uncompressed.
        self.src = array("I")
        self.dst = array("I")
        self.src_label = array("I")
        self.dst_label = array("I")
        self.extra: dict[int, tuple] = {}
        self._packed = b""
        self._whole = False

    def __len__(self) -> int:
        packets = self.packets
        return len(packets) if packets is not None else len(self.src)

    def add(self, packet: Packet) -> int:
        packets = self.packets
        assert packets is not None
        packets.append(packet)
        return len(packets) - 1

    def seal(self) -> None:
        packets = self.packets
        if packets is None:
            return
        add = self.names.add
        self.src_label = array("I", [add(p.src_label) for p in packets])
        self.dst_label = array("I", [add(p.dst_label) for p in packets])
        hosts = {p.src[0] for p in packets} | {p.dst[0] for p in packets}
        number = {host: HOSTS.index(host) << 16 for host in hosts}
        self.src = array("I", [number[p.src[0]] | p.src[1] for p in packets])
        self.dst = array("I", [number[p.dst[0]] | p.dst[1] for p in packets])
        for row, p in enumerate(packets):
            extra = (p.preview, p.icmp, p.icmp_about, p.fate, p.delivered_ns)
            if extra != _NO_EXTRA:
                self.extra[row] = extra
        # Packets from the capture carry their frames, which tell the rest; a test's may have none.
        self._whole = not all(p.decoded for p in packets)
        self._packed = _Body.pack(packets, self._whole)
        self.packets = None

    @property
    def body(self) -> _Body:
        found = _opened.get(id(self))
        return found[1] if found is not None and found[0] is self else _open(self)

    def icmp_about(self, row: int) -> tuple | None:
        packets = self.packets
        if packets is not None:
            return packets[row].icmp_about
        extra = self.extra.get(row)
        return extra[2] if extra is not None else None


OPEN_CHUNKS = 4  # sealed chunks kept open: reading a packet's neighbours (a log's page, a ladder) opens one once
_opened: dict[int, tuple[PacketChunk, _Body]] = {}  # id(chunk) -> (chunk, its body)
_opening = threading.Lock()  # a pcap export reads the frames in a thread


def _open(chunk: PacketChunk) -> _Body:
    body = _Body.unpack(chunk._packed, len(chunk), chunk._whole)
    with _opening:
        while len(_opened) >= OPEN_CHUNKS:
            del _opened[next(iter(_opened))]
        _opened[id(chunk)] = (chunk, body)
    return body


class StoredPacket:
    """A packet in a PacketLog, read as a Packet's fields are: from the Packet while its chunk fills, from
    the chunk's columns once sealed (made on demand: a view of its row)."""

    __slots__ = ("_chunk", "_row")

    def __init__(self, chunk: PacketChunk, row: int) -> None:
        self._chunk = chunk
        self._row = row

    @property
    def serial(self) -> int:
        """Its number among the packets the log was given, from 0 (PacketLog.get finds it again)."""
        return self._chunk.first + self._row

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

    def _column(self, name: str) -> int:
        packets = self._chunk.packets
        if packets is not None:
            return getattr(packets[self._row], name)
        return getattr(self._chunk.body, name)[self._row]

    @property
    def t_ns(self) -> int:
        return self._column("t_ns")

    @property
    def wall_ns(self) -> int:
        return self._column("wall_ns")

    @property
    def protocol(self) -> str:
        packets = self._chunk.packets
        if packets is not None:
            return packets[self._row].protocol
        return PROTOCOLS[self._chunk.body.bits[self._row] >> 6]

    @property
    def flags(self) -> tuple[str, ...]:
        packets = self._chunk.packets
        if packets is not None:
            return packets[self._row].flags
        return _FLAG_TUPLES[self._chunk.body.bits[self._row] & 0x3F]

    @property
    def src(self) -> Endpoint:
        packets = self._chunk.packets
        if packets is not None:
            return packets[self._row].src
        return endpoint_of(self._chunk.src[self._row])

    @property
    def dst(self) -> Endpoint:
        packets = self._chunk.packets
        if packets is not None:
            return packets[self._row].dst
        return endpoint_of(self._chunk.dst[self._row])

    @property
    def length(self) -> int:
        return self._column("length")

    @property
    def seq(self) -> int:
        return self._column("seq")

    @property
    def ack(self) -> int:
        return self._column("ack")

    @property
    def relative_seq(self) -> int:
        return self._column("relative_seq")

    @property
    def relative_ack(self) -> int:
        return self._column("relative_ack")

    @property
    def window(self) -> int:
        return self._column("window")

    def _extra(self, index: int, name: str) -> Any:
        packets = self._chunk.packets
        if packets is not None:
            return getattr(packets[self._row], name)
        return self._chunk.extra.get(self._row, _NO_EXTRA)[index]

    @property
    def preview(self) -> bytes:
        return self._extra(0, "preview")

    @property
    def icmp(self) -> str | None:
        return self._extra(1, "icmp")

    @property
    def icmp_about(self) -> tuple[Endpoint, Endpoint] | None:
        return self._extra(2, "icmp_about")

    @property
    def fate(self) -> str | None:
        return self._extra(3, "fate")

    @property
    def delivered_ns(self) -> int | None:
        return self._extra(4, "delivered_ns")

    @property
    def frame(self) -> bytes:
        chunk, row = self._chunk, self._row
        packets = chunk.packets
        if packets is not None:
            return packets[row].frame
        body = chunk.body
        ends = body.frame_ends
        return body.frames[ends[row - 1] if row else 0 : ends[row]]

    @property
    def src_label(self) -> str | None:
        chunk = self._chunk
        packets = chunk.packets
        if packets is not None:
            return packets[self._row].src_label
        return chunk.names[chunk.src_label[self._row]]

    @src_label.setter
    def src_label(self, label: str | None) -> None:
        self.set_labels(label, self.dst_label)

    @property
    def dst_label(self) -> str | None:
        chunk = self._chunk
        packets = chunk.packets
        if packets is not None:
            return packets[self._row].dst_label
        return chunk.names[chunk.dst_label[self._row]]

    @dst_label.setter
    def dst_label(self, label: str | None) -> None:
        self.set_labels(self.src_label, label)

    def set_labels(self, src_label: str | None, dst_label: str | None) -> None:
        chunk, row = self._chunk, self._row
        packets = chunk.packets
        if packets is not None:
            packet = packets[row]
            packet.src_label, packet.dst_label = src_label, dst_label
        else:
            chunk.src_label[row], chunk.dst_label[row] = chunk.names.add(src_label), chunk.names.add(dst_label)

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
        self._next = 0  # the next packet's serial number

    def __len__(self) -> int:
        return self._count

    def add(self, packet: Packet) -> StoredPacket:
        """Keep a packet (named: its src_label and dst_label set); the stored packet reads it back."""
        chunks = self._chunks
        if not chunks or len(chunks[-1]) == CHUNK:
            if chunks:
                chunks[-1].seal()
            chunks.append(PacketChunk(self.names, self._next))
        chunk = chunks[-1]
        row = chunk.add(packet)
        self._next += 1
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
            self.add(packet)

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

    def get(self, serial: int) -> StoredPacket | None:
        """The packet with this serial number (StoredPacket.serial), if it is among the newest maxlen."""
        index = serial - (self._next - self._count)
        return self[index] if 0 <= index < self._count else None
