"""setrlimit(RLIMIT_NOFILE) in a lab process: the script's own limit, with the machinery kept out of its way.

The machinery (control channel, pipes, the spare channel for a fork) sits at the
script's soft limit or above it (main._machinery_floor). A script that raises the
limit past it would find those numbers taken, where a C program has them free: so
after a raise the machinery moves above the new limit (when the hard limit leaves
room), and the script's descriptors go on being numbered as in C.
"""

from __future__ import annotations

import fcntl
import os
import resource
import signal
import socket
import threading
from typing import TYPE_CHECKING

from playground.worker.more_syscalls import setrlimit
from playground.worker.syscalls import Result

if TYPE_CHECKING:
    from playground.worker.main import Worker

RLIMIT_NOFILE = int(resource.RLIMIT_NOFILE)


def set_limit(worker: Worker, which: int, soft: int, hard: int) -> Result:
    """The call itself, then (for a raised RLIMIT_NOFILE) the machinery moved above the new soft limit."""
    result = setrlimit(which, soft, hard)
    if result["ret"] == 0 and which == RLIMIT_NOFILE:
        new_floor = worker.floor_for_limit()
        if new_floor > worker.floor:
            relocate(worker, new_floor)
    return result


def _moved(fd: int, floor: int) -> int:
    """The descriptor at the lowest free number from floor up; the old number is closed."""
    high = dup_high(fd, floor)
    os.close(fd)
    return high


def relocate(worker: Worker, floor: int) -> None:
    """Move every machinery descriptor to floor and above (the signal pipe by the main thread, which alone may)."""
    with worker.role:  # no other thread takes the reader role (and the control channel) meanwhile
        worker.floor = floor
        worker.above_limit = floor >= resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        with worker.send_lock:
            ctl = _moved(worker.ctl, floor)
            old = worker.ctl_sock
            worker.ctl_sock = socket.socket(fileno=ctl)
            worker.ctl = ctl
            old.detach()
        worker.wake_r, worker.wake_w = _moved(worker.wake_r, floor), _moved(worker.wake_w, floor)
        if worker.reserve is not None:
            worker.reserve = (_moved(worker.reserve[0], floor), _moved(worker.reserve[1], floor))
        if worker.delta.fd is not None:
            worker.delta.moved(dup_high(worker.delta.fd, floor))
    if threading.current_thread() is threading.main_thread():
        move_signal_pipe(worker)
    else:  # the main thread is inside a call: it moves the pipe when it returns
        worker.main_tasks.put(move_signal_pipe)


def move_signal_pipe(worker: Worker) -> None:
    """In the main thread: CPython's wakeup descriptor can be changed there only."""
    floor = worker.floor
    if worker.sig_r >= floor and worker.sig_w >= floor:
        return
    sig_r, sig_w = _moved(worker.sig_r, floor), dup_high(worker.sig_w, floor)
    signal.set_wakeup_fd(sig_w, warn_on_full_buffer=False)
    old_w = worker.sig_w
    with worker.signals.lock:
        worker.signals.read_fd = sig_r
        worker.sig_r, worker.sig_w = sig_r, sig_w
    os.close(old_w)


def dup_high(fd: int, floor: int) -> int:
    """A copy of the descriptor at floor or above, the original kept (it is still in use until replaced)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    raise_for_move = floor + 32 > soft
    if raise_for_move:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(floor + 32, hard), hard))
    try:
        return fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, floor)
    finally:
        if raise_for_move:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
