"""The kernel's list of TCP sockets, read through sock_diag (inet_diag over netlink).

It includes what no descriptor refers to any more: connections in TIME-WAIT,
FIN-WAIT-2, and orphans still sending their last data, with their timers.
"""

from __future__ import annotations

import errno
import socket
import struct
import sys
from dataclasses import dataclass, field

from playground.constants import TCP_STATES

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST = 0x1
NLM_F_DUMP = 0x300
NLMSG_ERROR = 2
NLMSG_DONE = 3
INET_DIAG_INFO = 2
ALL_STATES = 0xFFFFFFFF & ~(1 << 12)  # NEW-SYN-RECV entries are request socks, not sockets

_NLMSGHDR = struct.Struct("=IHHII")
_REQ = struct.Struct("=BBBxI")
_MSG_HEAD = struct.Struct("=BBBB")
_MSG_TAIL = struct.Struct("=IIIII")
_RTATTR = struct.Struct("=HH")

TIMERS = {0: None, 1: "retransmit", 2: "keepalive", 3: "time-wait", 4: "persist", 5: "retransmit"}


@dataclass(slots=True)
class KernelSocket:
    """One TCP socket as the kernel lists it (slots: a dump of 10,000 connections has 20,000)."""

    family: int
    state: str
    local: tuple[str, int]
    peer: tuple[str, int]
    inode: int
    timer: str | None
    expires_ms: int
    retrans: int
    rqueue: int
    wqueue: int
    info: dict[str, int] = field(default_factory=dict)

    @property
    def orphan(self) -> bool:
        """No descriptor refers to it any more (TIME-WAIT, or an orphan finishing its close)."""
        return self.inode == 0


def open_diag_socket() -> socket.socket:
    return socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_SOCK_DIAG)


def _request(family: int, seq: int) -> bytes:
    body = _REQ.pack(family, socket.IPPROTO_TCP, 1 << (INET_DIAG_INFO - 1), ALL_STATES)
    body += bytes(48)  # inet_diag_sockid: match everything
    header = _NLMSGHDR.pack(_NLMSGHDR.size + len(body), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, seq, 0)
    return header + body


def _address(family: int, raw: bytes) -> str:
    if family == socket.AF_INET:
        return sys.intern(socket.inet_ntop(socket.AF_INET, raw[:4]))
    return sys.intern(socket.inet_ntop(socket.AF_INET6, raw))


def _tcp_info(raw: bytes) -> dict[str, int]:
    info = {"state": raw[0], "retransmits": raw[2], "probes": raw[3], "backoff": raw[4]}
    for name, offset in (
        ("rto", 8),
        ("unacked", 24),
        ("lost", 32),
        ("retrans", 36),
        ("rtt", 68),
        ("rttvar", 72),
        ("snd_cwnd", 80),
        ("total_retrans", 100),
    ):
        if offset + 4 <= len(raw):
            info[name] = struct.unpack_from("=I", raw, offset)[0]
    return info


def _parse(payload: bytes) -> KernelSocket:
    family, state, timer, retrans = _MSG_HEAD.unpack_from(payload, 0)
    sport, dport = struct.unpack_from(">HH", payload, 4)
    src = _address(family, payload[8:24])
    dst = _address(family, payload[24:40])
    expires, rqueue, wqueue, _uid, inode = _MSG_TAIL.unpack_from(payload, 52)
    info: dict[str, int] = {}
    offset = 72
    while offset + _RTATTR.size <= len(payload):
        length, kind = _RTATTR.unpack_from(payload, offset)
        if length < _RTATTR.size:
            break
        if kind == INET_DIAG_INFO:
            info = _tcp_info(payload[offset + _RTATTR.size : offset + length])
        offset += (length + 3) & ~3
    return KernelSocket(
        family=family,
        state=TCP_STATES.get(state, str(state)),
        local=(src, sport),
        peer=(dst, dport),
        inode=inode,
        timer=TIMERS.get(timer, str(timer)) if timer else None,
        expires_ms=expires,
        retrans=retrans,
        rqueue=rqueue,
        wqueue=wqueue,
        info=info,
    )


def _idle(payload: bytes) -> bool:
    """A socket with a descriptor, no timer running and nothing retransmitted (from its header alone)."""
    _family, _state, timer, retrans = _MSG_HEAD.unpack_from(payload, 0)
    return not timer and not retrans and _MSG_TAIL.unpack_from(payload, 52)[4] != 0


def dump_tcp(sock: socket.socket, skip_idle: bool = False) -> list[KernelSocket]:
    """Every TCP socket (IPv4 and IPv6) in the namespace the netlink socket was made in.

    `skip_idle`: leave out the sockets with a descriptor, no timer and no retransmission (most
    of 10,000 held connections: parsing them took 100 ms of the event loop), unparsed.
    """
    out: list[KernelSocket] = []
    for seq, family in enumerate((socket.AF_INET, socket.AF_INET6), start=1):
        sock.send(_request(family, seq))
        done = False
        while not done:
            data = sock.recv(1 << 16)
            offset = 0
            while offset + _NLMSGHDR.size <= len(data):
                length, kind, _flags, _seq, _pid = _NLMSGHDR.unpack_from(data, offset)
                if length < _NLMSGHDR.size:
                    done = True
                    break
                if kind == NLMSG_DONE:
                    done = True
                    break
                if kind == NLMSG_ERROR:
                    (error,) = struct.unpack_from("=i", data, offset + _NLMSGHDR.size)
                    if error:
                        raise OSError(-error, f"sock_diag: {errno.errorcode.get(-error, error)}")
                    done = True
                    break
                if kind == SOCK_DIAG_BY_FAMILY:
                    payload = data[offset + _NLMSGHDR.size : offset + length]
                    if not (skip_idle and len(payload) >= 72 and _idle(payload)):
                        out.append(_parse(payload))
                offset += (length + 3) & ~3
            if not data:
                break
    return out
