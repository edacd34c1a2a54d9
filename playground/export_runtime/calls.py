# ─────────────────────────────────────────────────────────────────────────────
# The runtime: how the experiment below is carried out. Read the experiment
# first; come back here to see how a step reaches its process.
#
# This program is the conductor. `spawn` forks a process that waits for
# orders; a step is a function that the conductor asks that process to run.
# Each process runs each call in a thread of its own, so a call that blocks
# (a read with no data) stays blocked in its process while later steps go on.
# The calls are the C calls, made through Python's os and socket modules:
# each makes the one system call and returns what C would (or raises OSError,
# printed as `= -1 ERRNO`). Descriptors are plain numbers, as in C: a new
# process's first socket is 3.
# ─────────────────────────────────────────────────────────────────────────────
import errno
import fcntl as fcntllib
import json
import os
import queue
import resource
import select
import signal as signals
import socket as socketlib
import struct
import sys
import threading
import time
import traceback
import warnings
from collections import deque
from os import O_NONBLOCK, WNOHANG, WUNTRACED  # noqa: F401  (used by the experiment)
from select import POLLERR, POLLHUP, POLLIN, POLLNVAL, POLLOUT, POLLPRI, POLLRDHUP  # noqa: F401
from signal import SIG_DFL, SIG_IGN  # noqa: F401
from socket import (  # noqa: F401
    AF_INET,
    AF_INET6,
    IPPROTO_IPV6,
    IPPROTO_TCP,
    IPPROTO_UDP,
    SHUT_RD,
    SHUT_RDWR,
    SHUT_WR,
    SOCK_DGRAM,
    SOCK_STREAM,
    SOL_SOCKET,
)

warnings.simplefilter("ignore", DeprecationWarning)  # fork() in a process with threads, as C programs do

SPEED = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0  # scales the recorded pauses: 0 skips them
CATCH = "catch"  # signal(SIG, CATCH): note the signal, and go on


# ── The calls, as C has them ────────────────────────────────────────────────


class Fd(int):
    """A descriptor number (an int) that this process's names hold."""


class Names:
    """A process's variables: `me.l` is a descriptor, `me.kid` a child's pid, as in C."""

    def __getitem__(self, name):
        return self.__dict__[name]

    def __setitem__(self, name, value):
        self.__dict__[name] = value


class Out(threading.local):
    """What the current call gives besides its return value (a peer's address, poll's events, ...)."""


OUT = Out()


def _sock(fd):
    """A Python socket object on a copy of the descriptor, so the descriptor itself is never closed by Python."""
    return socketlib.socket(fileno=fcntllib.fcntl(fd, fcntllib.F_DUPFD_CLOEXEC, W.floor - 64))


def socket(family, type_, proto=0):
    return Fd(socketlib.socket(family, type_, proto).detach())


def setsockopt(fd, level, option, value):
    if isinstance(value, tuple):  # SO_LINGER: struct linger {on, seconds}
        value = struct.pack("ii", *value)
    elif isinstance(value, float):  # SO_RCVTIMEO, SO_SNDTIMEO: struct timeval
        value = struct.pack("ll", int(value), round(value % 1 * 1_000_000))
    with _sock(fd) as s:
        s.setsockopt(level, option, value)
    return 0


def getsockopt(fd, level, option, kind="int"):
    with _sock(fd) as s:
        if kind == "int":
            return s.getsockopt(level, option)
        raw = s.getsockopt(level, option, 16)
    if kind == "linger":
        return tuple(struct.unpack_from("ii", raw))
    seconds, microseconds = struct.unpack_from("ll", raw)
    return seconds + microseconds / 1_000_000


def fcntl(fd, flag, on=None):
    """fcntl(fd, O_NONBLOCK, 1) sets the flag, 0 clears it; without a value it is read (1 or 0)."""
    flags = fcntllib.fcntl(fd, fcntllib.F_GETFL)
    if on is None:
        return 1 if flags & flag else 0
    fcntllib.fcntl(fd, fcntllib.F_SETFL, flags | flag if on else flags & ~flag)
    return 0


def bind(fd, address):
    with _sock(fd) as s:
        s.bind(address)
    return 0


def listen(fd, backlog=128):
    with _sock(fd) as s:
        s.listen(backlog)
    return 0


def accept(fd):
    with _sock(fd) as s:
        conn, OUT.peer = s.accept()
    return Fd(conn.detach())


def connect(fd, address):
    with _sock(fd) as s:
        s.connect(address)
    return 0


def getsockname(fd):
    with _sock(fd) as s:
        return tuple(s.getsockname()[:2])


def getpeername(fd):
    with _sock(fd) as s:
        return tuple(s.getpeername()[:2])


def read(fd, size):
    return os.read(fd, size)


def recv(fd, size, flags=0):
    with _sock(fd) as s:
        return s.recv(size, flags)


def recvfrom(fd, size, flags=0):
    with _sock(fd) as s:
        data, OUT.peer = s.recvfrom(size, flags)
    return data


def write(fd, data):
    return os.write(fd, data)


def send(fd, data, flags=0):
    with _sock(fd) as s:
        return s.send(data, flags)


def sendto(fd, data, address, flags=0):
    with _sock(fd) as s:
        return s.sendto(data, flags, address)


def writev(fd, *buffers):
    return os.writev(fd, buffers)


def shutdown(fd, how):
    with _sock(fd) as s:
        s.shutdown(how)
    return 0


def close(fd):
    os.close(fd)
    return 0


def dup(fd):
    return Fd(os.dup(fd))


def poll(fd, events, timeout_ms):
    watch = select.poll()
    watch.register(fd, events)
    ready = watch.poll(timeout_ms)
    OUT.revents = ready[0][1] if ready else 0
    return len(ready)


def signal(signum, disposition):
    signals.signal(signum, _noted if disposition == CATCH else disposition)
    return 0


def _noted(signum, frame):
    """A caught signal does nothing more: its number was written to the signal pipe when it arrived."""


def waitpid(pid, flags=0):
    got, status = os.waitpid(pid, flags)
    if got:
        OUT.child = status
    return got


def pthread_exit(status):
    """In a thread actor: its thread ends once this outcome is sent."""
    OUT.thread_exit = status
    return 0


def exit(status):  # noqa: A001  (C's exit)
    os._exit(status)


def fork(me, name):
    """fork(): the child becomes a process of its own that the conductor sends steps to, named `name`."""
    ours, theirs = (_high(s.detach()) for s in socketlib.socketpair(socketlib.AF_UNIX, socketlib.SOCK_SEQPACKET))
    pid = os.fork()
    if pid == 0:  # the child: drop the parent's machinery, serve on a channel of its own
        try:
            os.close(ours)
            for fd in (W.chan.detach(), W.wake_r, W.wake_w):
                os.close(fd)
            _serve(theirs, me)
        except BaseException:
            traceback.print_exc()
        os._exit(70)
    OUT.passed = (ours, theirs, name)  # sent to the conductor with the result, then closed here
    return pid
