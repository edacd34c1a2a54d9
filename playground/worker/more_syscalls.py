"""Issue 13's further calls, each the one real syscall, timed around the syscall alone.

The descriptor limit (getrlimit; setrlimit is made by main.py, which moves its machinery),
socketpair, AF_UNIX paths, readv, accept4, and sendmsg/recvmsg passing descriptors (SCM_RIGHTS).
"""

from __future__ import annotations

import ctypes
import socket
import struct
from collections.abc import Callable

from playground.worker import libc
from playground.worker.syscalls import SOCKADDR_MAX, Result, _result, do_getsockopt, now

MAX_RIGHTS = 16  # as playground.constants has it (a lab process imports as little as it can)
_INT = struct.calcsize("i")


class rlimit(ctypes.Structure):
    _fields_ = [("cur", ctypes.c_uint64), ("max", ctypes.c_uint64)]


class msghdr(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_void_p),
        ("namelen", libc.socklen_t),
        ("iov", ctypes.c_void_p),
        ("iovlen", ctypes.c_size_t),
        ("control", ctypes.c_void_p),
        ("controllen", ctypes.c_size_t),
        ("flags", ctypes.c_int),
    ]


_getrlimit = libc._bind("getrlimit", ctypes.c_int, ctypes.c_int, ctypes.c_void_p)
_setrlimit = libc._bind("setrlimit", ctypes.c_int, ctypes.c_int, ctypes.c_void_p)
_socketpair = libc._bind("socketpair", ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_void_p)
_readv = libc._bind("readv", ctypes.c_ssize_t, ctypes.c_int, ctypes.c_void_p, ctypes.c_int)
_accept4 = libc._bind("accept4", ctypes.c_int, ctypes.c_int, ctypes.c_void_p, libc.P_socklen, ctypes.c_int)
_sendmsg = libc._bind("sendmsg", ctypes.c_ssize_t, ctypes.c_int, ctypes.c_void_p, ctypes.c_int)
_recvmsg = libc._bind("recvmsg", ctypes.c_ssize_t, ctypes.c_int, ctypes.c_void_p, ctypes.c_int)


def unix_path(raw: bytes, length: int) -> str | None:
    """The path of a sockaddr_un the kernel filled in, or None (another family, or unnamed)."""
    if length <= 2 or struct.unpack_from("=H", raw)[0] != socket.AF_UNIX:
        return None
    path = raw[2:length].split(b"\0", 1)[0]
    return path.decode("utf-8", "replace") if path else None


def do_getrlimit(resource: int) -> Result:
    limit = rlimit()
    t0 = now()
    ret = _getrlimit(resource, ctypes.byref(limit))
    t1 = now()
    if ret == -1:
        return _result(ret, t0, t1)
    return _result(ret, t0, t1, value=[limit.cur, limit.max])


def setrlimit(resource: int, soft: int, hard: int) -> Result:
    limit = rlimit(soft, hard)
    t0 = now()
    ret = _setrlimit(resource, ctypes.byref(limit))
    t1 = now()
    return _result(ret, t0, t1)


def do_socketpair(family: int, type_: int, proto: int) -> Result:
    fds = (ctypes.c_int * 2)(-1, -1)
    t0 = now()
    ret = _socketpair(family, type_, proto, fds)
    t1 = now()
    if ret == -1:
        return _result(ret, t0, t1)
    return _result(ret, t0, t1, value=[fds[0], fds[1]])


def do_readv(fd: int, sizes: list[int]) -> Result:
    keep = [ctypes.create_string_buffer(max(size, 1)) for size in sizes]
    entries = [libc.iovec(ctypes.cast(k, ctypes.c_void_p), size) for k, size in zip(keep, sizes)]
    vec = (libc.iovec * len(sizes))(*entries)
    t0 = now()
    ret = _readv(fd, vec, len(sizes))
    t1 = now()
    if ret < 0:
        return _result(ret, t0, t1)
    data, left = b"", ret
    for k, size in zip(keep, sizes):
        take = min(left, size)
        data += k.raw[:take]
        left -= take
    return _result(ret, t0, t1, data=data)


