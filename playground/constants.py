"""Names the script language shares with C: options, signals, errnos, flags."""

from __future__ import annotations

import errno as _errno
import select
import signal as _signal
import socket
from typing import Literal, NamedTuple

OptionKind = Literal["bool", "int", "linger", "timeval", "errno", "seconds", "tcp_info", "meminfo"]


class OptionSpec(NamedTuple):
    """One socket option: where it lives and how its value is spelled.

    (A NamedTuple, not a dataclass: every lab process imports this table, and
    `dataclasses` costs a new process about a quarter of its start.)
    """

    name: str
    level: int
    number: int
    kind: OptionKind
    tcp_only: bool = False
    readonly: bool = False
    ipv6_only: bool = False
    summary: str = ""


_SOL = int(socket.SOL_SOCKET)
# <linux/in.h>, <linux/in6.h> and <asm-generic/socket.h>; Python's socket module does not name them.
IP_RECVERR = 11
IPV6_RECVERR = 25
SO_MEMINFO = 55
_TCP = int(socket.IPPROTO_TCP)

OPTIONS: dict[str, OptionSpec] = {
    spec.name: spec
    for spec in (
        OptionSpec(
            "SO_REUSEADDR",
            _SOL,
            socket.SO_REUSEADDR,
            "bool",
            summary="allow bind while an old connection sits in TIME-WAIT",
        ),
        OptionSpec("SO_REUSEPORT", _SOL, socket.SO_REUSEPORT, "bool", summary="let several sockets bind the same port"),
        OptionSpec("SO_KEEPALIVE", _SOL, socket.SO_KEEPALIVE, "bool", summary="probe an idle connection"),
        OptionSpec("SO_LINGER", _SOL, socket.SO_LINGER, "linger", summary="{on, seconds}: {1, 0} makes close send RST"),
        OptionSpec(
            "SO_RCVBUF", _SOL, socket.SO_RCVBUF, "int", summary="receive buffer size (the kernel doubles what is set)"
        ),
        OptionSpec(
            "SO_SNDBUF", _SOL, socket.SO_SNDBUF, "int", summary="send buffer size (the kernel doubles what is set)"
        ),
        OptionSpec(
            "SO_RCVTIMEO", _SOL, socket.SO_RCVTIMEO, "timeval", summary="seconds a blocking read waits before EAGAIN"
        ),
        OptionSpec(
            "SO_SNDTIMEO", _SOL, socket.SO_SNDTIMEO, "timeval", summary="seconds a blocking write waits before EAGAIN"
        ),
        OptionSpec("SO_ERROR", _SOL, socket.SO_ERROR, "errno", readonly=True, summary="pending error (read clears it)"),
        OptionSpec("SO_BROADCAST", _SOL, socket.SO_BROADCAST, "bool", summary="allow sending to a broadcast address"),
        OptionSpec("SO_RCVLOWAT", _SOL, socket.SO_RCVLOWAT, "int", summary="bytes a read waits for"),
        OptionSpec(
            "TCP_NODELAY", _TCP, socket.TCP_NODELAY, "bool", tcp_only=True, summary="turn Nagle's algorithm off"
        ),
        OptionSpec(
            "TCP_CORK", _TCP, socket.TCP_CORK, "bool", tcp_only=True, summary="hold partial segments until uncorked"
        ),
        OptionSpec(
            "TCP_QUICKACK", _TCP, socket.TCP_QUICKACK, "bool", tcp_only=True, summary="ACK at once instead of delaying"
        ),
        OptionSpec(
            "TCP_KEEPIDLE",
            _TCP,
            socket.TCP_KEEPIDLE,
            "int",
            tcp_only=True,
            summary="idle seconds before the first keepalive probe",
        ),
        OptionSpec(
            "TCP_KEEPINTVL",
            _TCP,
            socket.TCP_KEEPINTVL,
            "int",
            tcp_only=True,
            summary="seconds between keepalive probes",
        ),
        OptionSpec(
            "TCP_KEEPCNT",
            _TCP,
            socket.TCP_KEEPCNT,
            "int",
            tcp_only=True,
            summary="unanswered probes before the connection is dead",
        ),
        OptionSpec(
            "TCP_USER_TIMEOUT",
            _TCP,
            socket.TCP_USER_TIMEOUT,
            "int",
            tcp_only=True,
            summary="ms unacknowledged data may wait before ETIMEDOUT",
        ),
        OptionSpec(
            "TCP_SYNCNT",
            _TCP,
            socket.TCP_SYNCNT,
            "int",
            tcp_only=True,
            summary="SYN retransmissions before connect gives up (ETIMEDOUT)",
        ),
        OptionSpec(
            "TCP_INFO",
            _TCP,
            socket.TCP_INFO,
            "tcp_info",
            tcp_only=True,
            readonly=True,
            summary="the kernel's view of the connection: state, rtt, rto, cwnd, retransmits",
        ),
        OptionSpec(
            "SO_MEMINFO",
            _SOL,
            SO_MEMINFO,
            "meminfo",
            readonly=True,
            summary="the kernel's memory accounting for the socket: bytes charged to its buffers, and their caps",
        ),
        OptionSpec(
            "IP_RECVERR",
            int(socket.IPPROTO_IP),
            IP_RECVERR,
            "bool",
            summary="report ICMP errors to an unconnected UDP socket too",
        ),
        OptionSpec(
            "IPV6_RECVERR",
            int(socket.IPPROTO_IPV6),
            IPV6_RECVERR,
            "bool",
            ipv6_only=True,
            summary="IP_RECVERR for an IPv6 socket",
        ),
        OptionSpec(
            "IPV6_V6ONLY",
            int(socket.IPPROTO_IPV6),
            socket.IPV6_V6ONLY,
            "bool",
            ipv6_only=True,
            summary="an IPv6 socket refuses IPv4-mapped peers",
        ),
    )
}

