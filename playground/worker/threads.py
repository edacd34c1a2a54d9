"""Thread actors: long-lived pthreads of a lab process, each making its own actor's calls in order.

A script's `thread NAME in PROC` starts one. Its calls come through the process's
channel like any other, tagged with the thread's name, and the reader hands them
to the thread's queue, so a call that blocks holds that thread alone, as in C.
Like every thread of a lab process, an actor thread waits with every signal
blocked and unblocks them only while inside a call (Worker._call): a
process-directed signal goes to one of the threads inside a call (the kernel
picks which), and a thread-directed one (tgkill) interrupts that thread's call.
One sent to a thread waiting between calls stays pending on it (the kernel gives
a thread-directed signal to no other thread) until sockplay, having sent it, asks
the thread to take its signals: it unblocks them for a moment, as a C thread that
blocks none would have taken it at once.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import queue
import signal
import threading
import time
from typing import TYPE_CHECKING

from playground.worker import libc

if TYPE_CHECKING:  # a subscripted collections.abc name is evaluated: Python 3.8 (a remote host's) has no such thing
    from collections.abc import Callable

    MakeCall = Callable[[int, str, list], None]
    TakeSignals = Callable[[], None]

_PR_SET_NAME = 15
# How long a new thread may take to start before the process says it could not.
START_TIMEOUT = 5.0
# The kernel keeps 15 bytes of a thread's name (its comm, as ps -L and /proc show it).
_COMM_BYTES = 15


class ActorThread:
    """One thread actor: a pthread with its own TID that makes its calls one after another."""

    def __init__(self, name: str, make_call: MakeCall) -> None:
        self.name = name
        self.tid = 0
        self.ident = 0  # its pthread_t, for pthread_kill
        self.directed: list[int] = []  # caught signals sent to this thread alone, not yet reported
        self.ending = False  # its pthread_exit is made: the thread ends once it has reported it
        self._work: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._make_call = make_call
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> bool:
        """Start the thread (it inherits the caller's mask: every signal blocked); whether it came up."""
        self._thread.start()
        return self._started.wait(START_TIMEOUT)

    def submit(self, request_id: int, name: str, args: list) -> None:
        """Queue a call: the thread makes it after the calls queued before it."""
        self._work.put(functools.partial(self._make_call, request_id, name, args))

    def take_signals(self, take: TakeSignals) -> None:
        """After the calls queued so far, let the signals pending on this thread arrive."""
        self._work.put(take)

    def _run(self) -> None:
        libc.pthread_sigmask(libc.SIG_BLOCK, libc.full_sigset(), None)
        self.tid = threading.get_native_id()
        self.ident = threading.get_ident()
        # Named as the script names it, so `ps -L` and /proc/PID/task show which thread is which.
        comm = self.name.encode()[:_COMM_BYTES]
        libc.libc.prctl(_PR_SET_NAME, ctypes.c_char_p(comm), 0, 0, 0)
        self._started.set()
        while not self.ending:
            self._work.get()()


class ActorThreads:
    """The thread actors of one lab process, by name."""

    def __init__(self, make_call: MakeCall, take_signals: TakeSignals) -> None:
        self._make_call = make_call
        self._take_signals = take_signals
        self._threads: dict[str, ActorThread] = {}
        self._by_ident: dict[int, ActorThread] = {}

    def start(self, name: object) -> dict | str:
        """Start a thread actor: its result ({"tid": ...}), or what is wrong."""
        if not isinstance(name, str) or not name:
            return "a thread needs a name"
        if name in self._threads:
            return f"this process already has a thread named {name!r}"
        actor = ActorThread(name, self._make_call)
        try:
            started = actor.start()
        except RuntimeError as exc:  # the kernel would not make another thread (EAGAIN)
            return f"cannot start a thread: {exc}"
        if not started:
            return f"the thread did not start within {START_TIMEOUT:g} s"
        self._threads[name] = actor
        self._by_ident[actor.ident] = actor
        return {"tid": actor.tid}

    def route(self, thread: str, request_id: int, name: str, args: list) -> bool:
        """Hand a call to its thread; False if this process has no thread of that name."""
        actor = self._threads.get(thread)
        if actor is None:
            return False
        actor.submit(request_id, name, args)
        return True

    def take_signals(self, thread: str) -> bool:
        """Have a thread take the signals sent to it (after its queued calls); False if there is none such."""
        actor = self._threads.get(thread)
        if actor is None:
            return False
        actor.take_signals(self._take_signals)
        return True

    def directed(self, thread: str) -> list[int] | None:
        """The signals sent to that thread alone and not yet reported (None: no such thread)."""
        actor = self._threads.get(thread)
        return None if actor is None else actor.directed

    def directed_here(self) -> list[int] | None:
        """directed() of the calling thread, if it is a thread actor."""
        actor = self._by_ident.get(threading.get_ident())
        return None if actor is None else actor.directed

    def signal(self, thread: str, signum: int) -> None:
        """Send a signal to that thread alone, as pthread_kill (tgkill) does."""
        actor = self._threads.get(thread)
        if actor is not None:
            try:
                signal.pthread_kill(actor.ident, signum)
            except (OSError, ValueError):  # not a signal: the lab sends only valid ones
                pass

    def end_here(self, value: int) -> dict:
        """pthread_exit in the calling thread: it ends once the result is sent (a process's own actor cannot)."""
        start = time.monotonic_ns()
        actor = self._by_ident.get(threading.get_ident())
        if actor is None:  # (the lab sends pthread_exit to thread actors only)
            return {"ret": -1, "errno": errno.EINVAL, "start": start, "dur": 0}
        actor.ending = True
        self._threads.pop(actor.name, None)
        self._by_ident.pop(actor.ident, None)
        return {"ret": 0, "value": value, "start": start, "dur": time.monotonic_ns() - start}