def do_accept4(fd: int, flags: int) -> Result:
    buf = ctypes.create_string_buffer(SOCKADDR_MAX)
    size = libc.socklen_t(SOCKADDR_MAX)
    t0 = now()
    ret = _accept4(fd, buf, ctypes.byref(size), flags)
    t1 = now()
    if ret == -1:
        return _result(ret, t0, t1)
    return _result(ret, t0, t1, peer=libc.parse_sockaddr(buf.raw, size.value))


def _rights_space(count: int) -> int:
    return socket.CMSG_SPACE(count * _INT)


def do_sendmsg(fd: int, data: bytes, rights: list[int]) -> Result:
    keep = ctypes.create_string_buffer(data, len(data))
    iov = libc.iovec(ctypes.cast(keep, ctypes.c_void_p), len(data))
    header = msghdr(None, 0, ctypes.cast(ctypes.byref(iov), ctypes.c_void_p), 1, None, 0, 0)
    control = None
    if rights:
        # struct cmsghdr: size_t len, int level, int type, then the descriptors.
        body = struct.pack(f"{len(rights)}i", *rights)
        cmsg = struct.pack("Nii", socket.CMSG_LEN(len(body)), socket.SOL_SOCKET, socket.SCM_RIGHTS) + body
        cmsg += b"\0" * (_rights_space(len(rights)) - len(cmsg))
        control = ctypes.create_string_buffer(cmsg, len(cmsg))
        header.control = ctypes.cast(control, ctypes.c_void_p)
        header.controllen = len(cmsg)
    t0 = now()
    ret = _sendmsg(fd, ctypes.byref(header), 0)
    t1 = now()
    return _result(ret, t0, t1)


def do_recvmsg(fd: int, size: int) -> Result:
    buf = ctypes.create_string_buffer(max(size, 1))
    iov = libc.iovec(ctypes.cast(buf, ctypes.c_void_p), size)
    name = ctypes.create_string_buffer(SOCKADDR_MAX)
    space = _rights_space(MAX_RIGHTS)
    control = ctypes.create_string_buffer(space)
    header = msghdr(
        ctypes.cast(name, ctypes.c_void_p),
        SOCKADDR_MAX,
        ctypes.cast(ctypes.byref(iov), ctypes.c_void_p),
        1,
        ctypes.cast(control, ctypes.c_void_p),
        space,
        0,
    )
    t0 = now()
    ret = _recvmsg(fd, ctypes.byref(header), 0)
    t1 = now()
    if ret < 0:
        return _result(ret, t0, t1)
    extra: dict[str, object] = {"data": buf.raw[: min(ret, size)], "rights": _rights(control.raw, header.controllen)}
    path = unix_path(name.raw, header.namelen)
    if path is not None:
        extra["path"] = path
    else:
        peer = libc.parse_sockaddr(name.raw, header.namelen)
        if peer is not None:
            extra["peer"] = peer
    return _result(ret, t0, t1, **extra)


def do_recvfrom(fd: int, size: int, flags: int) -> Result:
    """recvfrom, with an AF_UNIX sender's path (the first set's recvfrom knows IP addresses only)."""
    buf = ctypes.create_string_buffer(max(size, 1))
    addr = ctypes.create_string_buffer(SOCKADDR_MAX)
    alen = libc.socklen_t(SOCKADDR_MAX)
    t0 = now()
    ret = libc.recvfrom(fd, buf, size, flags, addr, ctypes.byref(alen))
    t1 = now()
    if ret < 0:
        return _result(ret, t0, t1)
    path = unix_path(addr.raw, alen.value)
    if path is not None:
        return _result(ret, t0, t1, data=buf.raw[: min(ret, size)], path=path)
    return _result(ret, t0, t1, data=buf.raw[: min(ret, size)], peer=libc.parse_sockaddr(addr.raw, alen.value))


def _rights(control: bytes, length: int) -> list[int]:
    """The descriptors in a control buffer's SCM_RIGHTS messages, in order."""
    fds: list[int] = []
    header = struct.calcsize("Nii")
    at = 0
    while at + header <= length:
        cmsg_len, level, kind = struct.unpack_from("Nii", control, at)
        if cmsg_len < header:
            break
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            count = (cmsg_len - socket.CMSG_LEN(0)) // _INT
            fds += struct.unpack_from(f"{count}i", control, at + socket.CMSG_LEN(0))
        at += socket.CMSG_SPACE(cmsg_len - socket.CMSG_LEN(0))
    return fds


