"""A traced program's sockets, first-class and read-only: named, labelled on the wire, shown with the kernel's view.

Its calls say which of its descriptors are sockets and when each is made, bound, connected,
accepted and closed (strace's -y gives each one's inode: `3<socket:[7]>`); the kernel says the
rest, read from a copy of the descriptor (pidfd_getfd) checked to be that inode: a socket's ends
(getsockname, getpeername) after a successful bind, listen, connect or accept, and, for the Lab
pane, its state, queues and options, as the inspector reads a lab process's. Nothing is ever done
to the program's sockets: a copy is only read, then closed at once. (One read after its call has
returned: a socket the program closed already is not found; an accepted one then takes its ends
from the call's `from ADDRESS` and the packets its peer sent to the listener's port.)

A socket is named by the program's descriptor number, as its observed lines write it: `web.4`
is the socket `#> web: accept4(3, ...) = 4 ...` returned. That is the name its packets carry on
the wire and in the ladder, its column's name, and its node in the Lab pane; a `~` line names it
by its process (`~ web > server.a FIN`), as for any socket of a process.
"""

from __future__ import annotations

import ctypes
import itertools
import os
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass

from playground.constants import TCP_STATES
from playground.lab_labels import Endpoint, PacketLabels
from playground.lab_process import Process
from playground.outside.strace_lines import Observation
from playground.outside.strace_text import split_top
from playground.script.model import Address
from playground.sockdiag import KernelSocket

# Calls whose success says where a socket is: after them its ends are read from the kernel.
ENDS_CALLS = frozenset({"bind", "listen", "connect", "accept", "accept4"})
DEFINING_CALLS = frozenset({"socket", "accept", "accept4", "dup", "dup2", "dup3"})
NO_FD_CALLS = frozenset(
    "socket socketpair poll ppoll select pselect6 epoll_create epoll_create1 clone clone3 fork vfork".split()
)
MAX_SHOWN = 256  # sockets shown per program in the Lab pane (a traced browser may hold thousands)
_STATE_NUMBERS = {name: number for number, name in TCP_STATES.items()}
_FROM = re.compile(r" from (\[[0-9a-fA-F:.]+\]:[0-9]+|[0-9.]+:[0-9]+)")
_SYS_PIDFD_GETFD = 438  # the same number on every architecture (a new-style syscall)

_libc = ctypes.CDLL(None, use_errno=True)


@dataclass(frozen=True)
class CallFacts:
    """What one observed call says of the program's sockets, for the ladder (CallObserved's fields)."""

    name: str = ""
    fds: tuple[int, ...] = ()  # the descriptors it acts on
    defines: int | None = None  # the descriptor it returned (socket, accept, dup)
    local: Endpoint | None = None
    peer: Endpoint | None = None

    def fields(self) -> dict:
        return {"name": self.name, "fds": self.fds, "defines": self.defines, "local": self.local, "peer": self.peer}


def call_facts(name: str, text: str) -> tuple[tuple[int, ...], int | None, str]:
    """The descriptor a call acts on, the one it returned, and its outcome text, from its observed text."""
    args, after = split_top(text[len(name) + 1 :])
    return facts_written(name, args, after.strip())


def facts_written(
    name: str, args: list[str] | tuple[str, ...], outcome: str
) -> tuple[tuple[int, ...], int | None, str]:
    """call_facts from a call's arguments and outcome as its text writes them (the reader hands them over)."""
    fds: tuple[int, ...] = ()
    if name not in NO_FD_CALLS and args and args[0].lstrip("-").isdigit():
        fds = (int(args[0]),)
    defines = None
    value = outcome.removeprefix("= ").split(" ", 1)[0]
    if name in DEFINING_CALLS and outcome.startswith("= ") and value.isdigit():
        defines = int(value)
    return fds, defines, outcome


class ObservedSockets:
    """One traced program's sockets: its descriptors' inodes (per process it started), their ends, their labels."""

    def __init__(self, process: Process, labels: PacketLabels) -> None:
        self.process = process
        self.labels = labels
        self.inodes: dict[tuple[int, int], int] = {}  # (pid, descriptor) -> its socket's inode

    def learn(self, seen: Observation, actor: str) -> CallFacts:
        """Take one returned call of `actor` (`web`, or `web[PID]` for a process it started)."""
        if seen.kind != "call" or seen.pending or not seen.name:
            return CallFacts()
        name = seen.name
        if seen.outcome is not None:  # as the reader wrote its text (call_facts would read the same from it)
            fds, defines, outcome = facts_written(name, seen.args, seen.outcome)
        else:
            fds, defines, outcome = call_facts(name, seen.text)
        for fd, inode in seen.inodes:
            self.inodes[(seen.pid, fd)] = inode
        if name == "close" and fds and outcome == "= 0":
            self.inodes.pop((seen.pid, fds[0]), None)
        failed = outcome.startswith("= -1") and "EINPROGRESS" not in outcome
        subject = defines if name in ("accept", "accept4") else (fds[0] if fds else None)
        if name not in ENDS_CALLS or failed or subject is None or self.labels.capture is None:
            return CallFacts(name, fds, defines)
        known = self.inodes.get((seen.pid, subject))
        ends = socket_ends(seen.pid, subject, known) if known else None
        if ends is None and name in ("accept", "accept4") and fds:
            ends = self._accepted_ends(fds[0], outcome)  # closed already (HTTP/1.0): from its listener and peer
        if ends is None:
            return CallFacts(name, fds, defines)
        local, peer = ends
        self._label(actor, subject, local, peer)
        return CallFacts(name, fds, defines, local, peer)

    def _accepted_ends(self, listener: int, outcome: str) -> tuple[Endpoint, Endpoint] | None:
        """An accepted socket already closed: its peer is in the outcome (`from 127.0.0.1:40312`), its local
        address is where the peer's packets went (the listener's port), or the listener's own address."""
        found = _FROM.search(outcome)
        bound = self.process.addresses.get(str(listener))
        if found is None or bound is None:
            return None
        host, _, port = found.group(1).rpartition(":")
        peer = (host.strip("[]"), int(port))
        for packet in itertools.islice(reversed(self.labels.packets), 512):
            if packet.src == peer and packet.dst[1] == bound.port:
                return packet.dst, peer
        if bound.host in ("0.0.0.0", "::"):
            return None
        return (bound.host, bound.port), peer

    def _label(self, actor: str, fd: int, local: Endpoint, peer: Endpoint | None) -> None:
        """Name the socket's packets `actor.fd`: a connection by its two ends, a bound socket by its address."""
        labels = self.labels
        label = f"{actor}.{fd}"
        labels.note_port(local)
        if peer is not None:
            labels.owners[(local, peer)] = (self.process.name, label)
        elif actor == self.process.name:  # bound or listening: its port names its packets (as a lab socket's)
            self.process.addresses[str(fd)] = Address(local[0], local[1])
            labels.note_address(self.process.name, str(fd), local[1])
        if labels.packets:
            labels.relabel_recent(local, peer)


