"""A lab process as the lab sees it, and a call sent to one."""

from __future__ import annotations

import asyncio
import socket
from collections import deque
from dataclasses import dataclass, field

from playground import protocol
from playground.constants import DEFAULT_IGNORED, STOPPING
from playground.script.model import Address, Death, Node


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
    names: dict[str, int] = field(default_factory=dict)  # socket variables -> fd
    inodes: dict[str, int] = field(default_factory=dict)  # socket variables -> the socket's inode
    addresses: dict[str, Address] = field(default_factory=dict)  # variable -> last bound address
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
    # A thread actor (`thread NAME in PROC`): its process, whose names, dispositions, children,
    # calls in flight and channel it shares (the same objects); its own TID and blocked calls.
    thread_of: Process | None = None
    tid: int | None = None

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

    def var_for(self, fd: int) -> str | None:
        """The name most recently given to this descriptor (an older name may still hold its number)."""
        found = None
        for var, number in self.names.items():
            if number == fd:
                found = var
        return found

    def disposition(self, signame: str) -> str:
        return self.dispositions.get(signame, "SIG_DFL")

    def fatal(self, signame: str) -> bool:
        """Whether this signal, sent now, ends the process."""
        if signame == "SIGKILL":
            return True
        disp = self.disposition(signame)
        return disp == "SIG_DFL" and signame not in DEFAULT_IGNORED and signame not in STOPPING
