"""Frames on the control channel between the lab and its processes.

The channel is a private socketpair between sockplay and the processes it
started, so marshal (fast, and unable to run code) carries the messages.
A frame is a 4-byte big-endian length then the marshalled tuple.
"""

from __future__ import annotations

import marshal
import struct

HEADER = struct.Struct(">I")
MAX_FRAME = 256 * 1024 * 1024
MAX_CALL_DATA = MAX_FRAME - 1024 * 1024  # a call's data, with room in its frame for the rest of the request

# Message kinds, worker to lab.
DONE = "done"  # (id, DONE, result dict)
HELLO = "hello"  # (0, HELLO, {"pid": ...})
SIGNAL_IDLE = "signal"  # (0, SIGNAL_IDLE, {"signals": [...], "t": ns})
ERROR = "error"  # (id, ERROR, message): the request itself was malformed


def encode(message: tuple) -> bytes:
    body = marshal.dumps(message)
    return HEADER.pack(len(body)) + body


class FrameBuffer:
    """Reassembles frames from a non-blocking stream read piecewise."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes | memoryview) -> list[tuple]:
        self._buffer += data
        messages = []
        while len(self._buffer) >= HEADER.size:
            (size,) = HEADER.unpack_from(self._buffer)
            if size > MAX_FRAME:
                raise ValueError(f"control frame of {size} bytes is too large")
            end = HEADER.size + size
            if len(self._buffer) < end:
                break
            messages.append(marshal.loads(bytes(self._buffer[HEADER.size : end])))
            del self._buffer[:end]
        return messages
