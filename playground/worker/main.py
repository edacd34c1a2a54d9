"""A lab process: makes the calls it is sent, in threads, and looks like a small C program.

Its own machinery (the control channel, two pipes and a spare channel for the
next fork) sits above the open-file limit the shell gave (see _machinery_floor),
so the sockets it makes get 3, 4, ... as they would in C, and to the script it
does not exist: a call on one of its numbers acts on a closed number (EBADF). Every thread blocks every signal except
while it is inside a call (so a signal interrupts the call it arrived
during, as in a one-threaded C program), and one thread waits with signals
unblocked while no call is running (so a signal that arrives between steps
is delivered at once). Signals are caught by CPython's own C-level handler,
which writes each signal's number to a pipe at delivery; reading that pipe
around each call tells which signals arrived during it.

A script's thread actors (`thread NAME in PROC`) are threads of their own
(playground.worker.threads): the reader hands each of their calls to that
thread, which makes them in order, under the same signal rules.
"""

from __future__ import annotations

import array
import ctypes
import errno
import fcntl
import os
import queue
import resource
import signal
import socket
import sys
import threading
import warnings
from collections.abc import Callable

from playground import protocol
from playground.worker import lab_dir, libc
from playground.worker.fdset import FdSet
from playground.worker.limits import set_limit
from playground.worker.more_syscalls import MORE_SYSCALLS
from playground.worker.readiness import NO_FIRST_FD, READINESS_CALLS, script_args
from playground.worker.snapshot import inspect_fds
from playground.worker.snapshot_delta import DeltaInspector, high_epoll
from playground.worker.syscalls import SYSCALLS, local_address, now
from playground.worker.threads import ActorThreads

SYSCALLS.update(MORE_SYSCALLS)

MACHINERY_SPAN = 32
# Signals a lab process can catch; SIGKILL and SIGSTOP cannot be.
CATCHABLE = [s for s in range(1, signal.NSIG) if s not in (signal.SIGKILL, signal.SIGSTOP, 32, 33)]
MONITOR_TICK_NS = 3_000_000
# With no call in progress for this long, the monitor waits longer between ticks (a signal
# still wakes it at once, and the next call wakes it through a pipe): an idle lab process
# then costs next to no CPU.
DOZE_AFTER_NS = 200_000_000
TRIM_AFTER_NS = 1_000_000_000  # calls stopped this long: the C heap's free memory goes back
DOZE_TICK_NS = 250_000_000
# How long the reader polls for the next request before sleeping: a wake-up
# costs tens of microseconds on a VM, far more than a step's own work.
SPIN_NS = 300_000
# Calls after which the socket's local address is reported (the kernel may have picked it).
_BINDING_CALLS = {"bind", "listen", "connect", "send", "sendto"}
# Calls whose first argument is not a descriptor; every other call's is.
_NO_FD_CALLS = {"socket", "signal", "fork", "waitpid", "exit", "getrlimit", "setrlimit", "socketpair", "pthread_exit"}
# Calls that make new descriptors beyond their return value (the script's, as socket's are).
_MORE_FDS = {"socketpair": "value", "recvmsg": "rights"}
# A number no process can have open (the kernel's fs.nr_open ceiling is far below it): a call
# given a descriptor that is not the script's is made on it, so the kernel answers exactly as
# for a closed number (EBADF; POLLNVAL for poll).
CLOSED_FD = 2**31 - 1

warnings.filterwarnings("ignore", category=DeprecationWarning)


def _machinery_floor() -> int:
    """The lowest number the machinery may take.

    Above the open-file limit the shell gave when the hard limit leaves room: the
    kernel keeps a descriptor above a lowered soft limit, so the machinery steals
    nothing a C program would have (every number below the limit is the script's,
    and EMFILE comes where it would in C). Where the hard limit equals the soft one,
    the machinery takes its few descriptors (7, and 8 once the periodic inspection's
    epoll set is made) just below the limit: a C program could open that many more
    descriptors than a lab process before EMFILE.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard >= soft + MACHINERY_SPAN:
        return soft
    return soft - MACHINERY_SPAN


def _to_high(fd: int, floor: int) -> int:
    """Move a descriptor to the lowest free number from floor up (closing the original)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # F_DUPFD takes no number at or above the soft limit: raise it for the move alone.
    raised = floor + MACHINERY_SPAN > soft
    if raised:
        resource.setrlimit(resource.RLIMIT_NOFILE, (floor + MACHINERY_SPAN, hard))
    try:
        high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, floor)
    finally:
        if raised:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    os.close(fd)
    return high


