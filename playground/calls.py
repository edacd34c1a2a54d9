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


@dataclass(frozen=True)
class CallSpec:
    """A call's parameters: those always given, then the optional ones."""

    name: str
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    variadic: str | None = None  # writev's DATA, DATA, ...
    defines: str | None = None  # "fd" or "process": what `VAR =` names
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
        CallSpec("poll", (FD, EVENTS, TIMEOUT), summary="wait for readiness: poll(fd, POLLIN|POLLOUT, ms)"),
        CallSpec("signal", (SIGNAL, DISPOSITION), summary="signal(SIGPIPE, SIG_IGN | SIG_DFL | catch)"),
        CallSpec("fork", (), defines="process", summary="clone the process; the child is named by the variable"),
        CallSpec("waitpid", (PID,), (WAITFLAGS,), summary="reap a child: waitpid(-1, WNOHANG)"),
        CallSpec("exit", (STATUS,), summary="end the process with a status"),
        CallSpec("pthread_exit", (STATUS,), summary="end the calling thread (a thread actor), its value STATUS"),
    )
}
