"""Every TCP, UDP and ICMP packet on the lab's loopback, as the kernel sent it.

A reader thread takes frames from an AF_PACKET socket bound to `lo` (each
frame appears there twice, leaving and arriving: only one copy is kept),
stamps them on the event log's clock, decodes the headers and hands them to
the lab in batches. A pcap file, if asked for, gets one frame per segment.
"""

from __future__ import annotations

import os
import select
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from playground.compact import EndpointPairs

if TYPE_CHECKING:
    from playground.packet_log import StoredPacket

PACKET_HOST = 0
PACKET_OUTGOING = 4
SOL_PACKET = 263
PACKET_IGNORE_OUTGOING = 23
SO_TIMESTAMPNS = 35
ETH_HEADER = 14
# After delivering a batch, how long the reader lets packets gather before it reads again.
GATHER_MS = 5
TCP_FLAGS = (("FIN", 0x01), ("SYN", 0x02), ("RST", 0x04), ("PSH", 0x08), ("ACK", 0x10), ("URG", 0x20))
ICMP_TEXT = {
    (3, 0): "net unreachable",
    (3, 1): "host unreachable",
    (3, 3): "port unreachable",
    (3, 4): "fragmentation needed",
    (11, 0): "TTL exceeded",
    (0, 0): "echo reply",
    (8, 0): "echo request",
}
ICMP6_TEXT = {
    (1, 4): "port unreachable",
    (1, 0): "no route",
    (1, 3): "address unreachable",
    (128, 0): "echo request",
    (129, 0): "echo reply",
}
PREVIEW = 48
# The flags tuple for each combination of the six bits: packets share them.
_FLAG_TUPLES = tuple(tuple(name for name, bit in TCP_FLAGS if bits & bit) for bits in range(64))


@dataclass(slots=True)
class Packet:
    """One captured packet, decoded (slots: a session holds up to 200,000 of them)."""

    t_ns: int  # CLOCK_MONOTONIC, the event log's clock
    protocol: str  # TCP, UDP, ICMP, ICMPv6
    src: tuple[str, int]
    dst: tuple[str, int]
    length: int  # payload bytes
    flags: tuple[str, ...] = ()
    seq: int = 0
    ack: int = 0
    relative_seq: int = 0
    relative_ack: int = 0
    window: int = 0
    preview: bytes = b""
    icmp: str | None = None  # "port unreachable" and the like
    icmp_about: tuple[tuple[str, int], tuple[str, int]] | None = None  # the datagram the ICMP error is about
    src_label: str | None = None
    dst_label: str | None = None
    frame: bytes = field(default=b"", repr=False)
    wall_ns: int = 0
    # Seen at the network lab's switch: what the cable did to it (playground.netlab.channel.FATES) and when the
    # switch handed it on (None: never). None on a loopback, where every packet arrives.
    fate: str | None = None
    delivered_ns: int | None = None
    # Made by decode(): its frame tells its headers' fields (a PacketLog keeps the frame and decodes it again).
    decoded: bool = field(default=False, repr=False, compare=False)

    @property
    def lost(self) -> bool:
        return packet_lost(self)

    @property
    def summary(self) -> str:
        """`client.c > server.a FIN|ACK seq 1 ack 1 win 512 len 0`."""
        return packet_summary(self)


def packet_lost(packet: Packet | StoredPacket) -> bool:
    return packet.fate is not None and packet.fate.startswith("lost")


def packet_summary(packet: Packet | StoredPacket) -> str:
    """`client.c > server.a FIN|ACK seq 1 ack 1 win 512 len 0` (`lost ...` for a packet the cable dropped)."""
    src_label, dst_label = packet.src_label, packet.dst_label
    protocol, length, flags = packet.protocol, packet.length, packet.flags
    if protocol == "TCP":
        text = f"{src_label or _endpoint(packet.src)} > {dst_label or _endpoint(packet.dst)} {'|'.join(flags) or '-'}"
        text += f" seq {packet.relative_seq}"
        if "ACK" in flags:
            text += f" ack {packet.relative_ack}"
        text += f" win {packet.window} len {length}"
    elif protocol == "UDP":
        text = f"{src_label or _endpoint(packet.src)} > {dst_label or _endpoint(packet.dst)} UDP len {length}"
    else:
        text = f"{src_label or packet.src[0]} > {dst_label or packet.dst[0]} {protocol} {packet.icmp}"
    preview = packet.preview
    if preview:
        text += " " + _preview_text(preview, length)
    return "lost " + text if packet_lost(packet) else text


def _endpoint(address: tuple[str, int]) -> str:
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _preview_text(data: bytes, total: int) -> str:
    from playground.script.format import quote

    text = quote(data[:24])
    return text + ("…" if total > 24 else "")


