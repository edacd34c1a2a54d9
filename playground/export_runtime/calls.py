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
import shutil
import signal as signals
import socket as socketlib
import struct
import sys
import tempfile
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
    AF_UNIX,
    IPPROTO_IP,
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


def _address(address):
    """An address as Python's socket module takes it: (host, port), or an AF_UNIX path (kept as (path, -1))."""
    return address[0] if isinstance(address, tuple) and address[1:] == (-1,) else address


def _end(name):
    """An address the kernel gave, as the script writes it: (host, port), or (path, -1) for AF_UNIX."""
    if isinstance(name, (str, bytes)):
        return (os.fsdecode(name), -1) if name else None
    return tuple(name[:2])


def bind(fd, address):
    with _sock(fd) as s:
        s.bind(_address(address))
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
        s.connect(_address(address))
    return 0


def getsockname(fd):
    with _sock(fd) as s:
        return _end(s.getsockname()) or 0


def getpeername(fd):
    with _sock(fd) as s:
        return _end(s.getpeername()) or 0


def read(fd, size):
    return os.read(fd, size)


def recv(fd, size, flags=0):
    with _sock(fd) as s:
        return s.recv(size, flags)


def recvfrom(fd, size, flags=0):
    with _sock(fd) as s:
        data, peer = s.recvfrom(size, flags)
    if _end(peer):
        OUT.peer = _end(peer)
    return data


def write(fd, data):
    return os.write(fd, data)


def send(fd, data, flags=0):
    with _sock(fd) as s:
        return s.send(data, flags)


def sendto(fd, data, address, flags=0):
    with _sock(fd) as s:
        return s.sendto(data, flags, _address(address))


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


# ── More calls the course uses (the descriptor limit, AF_UNIX, descriptor passing) ──

IP_RECVERR = 11  # <linux/in.h>: Python's socket module does not name it
MAX_RIGHTS = 16


def getrlimit(which):
    return resource.getrlimit(which)


def setrlimit(which, limits):
    if limits[0] > limits[1]:  # Python refuses it before the call (ValueError); the kernel's answer is EINVAL
        raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
    resource.setrlimit(which, limits)
    return 0


def socketpair(family, type_, proto=0):
    a, b = socketlib.socketpair(family, type_, proto)
    return Fd(a.detach()), Fd(b.detach())


def readv(fd, *sizes):
    buffers = [bytearray(size) for size in sizes]
    got, data = os.readv(fd, buffers), b""
    for buffer in buffers:
        data += bytes(buffer[: min(len(buffer), got - len(data))])
    return data


def accept4(fd, flags=0):
    """accept, then the flags set on the new socket (Python's accept takes none)."""
    with _sock(fd) as s:
        number, peer = s._accept()
    os.set_blocking(number, not flags & socketlib.SOCK_NONBLOCK)
    os.set_inheritable(number, not flags & socketlib.SOCK_CLOEXEC)
    if _end(peer):
        OUT.peer = _end(peer)
    return Fd(number)


def sendmsg(fd, data, *rights):
    passed = [(SOL_SOCKET, socketlib.SCM_RIGHTS, struct.pack(f"{len(rights)}i", *rights))] if rights else []
    with _sock(fd) as s:
        return s.sendmsg([data], passed)


def recvmsg(fd, size, me=None, names=()):
    """recvmsg: the data; the descriptors passed with it (SCM_RIGHTS) are named in order."""
    with _sock(fd) as s:
        data, ancillary, _, peer = s.recvmsg(size, socketlib.CMSG_SPACE(MAX_RIGHTS * 4))
    fds: list = []
    for level, kind, body in ancillary:
        if level == SOL_SOCKET and kind == socketlib.SCM_RIGHTS:
            fds += struct.unpack(f"{len(body) // 4}i", body[: len(body) // 4 * 4])
    for name, number in zip(names, fds, strict=False):
        me[name] = Fd(number)
    if _end(peer):
        OUT.peer = _end(peer)
    OUT.rights = fds
    return data