def _machinery_pair(floor: int, make: Callable[[], tuple[int, int]]) -> tuple[int, int]:
    """A pair of descriptors (a pipe, a socketpair) on machinery numbers.

    Made with the limit raised for a moment where the machinery has its own room above
    the script's limit, so a script that has used every descriptor it may can still fork.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    raised = floor >= soft
    if raised:
        resource.setrlimit(resource.RLIMIT_NOFILE, (floor + MACHINERY_SPAN, hard))
    try:
        a, b = make()
    finally:
        if raised:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return _to_high(a, floor), _to_high(b, floor)


def _socketpair() -> tuple[int, int]:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    return a.detach(), b.detach()


def _block_all() -> None:
    libc.pthread_sigmask(libc.SIG_BLOCK, libc.full_sigset(), None)


_FULL = None
_EMPTY = None


class SignalLog:
    """Every caught signal in order of delivery, read from CPython's wakeup pipe."""

    def __init__(self, read_fd: int) -> None:
        self.read_fd = read_fd
        self.lock = threading.Lock()
        self.log: list[int] = []
        self.claimed: set[int] = set()  # indices in log already reported with a call or as idle
        self.reserved: dict[int, int] = {}  # signals sent to one thread actor (tkill): that thread reports them

    def claim(self, first: int, last: int, mine: list[int] | None = None, others: bool = True) -> list[int]:
        """The signals in log[first:last] nobody has reported yet; they are reported now.

        Those sent to one thread are left to it: `mine` lists the ones sent to the caller's
        thread (taken off as they are claimed); `others` says whether to claim the rest.
        """
        with self.lock:
            fresh = []
            for i in range(first, last):
                sig = self.log[i]
                if i in self.claimed:
                    continue
                if mine and sig in mine:
                    mine.remove(sig)
                    self.reserved[sig] -= 1
                elif not others or self.reserved.get(sig):
                    continue
                fresh.append(i)
            self.claimed.update(fresh)
            return [self.log[i] for i in fresh]

    def reserve(self, signum: int, mine: list[int]) -> None:
        """A signal is about to be sent to one thread (whose list is `mine`): that thread reports it."""
        with self.lock:
            self.reserved[signum] = self.reserved.get(signum, 0) + 1
            mine.append(signum)

    def drain(self) -> int:
        with self.lock:
            while True:
                try:
                    chunk = os.read(self.read_fd, 4096)
                except BlockingIOError:
                    break
                if not chunk:
                    break
                self.log.extend(chunk)
            return len(self.log)


