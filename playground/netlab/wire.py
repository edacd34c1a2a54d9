"""The switch's frame feed as the lab's packets: decoded as capture decodes them, each with its fate.

With hosts, the lab's wire is the switch: every frame a host put on its
cable, when it reached the switch (the packet's time, on the calls' clock),
and what the cables did with it: delivered (and when), a duplicate, or lost
(to a cut, to loss, to a full rate queue). A frame flooded to several ports
gives a packet per copy.
"""

from __future__ import annotations

import time

from playground.capture import Packet, clock_offset, decode, number_relative
from playground.netlab.channel import FrameFate

OFFSET_REFRESH_S = 1.0


class FeedPackets:
    """Decodes feed batches into Packets, numbering each TCP connection's sequence from its first segment."""

    def __init__(self) -> None:
        self._isn: dict[tuple, int] = {}
        self._offset = clock_offset()
        self._offset_at = time.monotonic()

    def packets(self, records: list[FrameFate]) -> list[Packet]:
        """The TCP, UDP and ICMP packets among `records` (anything else, ARP say, is left out)."""
        if time.monotonic() - self._offset_at > OFFSET_REFRESH_S:
            self._offset, self._offset_at = clock_offset(), time.monotonic()
        out = []
        for record in records:
            packet = decode(record.frame, record.entered_ns)
            if packet is None:
                continue
            packet.fate = record.fate
            packet.delivered_ns = record.delivered_ns
            packet.wall_ns = record.entered_ns + self._offset  # pcap files stamp wall-clock time
            number_relative(packet, self._isn)
            out.append(packet)
        return out
