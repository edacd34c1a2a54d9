"""The channel between sockplay and its switch process: length-prefixed messages on a Unix stream socket.

sockplay sends commands (JSON); the switch answers each (JSON, with the
command's id) and, when asked, sends the frame feed: batches of fixed-size
records, each followed by the frame's bytes.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from typing import Any

HEADER = struct.Struct("!IB")  # payload length, kind
COMMAND = ord("C")
REPLY = ord("R")
FEED = ord("F")
MAX_MESSAGE = 64 * 1024 * 1024
# entered (ns), delivered (ns, -1: never), fate, port in, port out (NO_PORT: none), frame length
RECORD = struct.Struct("!qqBHHH")
NO_PORT = 0xFFFF
DELIVERED = "delivered"
DUPLICATE = "duplicate"
LOST_CUT = "lost-cut"
LOST_LOSS = "lost-loss"
LOST_QUEUE = "lost-queue"
FATES = (DELIVERED, LOST_CUT, LOST_LOSS, LOST_QUEUE, DUPLICATE)
_FATE_CODE = {fate: code for code, fate in enumerate(FATES)}


@dataclass
class FrameFate:
    """One copy of a frame through the switch: when it came in on which port, and what became of it.

    Times are CLOCK_MONOTONIC nanoseconds, the clock lab processes stamp their calls with. A frame
    flooded to several ports, or duplicated by a cable, gives one FrameFate per copy."""

    entered_ns: int
    port_in: str
    delivered_ns: int | None
    port_out: str | None  # None: flooded to no port, or lost before the switch knew where it went
    fate: str  # one of FATES
    frame: bytes = field(repr=False, default=b"")

    @property
    def lost(self) -> bool:
        return self.fate.startswith("lost-")


def message(kind: int, payload: bytes) -> bytes:
    return HEADER.pack(len(payload), kind) + payload


def command(body: dict[str, Any]) -> bytes:
    return message(COMMAND, json.dumps(body).encode())


def reply(body: dict[str, Any]) -> bytes:
    return message(REPLY, json.dumps(body).encode())


def record(
    entered_ns: int, delivered_ns: int | None, fate: str, port_in: int, port_out: int | None, frame: bytes
) -> bytes:
    delivered = -1 if delivered_ns is None else delivered_ns
    out = NO_PORT if port_out is None else port_out
    return RECORD.pack(entered_ns, delivered, _FATE_CODE[fate], port_in, out, len(frame)) + frame


def read_records(payload: bytes, names: dict[int, str]) -> list[FrameFate]:
    """A feed batch as FrameFates, port numbers turned into the names `names` gives them."""
    out = []
    offset = 0
    while offset + RECORD.size <= len(payload):
        entered, delivered, fate, port_in, port_out, length = RECORD.unpack_from(payload, offset)
        offset += RECORD.size
        frame = payload[offset : offset + length]
        offset += length
        out.append(
            FrameFate(
                entered,
                names.get(port_in, f"port {port_in}"),
                None if delivered < 0 else delivered,
                None if port_out == NO_PORT else names.get(port_out, f"port {port_out}"),
                FATES[fate] if fate < len(FATES) else LOST_QUEUE,
                frame,
            )
        )
    return out


class MessageBuffer:
    """Bytes in, whole messages out."""

    def __init__(self) -> None:
        self.data = bytearray()

    def feed(self, chunk: bytes) -> list[tuple[int, bytes]]:
        self.data += chunk
        out = []
        start = 0  # cut the messages off once, not one by one: a chunk can hold hundreds
        while len(self.data) - start >= HEADER.size:
            length, kind = HEADER.unpack_from(self.data, start)
            if length > MAX_MESSAGE:
                raise ValueError(f"a message of {length} bytes on the switch's channel")
            end = start + HEADER.size + length
            if len(self.data) < end:
                break
            out.append((kind, bytes(self.data[start + HEADER.size : end])))
            start = end
        del self.data[:start]
        return out