class Handlers:
    """glibc signal() semantics on top of CPython's C-level handler."""

    python_handler: int = 0
    # Signals now caught. While there are none, nothing writes to the wakeup pipe,
    # so a call need not read it.
    catching: set[int] = set()

    @classmethod
    def capture(cls) -> None:
        """Register CPython's handler for every catchable signal, then restore C's defaults.

        CPython keeps calling its (no-op) Python-level handler when the C handler
        trips, and the C-level disposition stays SIG_DFL until a lab call changes it.
        """
        noop = lambda signum, frame: None  # noqa: E731
        for sig in CATCHABLE:
            try:
                signal.signal(sig, noop)
            except (OSError, ValueError, RuntimeError):
                continue
        old = libc.struct_sigaction()
        libc.sigaction(signal.SIGUSR1, None, ctypes.byref(old))
        cls.python_handler = old.handler
        default = libc.struct_sigaction()
        default.handler = libc.SIG_DFL_PTR
        for sig in CATCHABLE:
            libc.sigaction(sig, ctypes.byref(default), None)

    @classmethod
    def set(cls, signum: int, disposition: str) -> dict:
        act = libc.struct_sigaction()
        if disposition == "catch":
            act.handler = cls.python_handler
            act.flags = libc.SA_RESTART
            mask = libc.empty_sigset()
            ctypes.memmove(act.mask, mask, libc.SIGSET_BYTES)
            # glibc's signal() blocks the signal itself while its handler runs.
            act.mask[(signum - 1) // 8] |= 1 << ((signum - 1) % 8)
        else:
            act.handler = libc.SIG_DFL_PTR if disposition == "SIG_DFL" else libc.SIG_IGN_PTR
        t0 = now()
        ret = libc.sigaction(signum, ctypes.byref(act), None)
        t1 = now()
        if ret == 0:
            if disposition == "catch":
                cls.catching.add(signum)
            else:
                cls.catching.discard(signum)
        out = {"ret": ret, "start": t0, "dur": t1 - t0}
        if ret == -1:
            out["errno"] = libc.errno()
        return out


class Worker:
    """The machinery of one lab process.

    One thread at a time holds the reader role: it reads a request and makes
    the call itself, so a call that returns at once costs no thread switch.
    A monitor thread ticks every few milliseconds; if the reader has been
    inside the same call since the last tick, the call is blocking, and the
    monitor takes the reader role (starting a new monitor), so the process
    goes on taking requests while the call waits. The monitor also holds
    signals unblocked while no call is running, so a signal that arrives
    between steps is delivered at once.
    """

    def __init__(self, ctl: int, lab_fds: FdSet) -> None:
        self.floor = _machinery_floor()
        # The machinery sits above the script's open-file limit, where no script descriptor can be.
        self.above_limit = self.floor >= resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        self.ctl = _to_high(ctl, self.floor) if ctl < self.floor else ctl
        self.ctl_sock = socket.socket(fileno=self.ctl)
        self.sig_r, self.sig_w = _machinery_pair(self.floor, os.pipe)
        for fd in (self.sig_r, self.sig_w):
            os.set_blocking(fd, False)
        self.wake_r, self.wake_w = _machinery_pair(self.floor, os.pipe)
        for fd in (self.wake_r, self.wake_w):
            os.set_blocking(fd, False)
        self.dozing = False  # the monitor is in a long wait: a call that starts must wake it
        self.last_call_ns = now()
        self.trimmed_at = 0  # last_call_ns when the heap was last trimmed
        self.reserve: tuple[int, int] | None = None
        self._make_reserve()
        self.signals = SignalLog(self.sig_r)
        self.lab_fds = lab_fds
        self.inbox = protocol.FrameBuffer()
        self.inbox_buffer = memoryview(bytearray(256 * 1024))
        self.inbox_queue: list[tuple] = []
        self.linger = False  # the request just read said the next one is for us too
        self.send_lock = threading.Lock()
        self.role = threading.Lock()
        self.reader: int | None = None  # thread ident holding the reader role
        self.reader_busy = False
        self.call_seq = 0
        self.inflight = 0
        self.call_counter = 0
        self.open_calls: dict[int, int] = {}  # calls in progress, by start order -> first signal index
        self.main_tasks: queue.SimpleQueue = queue.SimpleQueue()  # what only the main thread may do
        self.actors = ActorThreads(self._call, self._take_signals)  # the script's `thread NAME in PROC` threads
        self.delta = DeltaInspector(self._high_epoll)  # the periodic inspection: what changed only

    def _high_epoll(self) -> int | None:
        from playground.worker.limits import dup_high

        return high_epoll(self.floor, dup_high)

    def floor_for_limit(self) -> int:
        """Where the machinery belongs under the open-file limit now in force."""
        return _machinery_floor()

    def _make_reserve(self) -> None:
        self.reserve = _machinery_pair(self.floor, _socketpair)

    def is_script_fd(self, fd: object) -> bool:
        """Whether a call may be made on this number: never on the machinery, nor cut to 32 bits."""
        if not isinstance(fd, int) or not -(2**31) <= fd < 2**31:
            return False
        if self.above_limit and fd >= self.floor:
            return False
        return fd not in self.machinery_fds()

    def machinery_fds(self) -> list[int]:
        fds = [self.ctl, self.sig_r, self.sig_w, self.wake_r, self.wake_w]
        if self.reserve:
            fds += list(self.reserve)
        if self.delta.fd is not None:
            fds.append(self.delta.fd)
        return fds

    # Running.

    def serve(self) -> None:
        """Run forever in the calling thread (which must be the main thread)."""
        _block_all()
        signal.set_wakeup_fd(self.sig_w, warn_on_full_buffer=False)
        self.reader = threading.get_ident()
        threading.Thread(target=self._monitor, daemon=True, name="monitor").start()
        self.send((0, protocol.HELLO, {"pid": os.getpid()}))
        self._read_loop()
        while True:  # the main thread lost the role: it only does what the main thread alone may
            self.main_tasks.get()(self)

    def _next_message(self) -> tuple | None:
        """The next request; spins briefly first, since in a script the next one comes fast."""
        if self.inbox_queue:
            return self.inbox_queue.pop(0)
        # Spin only when sockplay said a step of ours comes soon (in a script's next lines):
        # otherwise the spin would take a core the process that is next needs.
        deadline = now() + (SPIN_NS if self.linger else 0)
        self.linger = False
        while True:
            try:
                size = self.ctl_sock.recv_into(self.inbox_buffer, len(self.inbox_buffer), socket.MSG_DONTWAIT)
            except BlockingIOError:
                if now() < deadline:
                    os.sched_yield()  # poll, but never keep a core from a process that needs it
                    continue
                size = self.ctl_sock.recv_into(self.inbox_buffer)
            if size == 0:
                return None
            self.inbox_queue.extend(self.inbox.feed(self.inbox_buffer[:size]))
            if self.inbox_queue:
                return self.inbox_queue.pop(0)
            deadline = now() + SPIN_NS  # the rest of a frame is on its way

    def _read_loop(self) -> None:
        me = threading.get_ident()
        while True:
            try:
                message = self._next_message()
            except Exception:
                message = None
            if message is None:
                lab_dir.remove()  # sockplay is gone: so is its lab, its directory first
                os._exit(0)
            with self.role:
                self.call_seq += 1
                self.reader_busy = True
            self._handle(message)
            with self.role:
                if self.reader != me:
                    return  # a blocking call: the monitor took over reading meanwhile
                self.reader_busy = False

    def _monitor(self) -> None:
        """Take over reading when the reader blocks; catch signals between calls."""
        me = threading.get_ident()
        seen = -1
        tick = libc.timespec(0, MONITOR_TICK_NS)
        doze = libc.timespec(0, DOZE_TICK_NS)
        fds = (libc.pollfd * 2)(libc.pollfd(self.sig_r, 1, 0), libc.pollfd(self.wake_r, 1, 0))
        while True:
            if (fds[0].fd, fds[1].fd) != (self.sig_r, self.wake_r):  # moved by a raised open-file limit
                fds = (libc.pollfd * 2)(libc.pollfd(self.sig_r, 1, 0), libc.pollfd(self.wake_r, 1, 0))
            # Dozing is announced before inflight is read: a call that starts after this
            # read sees the announcement and wakes us; one that started before is seen here.
            self.dozing = True
            idle = self.inflight == 0
            dozing = idle and now() - self.last_call_ns > DOZE_AFTER_NS
            self.dozing = dozing
            libc.ppoll(fds, 2, ctypes.byref(doze if dozing else tick), _EMPTY if idle else _FULL)
            self.dozing = False
            if fds[1].revents:
                try:
                    os.read(self.wake_r, 64)
                except BlockingIOError:
                    pass
            if idle:
                self._report_idle_signals()
            with self.role:
                if self.reader_busy and self.call_seq == seen:
                    self.reader = me
                    self.reader_busy = False
                    take_over = True
                else:
                    seen = self.call_seq
                    take_over = False
            if take_over:
                threading.Thread(target=self._monitor, daemon=True, name="monitor").start()
                self._read_loop()
                return

    def _report_idle_signals(self) -> None:
        with self.role:
            if self.inflight:
                return
            first = len(self.signals.log)
            last = self.signals.drain()
            caught = self.signals.claim(first, last)
        if caught:
            self.send((0, protocol.SIGNAL_IDLE, {"signals": caught, "t": now()}))

    def send(self, message: tuple, fd: int | None = None) -> None:
        frame = protocol.encode(message)
        with self.send_lock:
            if fd is None:
                self.ctl_sock.sendall(frame)
            else:
                sent = self.ctl_sock.sendmsg([frame], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))])
                if sent < len(frame):
                    self.ctl_sock.sendall(frame[sent:])

    def _handle(self, message: tuple) -> None:
        request_id, op, args = message
        if op == "call":
            name, call_args, self.linger, *thread = args
            if not thread:
                self._call(request_id, name, call_args)
            elif not self.actors.route(thread[0], request_id, name, call_args):
                self.send((request_id, protocol.ERROR, f"no thread named {thread[0]!r}"))
        elif op == "tkill":
            self._tkill(request_id, *args)
        elif op == "thread":
            started = self.actors.start(args)
            self.send(
                (request_id, protocol.DONE, started)
                if isinstance(started, dict)
                else (request_id, protocol.ERROR, started)
            )
        elif op == "inspect":
            self.send((request_id, protocol.DONE, {"sockets": inspect_fds(list(self.lab_fds))}))
        elif op == "inspect_delta":
            self.send((request_id, protocol.DONE, self.delta.inspect(self.lab_fds, bool(args and args.get("full")))))
            self._trim_when_idle()
        elif op == "wake":
            self.linger = True  # sockplay's next request is for us: poll for it instead of sleeping
        elif op == "ping":
            self.send((request_id, protocol.DONE, {"pid": os.getpid()}))
        else:
            self.send((request_id, protocol.ERROR, f"unknown request {op!r}"))

    def _script_args(self, name: str, args: list) -> list:
        """The call's descriptors as the script may use them: a machinery number acts as a closed one."""
        if name not in _NO_FD_CALLS and name not in NO_FIRST_FD and args and not self.is_script_fd(args[0]):
            args = [CLOSED_FD, *args[1:]]
        if name in READINESS_CALLS:
            args = script_args(name, args, self.is_script_fd, CLOSED_FD)
        if name == "sendmsg":  # the descriptors passed are the script's too, never the machinery
            args = [*args[:2], [fd if self.is_script_fd(fd) else CLOSED_FD for fd in args[2]]]
        return args

    def _call(self, request_id: int, name: str, args: list) -> None:
        with self.role:
            self.inflight += 1
            self.call_counter += 1
            me = self.call_counter
        if self.dozing:  # the monitor must tick again, in case this call blocks
            try:
                os.write(self.wake_w, b"w")
            except BlockingIOError:
                pass
        watch = bool(Handlers.catching) or name == "signal"
        mine = self.actors.directed_here()  # signals sent to this thread alone (if it is a thread actor)
        fd_to_send = None
        libc.pthread_sigmask(libc.SIG_UNBLOCK, _FULL, None)
        first = 0
        if watch:
            # A signal that came while every thread had it blocked (between two of the
            # monitor's waits) is delivered the moment this thread unblocks it: it
            # arrived before the call, so it is reported as caught between calls.
            before = len(self.signals.log)
            first = self.signals.drain()
            with self.role:
                others = bool(self.open_calls)
            # With other calls in progress, those signals came during them: theirs to report.
            early = self.signals.claim(before, first, mine, others=not others)
            if early:
                self.send((0, protocol.SIGNAL_IDLE, {"signals": early, "t": now()}))
        with self.role:
            self.open_calls[me] = first
        args = self._script_args(name, args)
        try:
            if name == "fork":
                result, fd_to_send = self._fork()
            elif name == "signal":
                result = Handlers.set(*args)
            elif name == "setrlimit":
                result = set_limit(self, *args)
            elif name == "exit":
                os._exit(args[0])
            elif name == "pthread_exit":
                result = self.actors.end_here(args[0])
            else:
                result = (READINESS_CALLS.get(name) or SYSCALLS[name])(*args)
        except Exception as exc:  # a bad request, never a kernel answer
            libc.pthread_sigmask(libc.SIG_BLOCK, _FULL, None)
            with self.role:
                self.inflight -= 1
                self.open_calls.pop(me, None)
            self.send((request_id, protocol.ERROR, f"{type(exc).__name__}: {exc}"))
            return
        libc.pthread_sigmask(libc.SIG_BLOCK, _FULL, None)
        with self.role:
            self.open_calls.pop(me, None)
            # With several calls in progress, a signal is reported with the oldest (the
            # one blocked, whose thread was waiting with signals unblocked), not twice;
            # but a call it interrupted (EINTR) ran in the thread the kernel gave it to.
            older = any(other < me for other in self.open_calls) and result.get("errno") != errno.EINTR
        if (watch or Handlers.catching) and (not older or mine):
            last = self.signals.drain()
            caught = self.signals.claim(first, last, mine, others=not older)
            if caught:
                result["signals"] = caught
        self._track(name, args, result)
        self.last_call_ns = now()
        with self.role:
            self.inflight -= 1
        self.send((request_id, protocol.DONE, result), fd_to_send)
        if fd_to_send is not None:
            os.close(fd_to_send)

    def _trim_when_idle(self) -> None:
        """Give the C heap's free memory back once calls have stopped (issue 13).

        A burst of calls (10,000 connections made) leaves the heap as large as its peak,
        some 1 KB a connection, though nothing lives in it: once no call has come for a
        while, malloc_trim returns it (a heap of a few MB: well under a millisecond).
        """
        if self.trimmed_at != self.last_call_ns and self.inflight == 0 and now() - self.last_call_ns > TRIM_AFTER_NS:
            self.trimmed_at = self.last_call_ns
            libc.trim_heap()

    def _tkill(self, request_id: int, thread: str, signum: int) -> None:
        """`kill THREAD SIG`: a signal to one thread actor (pthread_kill, as tgkill sends it).

        A caught one is reported by that thread: with its call if it is in one, else as
        caught between calls, once it has taken it (it waits with signals blocked).
        """
        directed = self.actors.directed(thread)
        if directed is None:
            self.send((request_id, protocol.ERROR, f"no thread named {thread!r}"))
            return
        if signum in Handlers.catching:  # (an ignored or default one writes nothing to report)
            self.signals.reserve(signum, directed)
        self.actors.signal(thread, signum)
        self.actors.take_signals(thread)
        self.send((request_id, protocol.DONE, {}))

    def _take_signals(self) -> None:
        """In a thread actor between calls: let the signals sent to it alone arrive, reported as between calls."""
        before = self.signals.drain()
        libc.pthread_sigmask(libc.SIG_UNBLOCK, _FULL, None)  # a pending one is delivered here, at once
        libc.pthread_sigmask(libc.SIG_BLOCK, _FULL, None)
        caught = self.signals.claim(before, self.signals.drain(), self.actors.directed_here())
        if caught:
            self.send((0, protocol.SIGNAL_IDLE, {"signals": caught, "t": now()}))

    def _track(self, name: str, args: list, result: dict) -> None:
        ret = result["ret"]
        self.delta.touch(args[0] if args else None, ret)
        if name in _BINDING_CALLS and (ret >= 0 or result.get("errno") == errno.EINPROGRESS):
            result["local"] = local_address(args[0])
        elif name in ("accept", "accept4") and ret >= 0:
            result["local"] = local_address(ret)
        if name in ("socket", "accept", "dup", "accept4") and ret >= 0:
            self.lab_fds.add(ret)
            result["ino"] = os.fstat(ret).st_ino
        elif name in _MORE_FDS and ret >= 0:
            made = result.get(_MORE_FDS[name]) or []
            self.lab_fds.update(made)
            result["inos"] = [os.fstat(fd).st_ino for fd in made]
        elif name == "close":
            self.lab_fds.discard(args[0])

    def _fork(self) -> tuple[dict, int | None]:
        if self.reserve is None:
            self._make_reserve()
        assert self.reserve is not None
        ours, theirs = self.reserve
        t0 = now()
        try:
            pid = os.fork()
        except OSError as exc:
            t1 = now()
            return {"ret": -1, "errno": exc.errno, "start": t0, "dur": t1 - t0}, None
        t1 = now()
        if pid == 0:
            self._become_child(theirs)
        os.close(theirs)
        self.reserve = None
        try:
            self._make_reserve()
        except OSError:  # the child exists and is reported; the next fork makes its reserve first
            self.reserve = None
        return {"ret": pid, "start": t0, "dur": t1 - t0}, ours

    def _become_child(self, ctl: int) -> None:
        """In a forked child: drop the parent's machinery and serve on a channel of our own."""
        _block_all()
        self.delta.close()  # the parent's: the child makes its own
        for fd in self.machinery_fds():
            if fd != ctl:
                try:
                    os.close(fd)
                except OSError:
                    pass
        child = Worker(ctl, self.lab_fds.copy())
        try:
            child.serve()
        finally:
            os._exit(0)


def join_namespaces(spec: str) -> None:
    """Enter the lab network's namespaces (`PID` or `PID,user`) while still single-threaded."""
    pid, _, extra = spec.partition(",")
    for kind in (["user"] if extra == "user" else []) + ["net"]:
        fd = os.open(f"/proc/{pid}/ns/{kind}", os.O_RDONLY | os.O_CLOEXEC)
        try:
            if libc.libc.setns(fd, 0) != 0:
                err = libc.errno()
                raise OSError(err, f"setns {kind}: {os.strerror(err)}")
        finally:
            os.close(fd)


def main() -> None:
    global _FULL, _EMPTY
    ctl = int(sys.argv[1])
    for arg in sys.argv[2:]:
        if arg.startswith("--netns="):
            join_namespaces(arg[len("--netns=") :])  # (no str.removeprefix: remote hosts run Python 3.8)
        elif arg.startswith("--lab-dir="):
            lab_dir.note(arg)
    libc.one_heap()
    _FULL = libc.full_sigset()
    _EMPTY = libc.empty_sigset()
    Handlers.capture()
    Worker(ctl, FdSet()).serve()


if __name__ == "__main__":
    main()
