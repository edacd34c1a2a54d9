"""The C library's socket calls, called as a C program calls them (no retries, no exceptions)."""

from __future__ import annotations

import ctypes
import socket
import struct
from collections.abc import Callable
from typing import Any

libc = ctypes.CDLL("libc.so.6", use_errno=True)

c_int = ctypes.c_int
c_uint = ctypes.c_uint
c_void_p = ctypes.c_void_p
c_size_t = ctypes.c_size_t
c_ssize_t = ctypes.c_ssize_t
c_char_p = ctypes.c_char_p
socklen_t = ctypes.c_uint32
P_socklen = ctypes.POINTER(socklen_t)


def _bind(name: str, restype: type, *argtypes: type) -> Callable[..., Any]:  # a C function, as ctypes calls it
    fn = getattr(libc, name)
    fn.restype = restype
    fn.argtypes = list(argtypes)
    return fn


socket_ = _bind("socket", c_int, c_int, c_int, c_int)
setsockopt = _bind("setsockopt", c_int, c_int, c_int, c_int, c_void_p, socklen_t)
getsockopt = _bind("getsockopt", c_int, c_int, c_int, c_int, c_void_p, P_socklen)
fcntl = _bind("fcntl", c_int, c_int, c_int, c_int)
bind = _bind("bind", c_int, c_int, c_void_p, socklen_t)
listen = _bind("listen", c_int, c_int, c_int)
accept = _bind("accept", c_int, c_int, c_void_p, P_socklen)
connect = _bind("connect", c_int, c_int, c_void_p, socklen_t)
getsockname = _bind("getsockname", c_int, c_int, c_void_p, P_socklen)
getpeername = _bind("getpeername", c_int, c_int, c_void_p, P_socklen)
read = _bind("read", c_ssize_t, c_int, c_void_p, c_size_t)
recv = _bind("recv", c_ssize_t, c_int, c_void_p, c_size_t, c_int)
recvfrom = _bind("recvfrom", c_ssize_t, c_int, c_void_p, c_size_t, c_int, c_void_p, P_socklen)
write = _bind("write", c_ssize_t, c_int, c_void_p, c_size_t)
send = _bind("send", c_ssize_t, c_int, c_void_p, c_size_t, c_int)
sendto = _bind("sendto", c_ssize_t, c_int, c_void_p, c_size_t, c_int, c_void_p, socklen_t)
writev = _bind("writev", c_ssize_t, c_int, c_void_p, c_int)
shutdown = _bind("shutdown", c_int, c_int, c_int)
close = _bind("close", c_int, c_int)
dup = _bind("dup", c_int, c_int)
poll = _bind("poll", c_int, c_void_p, c_uint, c_int)
ppoll = _bind("ppoll", c_int, c_void_p, c_uint, c_void_p, c_void_p)
waitpid = _bind("waitpid", c_int, c_int, ctypes.POINTER(c_int), c_int)
ioctl = _bind("ioctl", c_int, c_int, ctypes.c_ulong, c_void_p)
sigaction = _bind("sigaction", c_int, c_int, c_void_p, c_void_p)
pthread_sigmask = _bind("pthread_sigmask", c_int, c_int, c_void_p, c_void_p)
sigfillset = _bind("sigfillset", c_int, c_void_p)
sigemptyset = _bind("sigemptyset", c_int, c_void_p)

SIG_BLOCK, SIG_UNBLOCK, SIG_SETMASK = 0, 1, 2
SA_RESTART = 0x10000000
SA_ONSTACK = 0x08000000
SIOCINQ = 0x541B
SIOCOUTQ = 0x5411
F_GETFL, F_SETFL = 3, 4
O_NONBLOCK = 0o4000
SIG_DFL_PTR = 0
SIG_IGN_PTR = 1

SIGSET_BYTES = 128


class iovec(ctypes.Structure):
    _fields_ = [("base", c_void_p), ("len", c_size_t)]


class timespec(ctypes.Structure):
    _fields_ = [("sec", ctypes.c_long), ("nsec", ctypes.c_long)]


class pollfd(ctypes.Structure):
    _fields_ = [("fd", c_int), ("events", ctypes.c_short), ("revents", ctypes.c_short)]


class struct_sigaction(ctypes.Structure):
    """glibc's struct sigaction on Linux."""

    _fields_ = [
        ("handler", c_void_p),
        ("mask", ctypes.c_ubyte * SIGSET_BYTES),
        ("flags", c_int),
        ("restorer", c_void_p),
    ]


M_ARENA_MAX = -8  # mallopt's parameter (glibc's malloc.h)


def one_heap() -> None:
    """Keep the C heap in one arena: glibc gives each new thread an arena of its own (up to 8 a core).

    A lab process's threads (a monitor for each blocking call, the script's thread actors)
    are many and short-lived; each arena kept some 200 KB of their freed memory, 1 MB and
    more for a lab process that held 10,000 sockets (issue 13); sockplay's (the capture, the
    sock_diag dumps) half a megabyte. Their threads take turns at the heap: one arena's lock
    costs nothing measurable. (Elsewhere than glibc: nothing.)
    """
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is not None:
        mallopt(M_ARENA_MAX, 1)


def trim_heap() -> None:
    """Return the C heap's free memory to the system (glibc's malloc_trim; elsewhere nothing)."""
    trim = getattr(libc, "malloc_trim", None)
    if trim is not None:
        trim(0)


def full_sigset() -> ctypes.Array:
    buf = ctypes.create_string_buffer(SIGSET_BYTES)
    sigfillset(buf)
    return buf


def empty_sigset() -> ctypes.Array:
    buf = ctypes.create_string_buffer(SIGSET_BYTES)
    sigemptyset(buf)
    return buf


def errno() -> int:
    return ctypes.get_errno()


def sockaddr(family: int, host: str, port: int) -> ctypes.Array:
    """A sockaddr_in, sockaddr_in6 or sockaddr_un (host is then the path) for bind, connect and sendto."""
    if family == socket.AF_UNIX:
        packed = struct.pack("=H", socket.AF_UNIX) + host.encode()
        return ctypes.create_string_buffer(packed, len(packed))
    if family == socket.AF_INET6:
        host, _, zone = host.partition("%")
        packed = struct.pack(
            "=HHI16sI", socket.AF_INET6, socket.htons(port), 0, socket.inet_pton(socket.AF_INET6, host), scope_id(zone)
        )
    else:
        packed = struct.pack("=HH4s8x", socket.AF_INET, socket.htons(port), socket.inet_pton(socket.AF_INET, host))
    return ctypes.create_string_buffer(packed, len(packed))


def scope_id(zone: str) -> int:
    """The sin6_scope_id of an address's zone (`%lo` or `%1`): an interface of this process's namespace."""
    if not zone:
        return 0
    if zone.isdigit():
        return int(zone)
    try:
        return socket.if_nametoindex(zone)
    except OSError:
        raise OSError(f"no network interface named {zone!r} (the zone of the address) in the lab") from None


def parse_sockaddr(raw: bytes, length: int) -> tuple[str, int] | None:
    """(host, port) of a sockaddr the kernel filled in, or None if it is unset."""
    if length < 2:
        return None
    (family,) = struct.unpack_from("=H", raw)
    if family == socket.AF_INET and length >= 8:
        port = struct.unpack_from("!H", raw, 2)[0]
        return socket.inet_ntop(socket.AF_INET, raw[4:8]), port
    if family == socket.AF_INET6 and length >= 24:
        port = struct.unpack_from("!H", raw, 2)[0]
        return socket.inet_ntop(socket.AF_INET6, raw[8:24]), port
    return None
