"""poll over many descriptors, select and epoll, each as the one real syscall (timed around it alone).

Each answers `ready: [[fd, events], ...]`: the descriptors the kernel reported, with their
events as it gave them. epoll keeps the descriptor in each event's data when it is added,
as a C program does (`ev.data.fd = fd`), and reads it back from the events epoll_wait fills in.
"""

from __future__ import annotations

import ctypes
import platform
from collections.abc import Callable

from playground.worker import libc
from playground.worker.syscalls import Result, _result, now

FD_SETSIZE = 1024
_LONG_BITS = 8 * ctypes.sizeof(ctypes.c_long)
MAX_EPOLL_EVENTS = 100_000  # the most events a lab process makes room for (the parser's bound too)


class epoll_event(ctypes.Structure):
    # On x86-64 the kernel's struct epoll_event is packed (12 bytes); elsewhere it is 16.
    _pack_ = 1 if platform.machine() in ("x86_64", "AMD64") else 8
    _fields_ = [("events", ctypes.c_uint32), ("data", ctypes.c_uint64)]


def _bind(name: str, restype: type, *argtypes: type) -> Callable[..., int]:
    fn = getattr(libc.libc, name)
    fn.restype = restype
    fn.argtypes = list(argtypes)
    return fn


epoll_create1 = _bind("epoll_create1", ctypes.c_int, ctypes.c_int)
epoll_ctl = _bind("epoll_ctl", ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_void_p)
epoll_wait = _bind("epoll_wait", ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_int)
select_ = _bind(
    "select", ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p
)
# What glibc's FD_SET calls in a program built with _FORTIFY_SOURCE (Ubuntu's gcc default; most distributions'
# packages): for a descriptor at or above FD_SETSIZE it writes "*** bit out of range 0 - FD_SETSIZE on fd_set
# ***: terminated" and aborts (SIGABRT). Without it FD_SET writes past the fd_set: undefined behaviour (a test
# program built so here then waited in select on whatever bits it found). The kernel itself takes any nfds.
fdelt_chk = _bind("__fdelt_chk", ctypes.c_long, ctypes.c_long)


def do_poll_many(entries: list[list[int]], timeout: int) -> Result:
    """poll over [[shown fd, events, fd used], ...]; the shown number is the one reported."""
    fds = (libc.pollfd * max(len(entries), 1))()
    for slot, (_, events, used) in zip(fds, entries):
        slot.fd, slot.events = used, events
    t0 = now()
    ret = libc.poll(fds, len(entries), timeout)
    t1 = now()
    if ret < 0:
        return _result(ret, t0, t1)
    ready = [[shown, slot.revents & 0xFFFF] for (shown, _, _), slot in zip(entries, fds) if slot.revents]
    return _result(ret, t0, t1, ready=ready)


def _fd_set(fds: list[int], nfds: int) -> ctypes.Array:
    words = (ctypes.c_ulong * max(1, (nfds + _LONG_BITS - 1) // _LONG_BITS))()
    for fd in fds:
        words[fd // _LONG_BITS] |= 1 << (fd % _LONG_BITS)
    return words


def _is_set(words: ctypes.Array, fd: int) -> bool:
    return bool(words[fd // _LONG_BITS] >> (fd % _LONG_BITS) & 1)


def do_select(reads: list[int], writes: list[int], timeout: int, closed: bool = False) -> Result:
    """select with fd_sets as a C program has them (FD_SETSIZE bits); timeout in ms, -1 for none."""
    for fd in (*reads, *writes):
        if fd >= FD_SETSIZE:
            fdelt_chk(fd)  # FD_SET(fd, &set) in C: the process aborts, as a fortified C program does
    if closed:  # a descriptor the script does not have: the kernel's answer for a closed one
        t0 = now()
        ctypes.set_errno(9)  # EBADF
        return _result(-1, t0, now())
    nfds = max((*reads, *writes), default=-1) + 1
    rset, wset = _fd_set(reads, FD_SETSIZE), _fd_set(writes, FD_SETSIZE)
    tv = libc.timespec(timeout // 1000, (timeout % 1000) * 1000) if timeout >= 0 else None  # a timeval's layout
    t0 = now()
    ret = select_(nfds, rset, wset, None, ctypes.byref(tv) if tv is not None else None)
    t1 = now()
    if ret < 0:
        return _result(ret, t0, t1)
    ready: dict[int, int] = {}
    for fd in reads:
        if _is_set(rset, fd):
            ready[fd] = ready.get(fd, 0) | 1
    for fd in writes:
        if _is_set(wset, fd):
            ready[fd] = ready.get(fd, 0) | 2
    return _result(ret, t0, t1, ready=[[fd, bits] for fd, bits in ready.items()])


def do_epoll_create1(flags: int) -> Result:
    t0 = now()
    ret = epoll_create1(flags)
    t1 = now()
    return _result(ret, t0, t1)


def do_epoll_ctl(epfd: int, op: int, fd: int, events: int) -> Result:
    event = epoll_event(events & 0xFFFFFFFF, fd if fd >= 0 else 0)
    t0 = now()
    ret = epoll_ctl(epfd, op, fd, ctypes.byref(event))
    t1 = now()
    return _result(ret, t0, t1)


def do_epoll_wait(epfd: int, max_events: int, timeout: int) -> Result:
    room = min(max(max_events, 1), MAX_EPOLL_EVENTS)
    events = (epoll_event * room)()
    # MAX beyond the room (never, past the parser's bound) is cut to it: the kernel writes no further.
    asked = max_events if max_events <= room else room
    t0 = now()
    ret = epoll_wait(epfd, events, asked, timeout)
    t1 = now()
    if ret < 0:
        return _result(ret, t0, t1)
    return _result(ret, t0, t1, ready=[[int(e.data), int(e.events)] for e in events[:ret]])


READINESS_CALLS: dict[str, Callable[..., Result]] = {
    "poll_many": do_poll_many,
    "select": do_select,
    "epoll_create1": do_epoll_create1,
    "epoll_ctl": do_epoll_ctl,
    "epoll_wait": do_epoll_wait,
}
# Calls whose first argument is not one descriptor (script_args checks their descriptors itself).
NO_FIRST_FD = frozenset({"poll_many", "select", "epoll_create1"})


def script_args(name: str, args: list, is_script_fd: Callable[[object], bool], closed_fd: int) -> list:
    """The call's arguments with each descriptor the script may not use replaced as the worker does for one."""
    if name == "poll_many":
        entries, timeout = args
        return [[[fd, events, fd if is_script_fd(fd) else closed_fd] for fd, events in entries], timeout]
    if name == "select":
        reads, writes, timeout = args
        closed = not all(is_script_fd(fd) for fd in (*reads, *writes))
        return [reads, writes, timeout, closed]
    if name == "epoll_ctl":
        epfd, op, fd, events = args
        return [epfd, op, fd if is_script_fd(fd) else closed_fd, events]
    return args
