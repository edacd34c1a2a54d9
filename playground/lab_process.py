"""A lab process as the lab sees it, and a call sent to one."""

from __future__ import annotations

import asyncio
import socket
from collections import deque
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from playground import protocol
from playground.constants import DEFAULT_IGNORED, STOPPING
from playground.fd_column import FdColumn, address_column, inode_column
from playground.lab_names import Names
from playground.script.model import Address, Death, Node, UnixAddress

if TYPE_CHECKING:
    from playground.remote.link import RemoteProcess


@dataclass
class CallHandle:
    """A call sent to a process: its future resolves to the CallResult."""

    call_id: int
    process: Process
    node: Node | None  # None for an inspection, which runs no script line
    text: str
    future: asyncio.Future
    sent_ns: int
    pending: bool = False
    stated: bool = False  # a `...` completion line has claimed this outcome
    timer: asyncio.TimerHandle | None = None
    fd: int | None = None  # the descriptor the call acts on, if any


@dataclass
class Process:
    """A lab process as the lab sees it."""

    name: str
    pid: int
    parent: Process | None = None
    names: MutableMapping[str, int] = field(default_factory=Names)  # socket variables -> fd
    inodes: MutableMapping[str, int] = field(default_factory=dict)  # socket variables -> the socket's inode
    addresses: MutableMapping[str, Address] = field(default_factory=dict)  # variable -> last bound address
    paths: dict[str, UnixAddress] = field(default_factory=dict)  # AF_UNIX variable -> its path (bound or connected)
    children: dict[str, Process] = field(default_factory=dict)
    dispositions: dict[str, str] = field(default_factory=dict)
    death: Death | None = None
    zombie: bool = False
    reaped: bool = False
    channel: socket.socket | None = None
    pidfd: int | None = None
    inflight: dict[int, CallHandle] = field(default_factory=dict)
    blocked: deque[CallHandle] = field(default_factory=deque)
    frames: protocol.FrameBuffer = field(default_factory=protocol.FrameBuffer)
    fd_queue: deque[int] = field(default_factory=deque)
    outbox: deque[memoryview] = field(default_factory=deque)  # frames the channel could not take yet
    hello: asyncio.Future | None = None
    exit_request: int | None = None  # the status of an exit() call in progress
    host: str | None = None  # the network lab's host it runs on (`spawn NAME on HOST`; forks stay there)
    data: dict[str, bytes] = field(default_factory=dict)  # data names: the bytes `d = read(a, 100)` read
    data_bytes: int = 0  # what the data names hold together
    closed: set[str] = field(default_factory=set)  # names whose descriptor was closed (and not named again)
    # A thread actor (`thread NAME in PROC`): its process, whose names, dispositions, children,
    # calls in flight and channel it shares (the same objects); its own TID and blocked calls.
    thread_of: Process | None = None
    tid: int | None = None
    outside: bool = False  # an outside program (`spawn NAME exec ...`): no channel, no steps
    remote: RemoteProcess | None = None  # on a remote host: signalled and watched through its link, never by pid here

    @property
    def alive(self) -> bool:
        if self.thread_of is not None:  # (a thread's death: its pthread_exit)
            return self.death is None and self.thread_of.alive
        return self.death is None

    @property
    def state(self) -> str:
        if self.thread_of is not None and self.death is not None:
            return f"a thread that has ended (pthread_exit: {self.death})"
        if self.thread_of is not None:
            return f"a thread of {self.thread_of.name}, which is {self.thread_of.state}"
        if self.death is None:
            return "running"
        if self.zombie:
            return "zombie"
        return str(self.death)

    def __post_init__(self) -> None:
        if not isinstance(self.names, Names):  # a fork's child starts from a copy of its parent's
            self.names = Names(self.names)
        # Kept by descriptor (fd_column): a thread's are its process's own (the same objects).
        if not isinstance(self.inodes, FdColumn):
            self.inodes = inode_column(self.names, self.inodes)
        if not isinstance(self.addresses, FdColumn):
            self.addresses = address_column(self.names, self.addresses)

    def var_for(self, fd: int) -> str | None:
        """The name most recently given to this descriptor (an older name may still hold its number)."""
        # A thread's names are its process's (the same Names): one index for both.
        names = self.names
        return names.newest(fd) if isinstance(names, Names) else None

    def disposition(self, signame: str) -> str:
        return self.dispositions.get(signame, "SIG_DFL")

    def fatal(self, signame: str) -> bool:
        """Whether this signal, sent now, ends the process."""
        if signame == "SIGKILL":
            return True
        disp = self.disposition(signame)
        return disp == "SIG_DFL" and signame not in DEFAULT_IGNORED and signame not in STOPPING