# O_NONBLOCK is a file status flag, not a socket option; it is listed beside
# the options because script.md and the inspector show it with them.
O_NONBLOCK_NAME = "O_NONBLOCK"

SHUT_HOW: dict[str, int] = {
    "SHUT_RD": socket.SHUT_RD,
    "SHUT_WR": socket.SHUT_WR,
    "SHUT_RDWR": socket.SHUT_RDWR,
}

MSG_FLAGS: dict[str, int] = {
    "MSG_NOSIGNAL": int(socket.MSG_NOSIGNAL),
    "MSG_PEEK": int(socket.MSG_PEEK),
    "MSG_DONTWAIT": int(socket.MSG_DONTWAIT),
    "MSG_WAITALL": int(socket.MSG_WAITALL),
    "MSG_OOB": int(socket.MSG_OOB),
    "MSG_MORE": int(socket.MSG_MORE),
    "MSG_TRUNC": int(socket.MSG_TRUNC),
}

WAIT_FLAGS: dict[str, int] = {"WNOHANG": 1, "WUNTRACED": 2}

POLL_EVENTS: dict[str, int] = {
    "POLLIN": select.POLLIN,
    "POLLPRI": select.POLLPRI,
    "POLLOUT": select.POLLOUT,
    "POLLRDHUP": select.POLLRDHUP,
    "POLLERR": select.POLLERR,
    "POLLHUP": select.POLLHUP,
    "POLLNVAL": select.POLLNVAL,
}

FAMILIES: dict[str, int] = {
    "AF_INET": int(socket.AF_INET),
    "AF_INET6": int(socket.AF_INET6),
    "AF_UNIX": int(socket.AF_UNIX),
}
TYPES: dict[str, int] = {"SOCK_STREAM": int(socket.SOCK_STREAM), "SOCK_DGRAM": int(socket.SOCK_DGRAM)}
PROTOCOLS: dict[str, int] = {
    "IPPROTO_TCP": int(socket.IPPROTO_TCP),
    "IPPROTO_UDP": int(socket.IPPROTO_UDP),
    "0": 0,
}
SOCKET_KINDS: dict[str, tuple[int, int]] = {
    "tcp": (int(socket.AF_INET), int(socket.SOCK_STREAM)),
    "udp": (int(socket.AF_INET), int(socket.SOCK_DGRAM)),
    "tcp6": (int(socket.AF_INET6), int(socket.SOCK_STREAM)),
    "udp6": (int(socket.AF_INET6), int(socket.SOCK_DGRAM)),
    "unix": (int(socket.AF_UNIX), int(socket.SOCK_STREAM)),
    "unix_dgram": (int(socket.AF_UNIX), int(socket.SOCK_DGRAM)),
}


def kind_name(family: int, type_: int) -> str:
    """The short name (tcp, udp6, ...) of a family and type, or a C spelling."""
    for name, pair in SOCKET_KINDS.items():
        if pair == (family, type_):
            return name
    fam = next((k for k, v in FAMILIES.items() if v == family), str(family))
    typ = next((k for k, v in TYPES.items() if v == type_), str(type_))
    return f"{fam}, {typ}"


