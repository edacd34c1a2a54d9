"""Each call a step can make, as the one real syscall, timed around the syscall alone."""

from __future__ import annotations

import ctypes
import os
import struct
import time
from collections.abc import Callable
from typing import cast

from playground.worker import libc
from playground.worker.libc import sockaddr

now = time.monotonic_ns
Result = dict

SOCKADDR_MAX = 128


def _result(ret: int, t0: int, t1: int, **extra: object) -> Result:
    out: Result = {"ret": ret, "start": t0, "dur": t1 - t0}
    if ret == -1:
        out["errno"] = libc.errno()
    out.update(extra)
    return out


def do_socket(family: int, type_: int, proto: int) -> Result:
    t0 = now()
    ret = libc.socket_(family, type_, proto)
    t1 = now()
    return _result(ret, t0, t1)


def _optval(kind: str, value: object) -> tuple[ctypes.Array, int]:
    if kind == "linger":
        on, secs = cast("tuple[int, int]", value)
        packed = struct.pack("ii", on, secs)
    elif kind == "timeval":
        seconds = float(cast(float, value))
        whole = int(seconds)
        packed = struct.pack("ll", whole, round((seconds - whole) * 1_000_000))
    else:
        packed = struct.pack("i", int(cast(int, value)))
    return ctypes.create_string_buffer(packed, len(packed)), len(packed)


def do_setsockopt(fd: int, level: int, option: int, kind: str, value: object) -> Result:
    buf, size = _optval(kind, value)
    t0 = now()
    ret = libc.setsockopt(fd, level, option, buf, size)
    t1 = now()
    return _result(ret, t0, t1)


def read_option(fd: int, level: int, option: int, kind: str) -> tuple[int, object]:
    """getsockopt without timing: (ret, value decoded for the kind)."""
    buf = ctypes.create_string_buffer(16)
    size = libc.socklen_t(16)
    ret = libc.getsockopt(fd, level, option, buf, ctypes.byref(size))
    if ret == -1:
        return -1, None
    return ret, decode_option(kind, buf.raw[: size.value])


def decode_option(kind: str, raw: bytes) -> object:
    if kind == "linger":
        return list(struct.unpack_from("ii", raw))
    if kind == "timeval":
        sec, usec = struct.unpack_from("ll", raw)
        return sec + usec / 1_000_000
    (value,) = struct.unpack_from("i", raw)
    return value


def do_getsockopt(fd: int, level: int, option: int, kind: str) -> Result:
    buf = ctypes.create_string_buffer(16)
    size = libc.socklen_t(16)
    t0 = now()
    ret = libc.getsockopt(fd, level, option, buf, ctypes.byref(size))
    t1 = now()
    if ret == -1:
        return _result(ret, t0, t1)
    return _result(ret, t0, t1, value=decode_option(kind, buf.raw[: size.value]))


def do_fcntl_nonblock(fd: int, bit: int | None) -> Result:
    t0 = now()
    flags = libc.fcntl(fd, libc.F_GETFL, 0)
    if flags == -1 or bit is None:
        t1 = now()
        if flags == -1:
            return _result(-1, t0, t1)
        return _result(0, t0, t1, value=1 if flags & libc.O_NONBLOCK else 0)
    new = flags | libc.O_NONBLOCK if bit else flags & ~libc.O_NONBLOCK
    ret = libc.fcntl(fd, libc.F_SETFL, new)
    t1 = now()
    return _result(ret, t0, t1)


def do_bind(fd: int, family: int, host: str, port: int) -> Result:
    addr = sockaddr(family, host, port)
    t0 = now()
    ret = libc.bind(fd, addr, len(addr))
    t1 = now()
    return _result(ret, t0, t1)


def do_connect(fd: int, family: int, host: str, port: int) -> Result:
    addr = sockaddr(family, host, port)
    t0 = now()
    ret = libc.connect(fd, addr, len(addr))
    t1 = now()
    return _result(ret, t0, t1)


def do_listen(fd: int, backlog: int) -> Result:
    t0 = now()
    ret = libc.listen(fd, backlog)
    t1 = now()
    return _result(ret, t0, t1)


def do_accept(fd: int) -> Result:
    buf = ctypes.create_string_buffer(SOCKADDR_MAX)
    size = libc.socklen_t(SOCKADDR_MAX)
    t0 = now()
    ret = libc.accept(fd, buf, ctypes.byref(size))
    t1 = now()
    if ret == -1:
        return _result(ret, t0, t1)
    return _result(ret, t0, t1, peer=libc.parse_sockaddr(buf.raw, size.value))


