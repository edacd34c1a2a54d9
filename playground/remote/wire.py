"""A remote host's packets, as its agent captured them, put on the lab's timeline.

The agent stamps each frame on the remote clock (CLOCK_REALTIME there); the
link measured how far that clock is from ours, so each packet is placed on the
event log's clock (CLOCK_MONOTONIC here) as if it had been captured here.
"""

from __future__ import annotations

import time

from playground.capture import Packet, decode

MAX_FRAME = 65536 + 14


class RemoteWire:
    """Decodes one remote host's frames: our clock, and sequence numbers relative to each connection's start."""

    def __init__(self) -> None:
        self._isn: dict[tuple[tuple[str, int], tuple[str, int]], int] = {}

    def packets(self, frames: object, clock_offset_ns: int) -> list[Packet]:
        """The packets of an agent's `frames` message ([(remote wall ns, frame), ...]), the malformed left out."""
        if not isinstance(frames, list):
            return []
        wall_to_monotonic = time.time_ns() - time.monotonic_ns()
        out = []
        for item in frames:
            if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], int)):
                continue
            stamp, frame = item
            if not isinstance(frame, bytes) or len(frame) > MAX_FRAME:
                continue
            wall_ns = stamp - clock_offset_ns
            packet = decode(frame, wall_ns - wall_to_monotonic)
            if packet is None:
                continue
            packet.wall_ns = wall_ns
            self._relative(packet)
            out.append(packet)
        return out

    def _relative(self, packet: Packet) -> None:
        if packet.protocol != "TCP":
            return
        forward = (packet.src, packet.dst)
        backward = (packet.dst, packet.src)
        if "SYN" in packet.flags or forward not in self._isn:
            self._isn[forward] = packet.seq
        packet.relative_seq = (packet.seq - self._isn[forward]) & 0xFFFFFFFF
        base = self._isn.get(backward)
        packet.relative_ack = packet.ack if base is None else (packet.ack - base) & 0xFFFFFFFF