# The resource limits a script can read and set (getrlimit, setrlimit).
RLIMITS: dict[str, int] = {"RLIMIT_NOFILE": 7}  # <asm-generic/resource.h>
RLIM_INFINITY = 2**64 - 1  # as C's rlim_t has it
# accept4's flags (the same numbers socket's type takes).
SOCK_FLAGS: dict[str, int] = {"SOCK_NONBLOCK": int(socket.SOCK_NONBLOCK), "SOCK_CLOEXEC": int(socket.SOCK_CLOEXEC)}
# Descriptors one sendmsg may pass (the kernel's SCM_MAX_FD is 253): recvmsg makes room for this many.
MAX_RIGHTS = 16
# A path an AF_UNIX socket is bound to: a name in the lab's own directory, as long as sun_path allows.
UNIX_PATH_MAX = 107

SIGNALS: dict[str, int] = {
    s.name: int(s)
    for s in _signal.Signals
    if s.name.startswith("SIG") and not s.name.startswith("SIG_") and s.name not in {"SIGIOT", "SIGCLD", "SIGPOLL"}
}
SIGNAL_NAMES: dict[int, str] = {v: k for k, v in SIGNALS.items()}

# What a signal does when its disposition is SIG_DFL (signal(7)).
DEFAULT_IGNORED = {"SIGCHLD", "SIGURG", "SIGWINCH", "SIGCONT"}
UNCATCHABLE = {"SIGKILL", "SIGSTOP"}
STOPPING = {"SIGSTOP", "SIGTSTP", "SIGTTIN", "SIGTTOU"}

DISPOSITIONS = ("SIG_DFL", "SIG_IGN", "catch")

ERRNO_NAMES: dict[int, str] = dict(_errno.errorcode)
# EAGAIN and EWOULDBLOCK share a number; C programmers read EAGAIN first.
ERRNO_NAMES[_errno.EAGAIN] = "EAGAIN"
ERRNO_NAMES[_errno.EDEADLK] = "EDEADLK"
ERRNO_NUMBERS: dict[str, int] = {name: num for num, name in _errno.errorcode.items()}
ERRNO_NUMBERS["EWOULDBLOCK"] = _errno.EAGAIN
ERRNO_NUMBERS["EAGAIN"] = _errno.EAGAIN


def errno_name(number: int) -> str:
    """The symbolic name of an errno number (E123 if it has none)."""
    return ERRNO_NAMES.get(number, f"E{number}")


def same_errno(a: str, b: str) -> bool:
    """Whether two errno names denote the same number (EAGAIN is EWOULDBLOCK)."""
    return a == b or (a in ERRNO_NUMBERS and ERRNO_NUMBERS.get(a) == ERRNO_NUMBERS.get(b))


# TCP_INFO fields the Inspector shows (and the periodic inspection keeps); the others (timers since the
# last data...) change every millisecond.
TCP_SHOWN = ("rtt", "snd_cwnd", "unacked", "total_retrans")

TCP_STATES: dict[int, str] = {
    1: "ESTABLISHED",
    2: "SYN-SENT",
    3: "SYN-RECV",
    4: "FIN-WAIT-1",
    5: "FIN-WAIT-2",
    6: "TIME-WAIT",
    7: "CLOSED",
    8: "CLOSE-WAIT",
    9: "LAST-ACK",
    10: "LISTEN",
    11: "CLOSING",
    12: "NEW-SYN-RECV",
}

# What `state PROC STATE` can say of a process, from the state letter in /proc/PID/stat:
# running (R, S, D, ...: alive, on a CPU or asleep in a call), stopped (T, t), zombie (Z: ended,
# not yet reaped by its parent's wait), exited (reaped: no /proc entry any more).
PROCESS_STATES = ("running", "stopped", "zombie", "exited")

# Upper bounds that keep untrusted scripts from exhausting memory.
MAX_DATA_BYTES = 64 * 1024 * 1024
MAX_READ_BYTES = 64 * 1024 * 1024
MAX_SLEEP_SECONDS = 3600.0
MAX_LINE_CHARS = 1024 * 1024
MAX_SCRIPT_BYTES = 64 * 1024 * 1024
# The data a script's lines state, added up (kept as runs, built one call at a time): `--max-data` raises it.
MAX_SCRIPT_DATA = 256 * 1024 * 1024

# How long a script's step may block before `run` and `replay --check` call it stuck.
DEFAULT_STEP_TIMEOUT = 10.0

# The languages a lesson's prose is written in (`#en`, `#zh`), the first being the default.
LANGUAGES = ("en", "zh")
DEFAULT_LANGUAGE = "en"
