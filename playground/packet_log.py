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
from array import array
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, overload

from playground.capture import _FLAG_TUPLES, Packet, decode, packet_lost, packet_summary
from playground.compact import HOSTS, Strings, endpoint_of
from playground.compression import compress, decompress
from playground.sequences import item_or_slice

Endpoint = tuple[str, int]
CHUNK = 128  # rows a chunk holds; a full chunk is sealed (its columns compressed together)
BIG = 512  # a frame longer than this (bulk data) is kept as it is: compressing it would cost the loop more
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

    __slots__ = (*_ALL, "frames", "src", "dst", "src_label", "dst_label")

    def __init__(self) -> None:
        self.src = array("I")  # a frozen chunk's ends and names
        self.dst = array("I")
        self.src_label = array("I")
        self.dst_label = array("I")
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
    def pack(packets: list[Packet], whole: bool, big: dict[int, bytes]) -> bytes:
        """The packets' columns in one compressed string: times and frame sizes as differences (they compress
        to a byte or two where the numbers take four or five), the wall clock from the monotonic one.
        Without `whole`, what the frames tell is left to them."""
        t_ns = [p.t_ns for p in packets]
        columns = [
            array("q", [b - a for a, b in zip([0, *t_ns], t_ns, strict=False)]),
            array("q", [p.wall_ns - p.t_ns for p in packets]),
            array("I", [p.relative_seq for p in packets]),
            array("I", [p.relative_ack for p in packets]),
            array("I", [0 if row in big else len(p.frame) for row, p in enumerate(packets)]),
        ]
        if whole:
            columns += [
                array("I", [p.seq for p in packets]),
                array("I", [p.ack for p in packets]),
                array("I", [p.length for p in packets]),
                array("H", [p.window for p in packets]),
                array("B", [_PROTOCOL_BITS[p.protocol] | _FLAG_BITS[p.flags] for p in packets]),
            ]
        frames = b"".join(p.frame for row, p in enumerate(packets) if row not in big)
        return compress(b"".join(column.tobytes() for column in columns) + frames)

    @classmethod
    def unpack(cls, chunk: PacketChunk) -> _Body:
        data, body, at, count = decompress(chunk._packed), cls(), 0, len(chunk)
        whole = bool(chunk._flags & WHOLE)
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
            start, big = 0, chunk.big
            for row, end in enumerate(body.frame_ends):
                packet = decode(big[row] if row in big else frames[start:end], 0)
                assert packet is not None
                body.seq.append(packet.seq)
                body.ack.append(packet.ack)
                body.length.append(packet.length)
                body.window.append(packet.window)
                body.bits.append(_PROTOCOL_BITS[packet.protocol] | _FLAG_BITS[packet.flags])
                start = end
        return body