def socket_ends(pid: int, fd: int, inode: int) -> tuple[Endpoint, Endpoint | None] | None:
    """An IP socket's local and peer addresses, read from a copy of the process's descriptor (if it still holds
    that socket: the inode strace named); None where it cannot be read."""
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        return None
    try:
        copy = pidfd_getfd(pidfd, fd)
    except OSError:
        return None
    finally:
        os.close(pidfd)
    try:
        if os.fstat(copy).st_ino != inode:
            return None  # closed, and the number given to another meanwhile
        sock = socket.socket(fileno=copy)
        try:
            if sock.family not in (socket.AF_INET, socket.AF_INET6):
                return None
            local = sock.getsockname()[:2]
            try:
                peer: Endpoint | None = sock.getpeername()[:2]
            except OSError:
                peer = None
        finally:
            sock.detach()
    except OSError:
        return None
    finally:
        os.close(copy)
    if local[1] == 0:
        return None  # not bound yet
    return (local[0], local[1]), (peer[0], peer[1]) if peer is not None else None


# The Lab pane's view: the kernel's, read without touching the program.


def pidfd_getfd(pidfd: int, fd: int) -> int:
    """A copy of another process's descriptor (Linux 5.6; needs the right to ptrace it)."""
    copy = _libc.syscall(_SYS_PIDFD_GETFD, ctypes.c_int(pidfd), ctypes.c_int(fd), ctypes.c_uint(0))
    if copy < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return int(copy)


def socket_descriptors(pid: int) -> list[tuple[int, int]]:
    """(descriptor, inode) of each socket a process holds, from /proc/PID/fd."""
    try:
        entries = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return []
    out = []
    for entry in entries:
        try:
            link = os.readlink(f"/proc/{pid}/fd/{entry}")
        except OSError:
            continue  # closed meanwhile
        if link.startswith("socket:[") and entry.isdigit():
            out.append((int(entry), int(link[8:-1])))
    return sorted(out)


def program_snapshot(proc: Process, kernel: Callable[[], list[KernelSocket]]) -> list[dict]:
    """The kernel's view of an outside program's sockets, in the shape a lab process's snapshot has.

    Each descriptor is copied (pidfd_getfd), read as a lab process's is, and closed at once; where
    it cannot be copied (a process strace attached to, which is not ours), sock_diag's view is
    shown: state, ends and queues, no options.
    """
    from playground.worker.snapshot import inspect_socket  # ctypes' libc: loaded only when a program runs

    by_inode: dict[int, KernelSocket] | None = None  # the kernel's list: read only if a descriptor cannot be copied
    out: list[dict] = []
    for fd, inode in socket_descriptors(proc.pid)[:MAX_SHOWN]:
        info = None
        if proc.pidfd is not None:
            try:
                copy = pidfd_getfd(proc.pidfd, fd)
            except OSError:
                copy = -1
            if copy >= 0:
                try:
                    info = inspect_socket(copy)
                finally:
                    os.close(copy)
        if info is not None and info.get("ino") != inode:
            info = None  # the descriptor was closed and its number given to another meanwhile
        if info is None:
            if by_inode is None:
                by_inode = {sock.inode: sock for sock in kernel() if sock.inode}
            info = _from_kernel(fd, inode, by_inode.get(inode))
        if info is not None:
            info["fd"] = fd
            info["observed"] = True
            out.append(info)
    return out


def _from_kernel(fd: int, inode: int, sock: KernelSocket | None) -> dict | None:
    if sock is None:
        return None
    state = _STATE_NUMBERS.get(sock.state)
    return {
        "fd": fd,
        "socket": True,
        "ino": inode,
        "family": sock.family,
        "type": 1,  # sock_diag's list is TCP's
        "listening": sock.state == "LISTEN",
        "local": list(sock.local),
        "peer": list(sock.peer) if sock.peer[1] else None,
        "state": state,
        "tcp": sock.info or None,
        "inq": None if sock.state == "LISTEN" else sock.rqueue,
        "outq": None if sock.state == "LISTEN" else sock.wqueue,
        "options": {},
    }