def local_address(fd: int) -> tuple[str, int] | None:
    buf = ctypes.create_string_buffer(SOCKADDR_MAX)
    size = libc.socklen_t(SOCKADDR_MAX)
    if libc.getsockname(fd, buf, ctypes.byref(size)) == -1:
        return None
    return libc.parse_sockaddr(buf.raw, size.value)


def peer_address(fd: int) -> tuple[str, int] | None:
    buf = ctypes.create_string_buffer(SOCKADDR_MAX)
    size = libc.socklen_t(SOCKADDR_MAX)
    if libc.getpeername(fd, buf, ctypes.byref(size)) == -1:
        return None
    return libc.parse_sockaddr(buf.raw, size.value)


def do_read(fd: int, size: int) -> Result:
    buf = ctypes.create_string_buffer(max(size, 1))
    t0 = now()
    ret = libc.read(fd, buf, size)
    t1 = now()
    if ret >= 0:
        return _result(ret, t0, t1, data=buf.raw[:ret])
    return _result(ret, t0, t1)


def do_recv(fd: int, size: int, flags: int) -> Result:
    buf = ctypes.create_string_buffer(max(size, 1))
    t0 = now()
    ret = libc.recv(fd, buf, size, flags)
    t1 = now()
    if ret >= 0:
        return _result(ret, t0, t1, data=buf.raw[: min(ret, size)])
    return _result(ret, t0, t1)


def do_write(fd: int, data: bytes) -> Result:
    t0 = now()
    ret = libc.write(fd, data, len(data))
    t1 = now()
    return _result(ret, t0, t1)


def do_send(fd: int, data: bytes, flags: int) -> Result:
    t0 = now()
    ret = libc.send(fd, data, len(data), flags)
    t1 = now()
    return _result(ret, t0, t1)


def do_sendto(fd: int, data: bytes, flags: int, family: int, host: str, port: int) -> Result:
    addr = sockaddr(family, host, port)
    t0 = now()
    ret = libc.sendto(fd, data, len(data), flags, addr, len(addr))
    t1 = now()
    return _result(ret, t0, t1)


def do_writev(fd: int, buffers: list[bytes]) -> Result:
    keep = [ctypes.create_string_buffer(b, len(b)) for b in buffers]
    entries = [libc.iovec(ctypes.cast(k, ctypes.c_void_p), len(k)) for k in keep]  # len(k) == len(its bytes)
    vec = (libc.iovec * len(buffers))(*entries)
    t0 = now()
    ret = libc.writev(fd, vec, len(buffers))
    t1 = now()
    return _result(ret, t0, t1)


def do_shutdown(fd: int, how: int) -> Result:
    t0 = now()
    ret = libc.shutdown(fd, how)
    t1 = now()
    return _result(ret, t0, t1)


def do_close(fd: int) -> Result:
    t0 = now()
    ret = libc.close(fd)
    t1 = now()
    return _result(ret, t0, t1)


def do_dup(fd: int) -> Result:
    t0 = now()
    ret = libc.dup(fd)
    t1 = now()
    return _result(ret, t0, t1)


def do_poll(fd: int, events: int, timeout: int) -> Result:
    pfd = libc.pollfd(fd, events, 0)
    t0 = now()
    ret = libc.poll(ctypes.byref(pfd), 1, timeout)
    t1 = now()
    if ret >= 0:
        return _result(ret, t0, t1, revents=pfd.revents & 0xFFFF)
    return _result(ret, t0, t1)


def do_waitpid(pid: int, flags: int) -> Result:
    status = ctypes.c_int(0)
    t0 = now()
    ret = libc.waitpid(pid, ctypes.byref(status), flags)
    t1 = now()
    if ret > 0:
        st = status.value
        if os.WIFEXITED(st):
            child = ["exited", os.WEXITSTATUS(st)]
        elif os.WIFSIGNALED(st):
            child = ["killed", os.WTERMSIG(st)]
        elif os.WIFSTOPPED(st):
            child = ["stopped", os.WSTOPSIG(st)]
        else:
            child = ["status", st]
        return _result(ret, t0, t1, child=child)
    return _result(ret, t0, t1)


# getsockname, getpeername and recvfrom (with AF_UNIX paths) are more_syscalls'.
SYSCALLS: dict[str, Callable[..., Result]] = {
    "socket": do_socket,
    "setsockopt": do_setsockopt,
    "getsockopt": do_getsockopt,
    "fcntl": do_fcntl_nonblock,
    "bind": do_bind,
    "connect": do_connect,
    "listen": do_listen,
    "accept": do_accept,
    "read": do_read,
    "recv": do_recv,
    "write": do_write,
    "send": do_send,
    "sendto": do_sendto,
    "writev": do_writev,
    "shutdown": do_shutdown,
    "close": do_close,
    "dup": do_dup,
    "poll": do_poll,
    "waitpid": do_waitpid,
}