def _name_with_path(fn: Callable, fd: int) -> Result:
    buf = ctypes.create_string_buffer(SOCKADDR_MAX)
    size = libc.socklen_t(SOCKADDR_MAX)
    t0 = now()
    ret = fn(fd, buf, ctypes.byref(size))
    t1 = now()
    if ret == -1:
        return _result(ret, t0, t1)
    path = unix_path(buf.raw, size.value)
    if path is not None:
        return _result(ret, t0, t1, value=None, path=path)
    return _result(ret, t0, t1, value=libc.parse_sockaddr(buf.raw, size.value))


def unix_end(fn: Callable, fd: int, unnamed: bool = False) -> list | None:
    """An AF_UNIX socket's end (getsockname or getpeername) as the inspector shows it: [path, -1].

    An end without a path (a socketpair's) is None, or ["", -1] with unnamed (a peer that exists).
    """
    buf = ctypes.create_string_buffer(SOCKADDR_MAX)
    size = libc.socklen_t(SOCKADDR_MAX)
    if fn(fd, buf, ctypes.byref(size)) == -1:
        return None
    path = unix_path(buf.raw, size.value)
    if path is None:
        return ["", -1] if unnamed else None
    return [path, -1]


def unix_state(type_: object, listening: bool, peer: list | None) -> int | None:
    """An AF_UNIX stream socket's state in the words ss uses for it (LISTEN, ESTABLISHED, CLOSED)."""
    if type_ != socket.SOCK_STREAM:
        return None
    return 10 if listening else 1 if peer else 7


_TCP_INFO_SIZE = 232
# struct tcp_info (<linux/tcp.h>): the fields shown, as (name, offset, struct format).
_TCP_INFO_SHOWN = (
    ("state", 0, "B"),
    ("ca_state", 1, "B"),
    ("retransmits", 2, "B"),
    ("probes", 3, "B"),
    ("backoff", 4, "B"),
    ("rto_us", 8, "I"),
    ("snd_mss", 16, "I"),
    ("rcv_mss", 20, "I"),
    ("unacked", 24, "I"),
    ("lost", 32, "I"),
    ("rtt_us", 68, "I"),
    ("rttvar_us", 72, "I"),
    ("snd_cwnd", 80, "I"),
    ("total_retrans", 100, "I"),
)


# SO_MEMINFO's u32 array (<linux/sock_diag.h>, SK_MEMINFO_*): what `ss -m` shows as skmem.
_MEMINFO_SHOWN = tuple(
    (name, 4 * i, "I")
    for i, name in enumerate(
        ("rmem_alloc", "rcvbuf", "wmem_alloc", "sndbuf", "fwd_alloc", "wmem_queued", "optmem", "backlog", "drops")
    )
)
_FIELDS = {"tcp_info": (_TCP_INFO_SIZE, _TCP_INFO_SHOWN), "meminfo": (4 * len(_MEMINFO_SHOWN), _MEMINFO_SHOWN)}


def do_getsockopt_fields(fd: int, level: int, option: int, kind: str) -> Result:
    """getsockopt, with TCP_INFO and SO_MEMINFO read whole and given as named fields."""
    if kind not in _FIELDS:
        return do_getsockopt(fd, level, option, kind)
    length, shown = _FIELDS[kind]
    buf = ctypes.create_string_buffer(length)
    size = libc.socklen_t(length)
    t0 = now()
    ret = libc.getsockopt(fd, level, option, buf, ctypes.byref(size))
    t1 = now()
    if ret == -1:
        return _result(ret, t0, t1)
    raw = buf.raw[: size.value]
    fields = {name: struct.unpack_from(fmt, raw, at)[0] for name, at, fmt in shown if at + 4 <= len(raw)}
    return _result(ret, t0, t1, value=None, fields=fields)


MORE_SYSCALLS: dict[str, Callable[..., Result]] = {
    "getrlimit": do_getrlimit,
    "socketpair": do_socketpair,
    "readv": do_readv,
    "accept4": do_accept4,
    "sendmsg": do_sendmsg,
    "recvmsg": do_recvmsg,
    "recvfrom": do_recvfrom,
    "getsockname": lambda fd: _name_with_path(libc.getsockname, fd),
    "getpeername": lambda fd: _name_with_path(libc.getpeername, fd),
    "getsockopt": do_getsockopt_fields,
}