class PacketChunk:
    """Up to CHUNK packets: their names as numbers in two arrays (the lab renames the newest); while the
    chunk fills, the Packets themselves (keeping one costs next to nothing); once full, sealed: their ends
    in two arrays, what few packets have (data, ICMP, a fate) in `extra`, the rest compressed together
    and read back when asked for (a few chunks are kept open at a time).
    """

    __slots__ = (
        "names",
        "first",
        "packets",
        "src",
        "dst",
        "src_label",
        "dst_label",
        "extra",
        "big",
        "_packed",
        "_frozen",
        "_flags",
        "_count",
    )

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
        self.big: dict[int, bytes] = {}  # frames of more than BIG bytes (bulk data), kept as they are
        self._packed = b""
        self._frozen = b""  # a frozen chunk's ends and names, compressed
        self._flags = 0  # WHOLE: every column packed (not left to the frames); FROZEN: ends and names packed too
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def add(self, packet: Packet, src_label: int, dst_label: int) -> int:
        packets = self.packets
        assert packets is not None
        packets.append(packet)
        self.src_label.append(src_label)
        self.dst_label.append(dst_label)
        self._count += 1
        return self._count - 1

    def seal(self) -> None:
        packets = self.packets
        if packets is None:
            return
        hosts = {p.src[0] for p in packets} | {p.dst[0] for p in packets}
        number = {host: HOSTS.index(host) << 16 for host in hosts}
        # (past the first 65,536 hosts a session numbered, an end takes more than 32 bits: WIDE)
        ends = "Q" if max(number.values()) >> 32 else "I"
        self.src = array(ends, [number[p.src[0]] | p.src[1] for p in packets])
        self.dst = array(ends, [number[p.dst[0]] | p.dst[1] for p in packets])
        for row, p in enumerate(packets):
            extra = (p.preview, p.icmp, p.icmp_about, p.fate, p.delivered_ns)
            if extra != _NO_EXTRA:
                self.extra[row] = extra
        # Packets from the capture carry their frames, which tell the rest; a test's may have none.
        self._flags = (0 if all(p.decoded for p in packets) else WHOLE) | (WIDE if ends == "Q" else 0)
        self.big = {row: p.frame for row, p in enumerate(packets) if len(p.frame) > BIG}
        self._packed = _Body.pack(packets, bool(self._flags & WHOLE), self.big)
        self.packets = None

    def freeze(self) -> None:
        """Pack the ends and names too: the lab renames only the newest packets, and this chunk's are older."""
        if self.packets is not None or self._flags & FROZEN:
            return
        ends = b"".join(column.tobytes() for column in (self.src, self.dst, self.src_label, self.dst_label))
        self._frozen = compress(ends)
        self._flags |= FROZEN
        self.src, self.dst, self.src_label, self.dst_label = _EMPTY, _EMPTY, _EMPTY, _EMPTY

    def thaw(self) -> None:
        """Ends and names in arrays again, to be written (a packet renamed after all)."""
        if self._flags & FROZEN:
            self.src, self.dst, self.src_label, self.dst_label = self.ends()
            self._flags &= ~FROZEN
            self._frozen = b""
            _thawed.pop(id(self), None)

    def ends(self) -> tuple[array, array, array, array]:
        """Its packets' (src, dst, src_label, dst_label) columns (a frozen chunk's are read apart from the
        rest: the log compares every packet's names when its lines are listed anew)."""
        if self._flags & FROZEN:
            found = _thawed.get(id(self))
            if found is not None and found[0] is self:
                return found[1]
            data, count = decompress(self._frozen), self._count
            wide = 8 if self._flags & WIDE else 4  # the ends' bytes each; the names' are 4
            ends = "Q" if self._flags & WIDE else "I"
            columns = (
                array(ends, data[: wide * count]),
                array(ends, data[wide * count : 2 * wide * count]),
                array("I", data[2 * wide * count : 2 * wide * count + 4 * count]),
                array("I", data[2 * wide * count + 4 * count :]),
            )
            with _opening:
                while len(_thawed) >= THAWED_CHUNKS:
                    del _thawed[next(iter(_thawed))]
                _thawed[id(self)] = (self, columns)
            return columns
        return self.src, self.dst, self.src_label, self.dst_label

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


WHOLE, FROZEN, WIDE = 1, 2, 4  # WIDE: the ends are 64-bit (a host numbered past 65,535)
_EMPTY = array("I")  # a frozen chunk's ends and names (never written: thaw() gives it arrays again)
OPEN_CHUNKS = 4  # sealed chunks kept open: reading a packet's neighbours (a log's page, a ladder) opens one once
_opened: dict[int, tuple[PacketChunk, _Body]] = {}  # id(chunk) -> (chunk, its body)
_opening = threading.Lock()  # a pcap export reads the frames in a thread
THAWED_CHUNKS = 16  # frozen chunks whose ends and names are kept read (a few KB each)
_thawed: dict[int, tuple[PacketChunk, tuple[array, array, array, array]]] = {}