def decode(frame: bytes, t_ns: int) -> Packet | None:
    """Decode an Ethernet frame from `lo`; None for anything but TCP, UDP and ICMP over IP."""
    if len(frame) < ETH_HEADER + 20:
        return None
    (ethertype,) = struct.unpack_from("!H", frame, 12)
    offset = ETH_HEADER
    if ethertype == 0x0800:
        ihl = (frame[offset] & 0x0F) * 4
        total = struct.unpack_from("!H", frame, offset + 2)[0]
        proto = frame[offset + 9]
        src = sys.intern(socket.inet_ntop(socket.AF_INET, frame[offset + 12 : offset + 16]))
        dst = sys.intern(socket.inet_ntop(socket.AF_INET, frame[offset + 16 : offset + 20]))
        end = offset + total
        offset += ihl
    elif ethertype == 0x86DD:
        payload_len = struct.unpack_from("!H", frame, offset + 4)[0]
        proto = frame[offset + 6]
        src = sys.intern(socket.inet_ntop(socket.AF_INET6, frame[offset + 8 : offset + 24]))
        dst = sys.intern(socket.inet_ntop(socket.AF_INET6, frame[offset + 24 : offset + 40]))
        offset += 40
        end = offset + payload_len
    else:
        return None
    end = min(end, len(frame))
    if proto == 6 and end - offset >= 20:
        sport, dport, seq, ack, off_flags, window = struct.unpack_from("!HHIIHH", frame, offset)
        header = (off_flags >> 12) * 4
        flags = _FLAG_TUPLES[off_flags & 0x3F]
        payload = frame[offset + header : end]
        return Packet(
            t_ns,
            "TCP",
            (src, sport),
            (dst, dport),
            len(payload),
            flags,
            seq,
            ack,
            window=window,
            preview=payload[:PREVIEW],
            frame=frame,
            decoded=True,
        )
    if proto == 17 and end - offset >= 8:
        sport, dport, length = struct.unpack_from("!HHH", frame, offset)
        payload = frame[offset + 8 : end]
        return Packet(
            t_ns, "UDP", (src, sport), (dst, dport), len(payload), preview=payload[:PREVIEW], frame=frame, decoded=True
        )
    if proto in (1, 58) and end - offset >= 8:
        kind, code = frame[offset], frame[offset + 1]
        table = ICMP_TEXT if proto == 1 else ICMP6_TEXT
        text = table.get((kind, code), f"type {kind} code {code}")
        about = _icmp_about(frame, offset + 8, proto)
        return Packet(
            t_ns,
            "ICMP" if proto == 1 else "ICMPv6",
            (src, 0),
            (dst, 0),
            end - offset - 8,
            icmp=text,
            icmp_about=about,
            frame=frame,
            decoded=True,
        )
    return None


def _icmp_about(frame: bytes, offset: int, proto: int) -> tuple[tuple[str, int], tuple[str, int]] | None:
    """The (source, destination) of the datagram an ICMP error quotes."""
    try:
        if proto == 1:
            ihl = (frame[offset] & 0x0F) * 4
            src = socket.inet_ntop(socket.AF_INET, frame[offset + 12 : offset + 16])
            dst = socket.inet_ntop(socket.AF_INET, frame[offset + 16 : offset + 20])
            sport, dport = struct.unpack_from("!HH", frame, offset + ihl)
        else:
            src = socket.inet_ntop(socket.AF_INET6, frame[offset + 8 : offset + 24])
            dst = socket.inet_ntop(socket.AF_INET6, frame[offset + 24 : offset + 40])
            sport, dport = struct.unpack_from("!HH", frame, offset + 40)
        return (src, sport), (dst, dport)
    except (struct.error, ValueError, IndexError):
        return None


def clock_offset(samples: int = 8) -> int:
    """CLOCK_REALTIME minus CLOCK_MONOTONIC, for turning the kernel's packet stamps into the calls' clock.

    Another thread can take the GIL between two clock readings (for up to the switch
    interval, 5 ms): an offset read across such a pause puts every packet that much
    later than the calls that made it. So the realtime reading is bracketed by two
    monotonic ones, several times, and the tightest bracket is kept.
    """
    best_width, best = None, 0
    for _ in range(samples):
        before = time.monotonic_ns()
        wall = time.clock_gettime_ns(time.CLOCK_REALTIME)
        after = time.monotonic_ns()
        if best_width is None or after - before < best_width:
            best_width, best = after - before, wall - (before + after) // 2
    return best


