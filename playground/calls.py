"""The calls a step can make and the kinds of arguments each one takes."""

from __future__ import annotations

from dataclasses import dataclass

# Parameter kinds, checked by the parser and resolved by the lab.
FD = "fd"  # a variable naming a descriptor, or its number
SIZE = "size"
DATA = "data"
ADDR = "addr"
KIND = "kind"
OPTION = "option"
OPTVAL = "optval"
HOW = "how"
MSGFLAGS = "msgflags"
EVENTS = "events"
TIMEOUT = "timeout"
SIGNAL = "signal"
DISPOSITION = "disposition"
PID = "pid"
WAITFLAGS = "waitflags"
STATUS = "status"
BACKLOG = "backlog"
NONBLOCK = "nonblock"
BIT = "bit"
FDSET = "fdset"  # a descriptor, a set of them `{a, b}`, or a family `c[*]`
EPOLLOP = "epollop"
EPOLLEVENTS = "epollevents"
EPOLLFLAGS = "epollflags"
MAXEVENTS = "maxevents"
# The calls whose `VAR =` names the bytes they read (`d = read(a, 100)`), for a later write(b, d).
NAMES_DATA = frozenset({"read", "recv", "recvfrom"})
RESOURCE = "resource"  # RLIMIT_NOFILE
LIMITS = "limits"  # {soft, hard}
SOCKFLAGS = "sockflags"  # SOCK_NONBLOCK|SOCK_CLOEXEC


@dataclass(frozen=True)
class CallSpec:
    """A call's parameters: those always given, then the optional ones."""

    name: str
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    variadic: str | None = None  # writev's DATA, DATA, ...
    defines: str | None = None  # "fd" or "process": what `VAR =` names
    names: int = 1  # how many names `VAR, VAR =` may give (socketpair's two, recvmsg's descriptors)
    summary: str = ""

    @property
    def usage(self) -> str:
        parts = [p.upper() for p in self.required]
        parts += [f"[{p.upper()}]" for p in self.optional]
        if self.variadic:
            parts.append(f"{self.variadic.upper()}, ...")
        return f"{self.name}({', '.join(parts)})"


CALLS: dict[str, CallSpec] = {
    spec.name: spec
    for spec in (
        CallSpec(
            "socket",
            (KIND,),
            defines="fd",
            summary="create a socket: socket(tcp), socket(udp6), socket(AF_INET, SOCK_STREAM)",
        ),
        CallSpec("setsockopt", (FD, OPTION, OPTVAL), summary="set an option"),
        CallSpec("getsockopt", (FD, OPTION), summary="read an option's value"),
        CallSpec(
            "fcntl", (FD, NONBLOCK), (BIT,), summary="fcntl(fd, O_NONBLOCK, 1) sets the flag; without a value reads it"
        ),
        CallSpec("bind", (FD, ADDR), summary="give the socket a local address"),
        CallSpec("listen", (FD,), (BACKLOG,), summary="accept connections (backlog defaults to 128)"),
        CallSpec("accept", (FD,), defines="fd", summary="take a connection from the queue"),
        CallSpec("connect", (FD, ADDR), summary="connect to an address"),
        CallSpec("getsockname", (FD,), summary="the local address"),
        CallSpec("getpeername", (FD,), summary="the peer's address"),
        CallSpec("read", (FD, SIZE), summary="read up to SIZE bytes"),
        CallSpec("recv", (FD, SIZE), (MSGFLAGS,), summary="read with flags"),
        CallSpec("recvfrom", (FD, SIZE), (MSGFLAGS,), summary="read a datagram and its source"),
        CallSpec("write", (FD, DATA), summary="write bytes"),
        CallSpec("send", (FD, DATA), (MSGFLAGS,), summary="write with flags"),
        CallSpec("sendto", (FD, DATA, ADDR), (MSGFLAGS,), summary="send a datagram to an address"),
        CallSpec("writev", (FD, DATA), variadic=DATA, summary="write several buffers in one call"),
        CallSpec("shutdown", (FD, HOW), summary="close one direction: SHUT_RD, SHUT_WR or SHUT_RDWR"),
        CallSpec("close", (FD,), summary="release the descriptor"),
        CallSpec("dup", (FD,), defines="fd", summary="a second descriptor for the same socket"),
        CallSpec(
            "poll", (FDSET, EVENTS, TIMEOUT), summary="wait for readiness: poll(fd or {a, b}, POLLIN|POLLOUT, ms)"
        ),
        CallSpec("signal", (SIGNAL, DISPOSITION), summary="signal(SIGPIPE, SIG_IGN | SIG_DFL | catch)"),
        CallSpec("fork", (), defines="process", summary="clone the process; the child is named by the variable"),
        CallSpec("waitpid", (PID,), (WAITFLAGS,), summary="reap a child: waitpid(-1, WNOHANG)"),
        CallSpec("exit", (STATUS,), summary="end the process with a status"),
        CallSpec("select", (FDSET, FDSET, TIMEOUT), summary="wait for readiness: select({a, b}, {c}, ms)"),
        CallSpec("epoll_create1", (EPOLLFLAGS,), defines="fd", summary="a new epoll instance: epoll_create1(0)"),
        CallSpec(
            "epoll_ctl",
            (FD, EPOLLOP, FD),
            (EPOLLEVENTS,),
            summary="epoll_ctl(ep, EPOLL_CTL_ADD|EPOLL_CTL_MOD|EPOLL_CTL_DEL, fd, EPOLLIN|EPOLLET)",
        ),
        CallSpec("epoll_wait", (FD, MAXEVENTS, TIMEOUT), summary="wait for events: epoll_wait(ep, 64, ms)"),
        CallSpec("pthread_exit", (STATUS,), summary="end the calling thread (a thread actor), its value STATUS"),
    )
}

# Issue 13's calls the course uses beyond the first set (the descriptor limit, AF_UNIX, descriptor passing).
CALLS.update(
    (spec.name, spec)
    for spec in (
        CallSpec("getrlimit", (RESOURCE,), summary="the limit's {soft, hard}: getrlimit(RLIMIT_NOFILE)"),
        CallSpec("setrlimit", (RESOURCE, LIMITS), summary="setrlimit(RLIMIT_NOFILE, {soft, hard})"),
        CallSpec(
            "socketpair",
            (KIND,),
            defines="fd",
            names=2,
            summary="two connected AF_UNIX sockets: a, b = socketpair(unix)",
        ),
        CallSpec("readv", (FD, SIZE), variadic=SIZE, summary="read into several buffers: readv(fd, SIZE, SIZE, ...)"),
        CallSpec(
            "accept4",
            (FD,),
            (SOCKFLAGS,),
            defines="fd",
            summary="accept with SOCK_NONBLOCK|SOCK_CLOEXEC set on the new socket",
        ),
        CallSpec(
            "sendmsg",
            (FD, DATA),
            variadic=FD,
            summary="send data, passing descriptors (SCM_RIGHTS): sendmsg(u, DATA, FD, ...)",
        ),
        CallSpec(
            "recvmsg",
            (FD, SIZE),
            defines="fd",
            names=16,
            summary="receive data and passed descriptors, named: f = recvmsg(u, 100)",
        ),
    )
)