def _open(chunk: PacketChunk) -> _Body:
    body = _Body.unpack(chunk)
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
        return endpoint_of(self._chunk.ends()[0][self._row])

    @property
    def dst(self) -> Endpoint:
        packets = self._chunk.packets
        if packets is not None:
            return packets[self._row].dst
        return endpoint_of(self._chunk.ends()[1][self._row])

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
        big = chunk.big.get(row)
        if big is not None:
            return big
        body = chunk.body
        ends = body.frame_ends
        return body.frames[ends[row - 1] if row else 0 : ends[row]]

    @property
    def src_label(self) -> str | None:
        chunk = self._chunk
        return chunk.names[chunk.ends()[2][self._row]]

    @src_label.setter
    def src_label(self, label: str | None) -> None:
        self.set_labels(label, self.dst_label)

    @property
    def dst_label(self) -> str | None:
        chunk = self._chunk
        return chunk.names[chunk.ends()[3][self._row]]

    @dst_label.setter
    def dst_label(self, label: str | None) -> None:
        self.set_labels(self.src_label, label)

    def set_labels(self, src_label: str | None, dst_label: str | None) -> None:
        chunk, row = self._chunk, self._row
        chunk.thaw()
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

    def add(self, packet: Packet, src_label: int | None = None, dst_label: int | None = None) -> StoredPacket:
        """Keep a packet, its ends named by their numbers in `names` (by its src_label and dst_label if not
        given); the stored packet reads it back."""
        chunks = self._chunks
        if not chunks or len(chunks[-1]) == CHUNK:
            if chunks:
                chunks[-1].seal()
            if len(chunks) >= 3:  # the newest 256 packets, which the lab may rename, are in the last three
                chunks[-3].freeze()
            chunks.append(PacketChunk(self.names, self._next))
        chunk = chunks[-1]
        if src_label is None or dst_label is None:
            src_label, dst_label = self.names.add(packet.src_label), self.names.add(packet.dst_label)
        row = chunk.add(packet, src_label, dst_label)
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

    def _stored(self, index: int) -> StoredPacket:
        """The packet at `index` (0 <= index < len(self))."""
        index += self._skip
        return StoredPacket(self._chunks[index // CHUNK], index % CHUNK)

    @overload
    def __getitem__(self, index: int) -> StoredPacket: ...
    @overload
    def __getitem__(self, index: slice) -> list[StoredPacket]: ...
    def __getitem__(self, index: int | slice) -> StoredPacket | list[StoredPacket]:
        return item_or_slice(index, self._count, self._stored, "packet index out of range")

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
            yield self._stored(index)

    def __bool__(self) -> bool:
        return self._count > 0

    def get(self, serial: int) -> StoredPacket | None:
        """The packet with this serial number (StoredPacket.serial), if it is among the newest maxlen."""
        index = serial - (self._next - self._count)
        return self[index] if 0 <= index < self._count else None


class SeenPackets(Sequence[AnyPacket]):
    """Packets in the order they were seen: a log's packets kept as their chunk (each chunk once) and
    row in 8 bytes, not a view object (a step's `~` lines keep up to 10,000: issue 13); others as they are.

    As the views did, it keeps their chunks: however many newer packets came, they read as they were.
    """

    __slots__ = ("_codes", "_chunks", "_others")

    def __init__(self) -> None:
        self._codes = array("q")  # chunk number << 8 | row; -1: in _others, by position
        self._chunks: list[PacketChunk] = []
        self._others: dict[int, AnyPacket] = {}

    def append(self, packet: AnyPacket) -> None:
        if isinstance(packet, StoredPacket):
            chunk, row = packet.place
            chunks = self._chunks
            if not chunks or chunks[-1] is not chunk:
                chunks.append(chunk)
            self._codes.append((len(chunks) - 1) << 8 | row)
            return
        self._others[len(self._codes)] = packet
        self._codes.append(-1)

    def extend(self, packets: Iterable[AnyPacket]) -> None:
        for packet in packets:
            self.append(packet)

    def __len__(self) -> int:
        return len(self._codes)

    @overload
    def __getitem__(self, index: int) -> AnyPacket: ...
    @overload
    def __getitem__(self, index: slice) -> list[AnyPacket]: ...
    def __getitem__(self, index: int | slice) -> AnyPacket | list[AnyPacket]:
        return item_or_slice(index, len(self._codes), self._at, "packet index out of range")

    def _at(self, index: int) -> AnyPacket:
        code = self._codes[index]
        return StoredPacket(self._chunks[code >> 8], code & 0xFF) if code >= 0 else self._others[index]