class PcapWriter:
    """A pcap file (nanosecond timestamps, Ethernet frames) that Wireshark and tshark read."""

    MAGIC_NS = 0xA1B23C4D

    def __init__(self, path: str) -> None:
        from playground.output_files import open_output_stream  # a regular file only, never through a link

        self.file = os.fdopen(open_output_stream(path), "wb")
        self.file.write(struct.pack("=IHHiIII", self.MAGIC_NS, 2, 4, 0, 0, 262144, 1))
        self.file.flush()
        self.lock = threading.Lock()

    def write(self, wall_ns: int, frame: bytes) -> None:
        with self.lock:
            if self.file.closed:
                return
            self.file.write(
                struct.pack("=IIII", wall_ns // 1_000_000_000, wall_ns % 1_000_000_000, len(frame), len(frame))
            )
            self.file.write(frame)
            self.file.flush()

    def close(self) -> None:
        with self.lock:
            self.file.close()


def _kernel_stamp(ancdata: list[tuple[int, int, bytes]]) -> int:
    """The kernel's CLOCK_REALTIME stamp of a frame (SO_TIMESTAMPNS), or now if it gave none."""
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
            seconds, nanoseconds = struct.unpack("=qq", data[:16])
            return seconds * 1_000_000_000 + nanoseconds
    return time.clock_gettime_ns(time.CLOCK_REALTIME)


STOP_DRAIN_LIMIT = 100_000  # frames read after stop() at the most, to empty the socket's queue


class Capture:
    """Reads the lab's loopback in a thread; `deliver` gets batches of Packets (in that thread)."""

    def __init__(
        self,
        sock: socket.socket,
        deliver: Callable[[list[Packet]], None],
        drained: Callable[[], None] | None = None,
    ) -> None:
        self.sock = sock
        self.deliver = deliver
        # Called (in the thread) after every frame queued at a flush() has been delivered.
        self.drained = drained
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 1024 * 1024)
        except OSError:
            pass
        self.sock.setblocking(False)
        # Loopback shows every frame twice, leaving and arriving. Have the kernel drop the
        # leaving copies (half the work); where it cannot, drop the arriving ones here.
        try:
            self.sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
            self.keep_type = PACKET_HOST
        except OSError:
            self.keep_type = PACKET_OUTGOING
        self._stop = threading.Event()
        self._isn = EndpointPairs()  # numbers, not tuples: 10,000 connections have 20,000 entries
        self.count = 0
        self.thread = threading.Thread(target=self._run, name="capture", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def flush(self) -> None:
        """Ask the thread to deliver what is queued now, then call `drained`."""
        try:
            os.write(self._wake_w, b"f")
        except BlockingIOError:
            pass

    def stop(self) -> None:
        self._stop.set()
        self.flush()
        if self.thread.is_alive():
            self.thread.join(timeout=2)
        for fd in (self._wake_r, self._wake_w):
            os.close(fd)

    def _clock_offset(self) -> int:
        return clock_offset()

    def _run(self) -> None:
        offset = self._clock_offset()
        refreshed = time.monotonic()
        batch: list[Packet] = []
        poller = select.poll()
        poller.register(self.sock.fileno(), select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        flush_only = select.poll()
        flush_only.register(self._wake_r, select.POLLIN)
        flushing = False
        left_at_stop = STOP_DRAIN_LIMIT
        while left_at_stop > 0:
            if self._stop.is_set():
                # What the lab's last calls queued is read before the end, not dropped (bounded:
                # a stream that never pauses ends the capture all the same).
                left_at_stop -= 1
            try:
                # Wait for the first frame, then drain what is queued and deliver it at once.
                frame, ancdata, _flags, address = self.sock.recvmsg(65600, 64)
            except BlockingIOError:
                delivered = bool(batch)
                if batch:
                    self.deliver(batch)
                    batch = []
                if flushing and self.drained is not None:
                    self.drained()
                flushing = False
                if self._stop.is_set():
                    break
                # Packets come in bursts: after a batch, let the next ones gather in the
                # socket's buffer for a moment (a flush still ends the wait at once), so a
                # stream costs a few wake-ups a second, not one per packet; each wake-up
                # takes a core and the GIL from the lab's own work.
                waiter = flush_only if delivered else poller
                flushing = self._wait(waiter, GATHER_MS if delivered else 100)
                continue
            except OSError:
                break
            if address[2] != self.keep_type:
                continue
            now = time.monotonic()
            wall_ns = _kernel_stamp(ancdata)
            if now - refreshed > 1.0:
                offset, refreshed = self._clock_offset(), now
            packet = decode(frame, wall_ns - offset)
            if packet is None:
                continue
            packet.wall_ns = wall_ns
            self._relative(packet)
            self.count += 1
            batch.append(packet)
            if len(batch) >= 1024:
                self.deliver(batch)
                batch = []
        if batch:
            self.deliver(batch)

    def _wait(self, waiter: select.poll, timeout_ms: int) -> bool:
        """Wait for a frame or a flush; whether a flush was asked for."""
        flush = False
        for fd, _ in waiter.poll(timeout_ms):
            if fd == self._wake_r:
                try:
                    os.read(self._wake_r, 64)
                except BlockingIOError:
                    pass
                flush = True
        return flush

    def _relative(self, packet: Packet) -> None:
        number_relative(packet, self._isn)


def number_relative(packet: Packet, isn: EndpointPairs | dict[tuple, int]) -> None:
    """Set a TCP packet's sequence and ack numbers relative to its connection's first ones (`isn` keeps them)."""
    if packet.protocol != "TCP":
        return
    forward = (packet.src, packet.dst)
    backward = (packet.dst, packet.src)
    if "SYN" in packet.flags or forward not in isn:
        isn[forward] = packet.seq
    base = isn[forward]
    packet.relative_seq = (packet.seq - base) & 0xFFFFFFFF
    if backward in isn:
        packet.relative_ack = (packet.ack - isn[backward]) & 0xFFFFFFFF
    else:
        packet.relative_ack = packet.ack
