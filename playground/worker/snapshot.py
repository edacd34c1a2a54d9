"""What the kernel says of a process's sockets, read without side effects."""

from __future__ import annotations

import ctypes
import os
import socket
import stat
import struct

from playground.constants import OPTIONS
from playground.worker import libc
from playground.worker.more_syscalls import unix_end, unix_state
from playground.worker.syscalls import local_address, peer_address, read_option

_TCP_INFO_FIELDS = {
    # name: offset of a u32 in struct tcp_info
    "rto": 8,
    "ato": 12,
    "snd_mss": 16,
    "rcv_mss": 20,
    "unacked": 24,
    "sacked": 28,
    "lost": 32,
    "retrans": 36,
    "last_data_sent": 44,
    "last_data_recv": 52,
    "last_ack_recv": 56,
    "pmtu": 60,
    "rtt": 68,
    "rttvar": 72,
    "snd_ssthresh": 76,
    "snd_cwnd": 80,
    "total_retrans": 100,
}
# Reading SO_ERROR clears it, so the inspector never reads it; TCP_INFO it reads whole (tcp_info);
# SO_MEMINFO's fields are a script's to ask for.
_INSPECTED = [spec for spec in OPTIONS.values() if spec.name not in ("SO_ERROR", "TCP_INFO", "SO_MEMINFO")]


def _ioctl_int(fd: int, request: int) -> int | None:
    value = ctypes.c_int(0)
    if libc.ioctl(fd, request, ctypes.byref(value)) == -1:
        return None
    return value.value


def tcp_info(fd: int) -> dict | None:
    buf = ctypes.create_string_buffer(232)
    size = libc.socklen_t(232)
    if libc.getsockopt(fd, socket.IPPROTO_TCP, socket.TCP_INFO, buf, ctypes.byref(size)) == -1:
        return None
    raw = buf.raw[: size.value]
    info = {"state": raw[0], "ca_state": raw[1], "retransmits": raw[2], "probes": raw[3], "backoff": raw[4]}
    for name, offset in _TCP_INFO_FIELDS.items():
        if offset + 4 <= len(raw):
            info[name] = struct.unpack_from("I", raw, offset)[0]
    return info


def inspect_socket(fd: int) -> dict | None:
    """Everything shown for one descriptor, or None if it is not an open socket."""
    try:
        st = os.fstat(fd)
    except OSError:
        return None
    if not stat.S_ISSOCK(st.st_mode):
        return {"fd": fd, "socket": False, "ino": st.st_ino}
    _, family = read_option(fd, socket.SOL_SOCKET, socket.SO_DOMAIN, "int")
    _, type_ = read_option(fd, socket.SOL_SOCKET, socket.SO_TYPE, "int")
    _, listening = read_option(fd, socket.SOL_SOCKET, socket.SO_ACCEPTCONN, "int")
    options: dict[str, object] = {}
    for spec in _INSPECTED:
        if spec.tcp_only and type_ != socket.SOCK_STREAM:
            continue
        if spec.ipv6_only and family != socket.AF_INET6:
            continue
        ret, value = read_option(fd, spec.level, spec.number, spec.kind)
        if ret == 0:
            options[spec.name] = value
    flags = libc.fcntl(fd, libc.F_GETFL, 0)
    options["O_NONBLOCK"] = 1 if flags != -1 and flags & libc.O_NONBLOCK else 0
    info = tcp_info(fd) if type_ == socket.SOCK_STREAM and family != socket.AF_UNIX else None
    if family == socket.AF_UNIX:
        return _unix_socket(fd, st.st_ino, type_, bool(listening), options)
    return {
        "fd": fd,
        "socket": True,
        "ino": st.st_ino,
        "family": family,
        "type": type_,
        "listening": bool(listening),
        "local": local_address(fd),
        "peer": peer_address(fd),
        "state": info["state"] if info else None,
        "tcp": info,
        # SIOCINQ on a listener would be meaningless; it answers EINVAL there.
        "inq": _ioctl_int(fd, libc.SIOCINQ),
        "outq": _ioctl_int(fd, libc.SIOCOUTQ),
        "options": options,
    }


def _unix_socket(fd: int, ino: int, type_: object, listening: bool, options: dict) -> dict:
    """An AF_UNIX socket: its ends by path, its state as ss names it, no TCP_INFO."""
    peer = unix_end(libc.getpeername, fd, unnamed=True)
    return {
        "fd": fd,
        "socket": True,
        "ino": ino,
        "family": int(socket.AF_UNIX),
        "type": type_,
        "listening": listening,
        "local": unix_end(libc.getsockname, fd),
        "peer": peer,
        "state": unix_state(type_, listening, peer),
        "tcp": None,
        "inq": _ioctl_int(fd, libc.SIOCINQ),
        "outq": _ioctl_int(fd, libc.SIOCOUTQ),
        "options": options,
    }


def inspect_fds(fds: list[int]) -> list[dict]:
    out = []
    for fd in sorted(fds):
        info = inspect_socket(fd)
        if info is not None:
            out.append(info)
    return out
