"""The control channel: frames between sockplay and each lab process.

A lab process runs an untrusted script, so every frame it sends is checked
before the lab acts on it: a frame that does not decode, or a message whose
shape or values are not what a lab process sends, raises ChannelError, and
the lab kills the process and says why (never a traceback in sockplay).
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
from collections.abc import Callable

from playground import protocol
from playground.lab_process import CallHandle, Process
from playground.readiness import valid_ready

RECV_BUFFER = 256 * 1024
SPIN_NS = 150_000
WAKE_FRAME = protocol.encode((0, "wake", None))
_MAX_ERRNO = 4095


class ChannelError(Exception):
    """A lab process sent something no lab process sends."""


class Receiver:
    """Reads whatever a lab process's channel holds: frames, and descriptors passed with them."""

    def __init__(self) -> None:
        self._view = memoryview(bytearray(RECV_BUFFER))

    def read(self, proc: Process) -> list[tuple] | None:
        """The messages now readable (checked), [] if none yet, None once the channel has closed."""
        assert proc.channel is not None
        try:
            size, ancdata, flags, _addr = proc.channel.recvmsg_into([self._view], socket.CMSG_SPACE(16))
        except (BlockingIOError, InterruptedError):
            return []
        except OSError:
            size, ancdata, flags = 0, [], 0
        if flags & socket.MSG_CTRUNC:
            # A descriptor was sent but sockplay had no number free to take it: -1 holds its
            # place, so the fork it came with is known to have lost its child's channel.
            proc.fd_queue.append(-1)
        for level, kind, payload in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                usable = len(payload) - len(payload) % 4
                for i in range(0, usable, 4):
                    proc.fd_queue.append(int.from_bytes(payload[i : i + 4], sys.byteorder))
        if size == 0:
            return None
        try:
            messages = proc.frames.feed(self._view[:size])
        except (ValueError, EOFError, TypeError) as exc:
            raise ChannelError(f"a frame that does not decode ({exc})") from None
        return [check_message(message) for message in messages]


def check_message(message: object) -> tuple:
    """The message if it has the shape of one a lab process sends, else ChannelError."""
    if not isinstance(message, tuple) or len(message) != 3:
        raise ChannelError(f"a message of the wrong shape ({type(message).__name__})")
    request_id, kind, payload = message
    if not isinstance(request_id, int):
        raise ChannelError("a message without a request number")
    if kind == protocol.HELLO:
        if not isinstance(payload, dict) or not isinstance(payload.get("pid"), int):
            raise ChannelError("a hello without its pid")
    elif kind == protocol.SIGNAL_IDLE:
        _require(isinstance(payload, dict), "a signal report that is not a record")
        _require(_ints(payload.get("signals")) and isinstance(payload.get("t"), int), "a malformed signal report")
    elif kind == protocol.ERROR:
        _require(isinstance(payload, str), "an error report that is not text")
    elif kind == protocol.DONE:
        _require(isinstance(payload, dict), "a result that is not a record")
    else:
        raise ChannelError(f"a message of unknown kind {kind!r}")
    return message


def check_call_result(raw: dict) -> dict:
    """A call's result as the lab reads it (ret, times, errno, addresses...), or ChannelError."""
    ret = raw.get("ret")
    _require(isinstance(ret, int), "a result without a return value")
    _require(isinstance(raw.get("start", 0), int) and isinstance(raw.get("dur", 0), int), "a result with bad times")
    if "errno" in raw:
        number = raw["errno"]
        _require(isinstance(number, int) and 0 < number <= _MAX_ERRNO, "a result with a bad errno")
    for key in ("local", "peer"):
        if raw.get(key) is not None:
            _require(_endpoint(raw[key]), f"a result with a bad {key} address")
    for key in ("ino", "revents"):
        if key in raw:
            _require(isinstance(raw[key], int), f"a result with a bad {key}")
    if "signals" in raw:
        _require(_ints(raw["signals"]), "a result with bad signals")
    if "data" in raw:
        _require(isinstance(raw["data"], bytes), "a result whose data is not bytes")
    if "child" in raw:
        child = raw["child"]
        _require(
            isinstance(child, (list, tuple))
            and len(child) == 2
            and isinstance(child[0], str)
            and isinstance(child[1], int),
            "a result with a bad child status",
        )
    if "value" in raw:
        _require(_value(raw["value"]), "a result with a bad value")
    if "ready" in raw:
        _require(valid_ready(raw["ready"]), "a result with a bad ready set")
    _check_more(raw)
    return raw


_MAX_LISTED = 64  # descriptors in one result (recvmsg's rights, socketpair's inodes), TCP_INFO's fields


def _check_more(raw: dict) -> None:
    """The keys issue 13's further calls add: descriptors made, TCP_INFO's fields, an AF_UNIX path."""
    for key in ("rights", "inos"):
        if key in raw:
            _require(_ints(raw[key]) and len(raw[key]) <= _MAX_LISTED, f"a result with bad {key}")
    if "path" in raw:
        _require(isinstance(raw["path"], str) and len(raw["path"]) <= 108, "a result with a bad AF_UNIX path")
    if "fields" in raw:
        fields = raw["fields"]
        _require(
            isinstance(fields, dict)
            and len(fields) <= _MAX_LISTED
            and all(isinstance(k, str) and isinstance(v, int) for k, v in fields.items()),
            "a result with bad TCP_INFO fields",
        )


def _require(condition: bool, what: str) -> None:
    if not condition:
        raise ChannelError(what)


def _ints(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, int) for v in value)


def _endpoint(value: object) -> bool:
    return (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and isinstance(value[0], str)
        and isinstance(value[1], int)
        and 0 <= value[1] <= 65535
    )


def _value(value: object) -> bool:
    if value is None or isinstance(value, (int, float)):
        return True
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return _endpoint(value) or all(isinstance(v, int) for v in value)
    return False


def send(loop: asyncio.AbstractEventLoop, proc: Process, frame: bytes) -> None:
    """Send a frame without blocking the loop: what the channel cannot take now waits in order."""
    assert proc.channel is not None
    if proc.outbox:
        proc.outbox.append(memoryview(frame))
        return
    try:
        sent = proc.channel.send(frame)
    except BlockingIOError:
        sent = 0
    if sent < len(frame):
        proc.outbox.append(memoryview(frame)[sent:])
        loop.add_writer(proc.channel.fileno(), flush_outbox, loop, proc)


def flush_outbox(loop: asyncio.AbstractEventLoop, proc: Process) -> None:
    if proc.channel is None:
        return
    while proc.outbox:
        try:
            sent = proc.channel.send(proc.outbox[0])
        except BlockingIOError:
            return
        except OSError:
            proc.outbox.clear()
            break
        if sent < len(proc.outbox[0]):
            proc.outbox[0] = proc.outbox[0][sent:]
            return
        proc.outbox.popleft()
    loop.remove_writer(proc.channel.fileno())


def spin_for(handle: CallHandle, on_readable: Callable[[Process], None]) -> None:
    """Poll the channel briefly for a fast call's result instead of sleeping in epoll."""
    proc = handle.process.thread_of or handle.process  # a thread actor's calls come back on its process's channel
    deadline = time.monotonic_ns() + SPIN_NS
    while not handle.future.done() and proc.channel is not None and time.monotonic_ns() < deadline:
        on_readable(proc)
        # The process we wait for (or the next one, polling) may share this core:
        # poll, but never keep the core from it.
        os.sched_yield()
