"""The periodic inspection's lab-process side: only the sockets whose kernel view may have changed.

Reading every socket with getsockopt four times a second costs in proportion to the
sockets held, busy or idle (issue 13: 10,000 connections). Here a socket is read again
only when something may have changed it:

- the kernel woke it: every lab socket sits in a private epoll set, edge-triggered,
  so data arriving, the peer's FIN, an error, write space coming back or a connection
  completing each report that socket once (idle sockets report nothing);
- a call of this process named it (its first argument, or the descriptor it returned);
- it was busy at its last reading (bytes queued, data unacknowledged, or a state that
  moves on by timers alone: SYN-SENT, FIN-WAIT-1, CLOSING, LAST-ACK...);
- the sweep: a few sockets each time, in turn, so what no wake-up tells (an option set
  by another process sharing the socket, TCP_QUICKACK as the delayed-ACK timer turns
  quick-ack mode off) is seen within a bounded time. A process with
  SWEEP sockets or fewer is read whole each time, as before.

Only the entries that differ from what was last sent go back, and the descriptors gone.
What was sent is kept as a fingerprint (a hash of the entry, its TCP_INFO clocks left out)
in an array by descriptor, and whether it was busy: 8 bytes a socket (the process's descriptors a
byte each: worker.fdset), not a copy of the entry (3 KB).
The epoll set is the machinery's (a number the script never gets, in the machinery's span
at or above main._machinery_floor); without room for it every socket is read each time, as before.
Runs on remote hosts' Python 3.8 too.
"""

from __future__ import annotations

import marshal
import select
import threading
from array import array
from collections.abc import Callable, Iterable

from playground.worker.fdset import FdSet
from playground.worker.snapshot import inspect_socket

SWEEP = 64  # sockets read in turn each time, changed or not
_WAKES = select.EPOLLIN | select.EPOLLOUT | select.EPOLLRDHUP | select.EPOLLPRI | select.EPOLLET
# TCP states a socket leaves by timers alone (SYN-SENT, SYN-RECV, FIN-WAIT-1, CLOSING, LAST-ACK).
_MOVING_STATES = {2, 3, 4, 11, 9}
# TCP_INFO's clocks (milliseconds since the last data) change at every reading: not a change.
_CLOCKS = ("last_data_sent", "last_data_recv", "last_ack_recv")


def _busy(entry: dict) -> bool:
    tcp = entry.get("tcp") or {}
    return bool(
        entry.get("inq")
        or entry.get("outq")
        or tcp.get("unacked")
        or tcp.get("retransmits")
        or tcp.get("backoff")
        or entry.get("state") in _MOVING_STATES
    )


def fingerprint(entry: dict) -> int:
    """A hash of what the entry shows (TCP_INFO's clocks left out): equal entries have equal ones.

    The entry is built in a fixed order (worker.snapshot), so its marshalled form is too;
    a 64-bit hash makes two different readings look the same about once in 10^19.
    """
    tcp = entry.get("tcp")
    if tcp:
        entry = dict(entry, tcp={k: v for k, v in tcp.items() if k not in _CLOCKS})
    return hash(marshal.dumps(entry))


class Marks:
    """fd -> the fingerprint last sent, in an array by descriptor (10,000 sockets: 8 bytes each, not 100 in a dict).

    0 is no mark: a fingerprint of 0 is kept as 1 (a different reading then looks the same
    about once in 10^19, as any two do).
    """

    def __init__(self) -> None:
        self._marks = array("q")
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def __contains__(self, fd: object) -> bool:
        return isinstance(fd, int) and 0 <= fd < len(self._marks) and self._marks[fd] != 0

    def get(self, fd: int) -> int | None:
        mark = self._marks[fd] if 0 <= fd < len(self._marks) else 0
        return mark or None

    def set(self, fd: int, mark: int) -> None:
        marks = self._marks
        if fd >= len(marks):
            marks.frombytes(bytes(marks.itemsize * (fd + 1 - len(marks))))
        if not marks[fd]:
            self._count += 1
        marks[fd] = mark or 1

    def pop(self, fd: int) -> int | None:
        mark = self.get(fd)
        if mark is not None:
            self._marks[fd] = 0
            self._count -= 1
        return mark

    def clear(self) -> None:
        self._marks = array("q")
        self._count = 0


class DeltaInspector:
    """What changed since the last inspect_delta, for one lab process (one per Worker)."""

    def __init__(self, make_epoll: Callable[[], int | None]) -> None:
        self._make_epoll = make_epoll
        self.epoll: select.epoll | None = None
        self._tried = False
        self.sent = Marks()  # fd -> fingerprint of the entry last sent
        self.busy: set[int] = set()  # fds busy at their last reading
        self.unsent: set[int] = set()  # fds of the process with nothing sent for them (new, or not a socket)
        self._touched: set[int] = set()  # named by a call since the last reading
        self._lock = threading.Lock()
        self._turn = 0

    @property
    def fd(self) -> int | None:
        return self.epoll.fileno() if self.epoll is not None else None

    def touch(self, *fds: object) -> None:
        """A call named these descriptors: read them next time."""
        with self._lock:
            for fd in fds:
                if isinstance(fd, int) and fd >= 0:
                    self._touched.add(fd)

    def moved(self, fd: int) -> None:
        """The epoll set has this number now (a copy: the machinery moved above a raised limit)."""
        old, self.epoll = self.epoll, select.epoll.fromfd(fd)
        if old is not None:
            old.close()

    def close(self) -> None:
        if self.epoll is not None:
            self.epoll.close()
            self.epoll = None

    def _ready(self) -> set[int]:
        """The sockets the kernel woke since the last reading (None-safe: empty without an epoll set)."""
        found: set[int] = set()
        if self.epoll is None:
            return found
        while True:
            try:
                events = self.epoll.poll(0, 4096)
            except InterruptedError:
                continue
            found.update(fd for fd, _ in events)
            if len(events) < 4096:
                return found

    def _watch(self, fds: FdSet, changed: set[int]) -> None:
        """The epoll set follows the process's descriptors: those added since last time joined, those dropped left."""
        if not self._tried:
            self._tried = True
            high = self._make_epoll()
            self.epoll = select.epoll.fromfd(high) if high is not None else None
        if self.epoll is None:
            return
        for fd in sorted(changed):
            if fd in fds:
                try:
                    self.epoll.register(fd, _WAKES)
                except OSError:  # not pollable, or in the set already under this number (a dup closed and reused)
                    try:
                        self.epoll.modify(fd, _WAKES)
                    except OSError:
                        pass
            else:
                try:
                    self.epoll.unregister(fd)
                except OSError:  # closed: the kernel dropped it from the set
                    pass

    def inspect(self, fds: FdSet, full: bool = False) -> dict:
        """What changed: {"sockets": entries, "gone": fds closed since, "read": sockets read, "full": bool}.

        `full` asks for every socket (the inspector starts afresh): "sockets" is then the whole list.
        Nothing here is as large as the process's descriptors but a full reading's list: four
        times a second, whole-set copies were what the lab process's heap grew by.
        """
        changed = fds.take_changes()
        self._watch(fds, changed)
        with self._lock:
            touched, self._touched = self._touched, set()
        if full:
            self.sent.clear()
            self.busy.clear()
        gone = []
        for fd in sorted(changed):
            if fd not in fds:
                self.unsent.discard(fd)
                self.busy.discard(fd)
                if self.sent.pop(fd) is not None:
                    gone.append(fd)
            elif fd not in self.sent:
                self.unsent.add(fd)
        read_all = full or self.epoll is None or len(fds) <= SWEEP
        if read_all:
            wanted: Iterable[int] = list(fds)
        else:
            chosen = set(self.unsent) | {fd for fd in touched | self._ready() if fd in fds}
            chosen.update(self.busy)
            chosen.update(self._sweep(fds))
            wanted = sorted(chosen)
        changed_entries: list[dict] = []
        read = 0
        for fd in wanted:
            read += 1
            entry = inspect_socket(fd)
            if entry is None:
                self.busy.discard(fd)
                if self.sent.pop(fd) is not None:
                    gone.append(fd)
                self.unsent.add(fd)
                continue
            self.unsent.discard(fd)
            if _busy(entry):
                self.busy.add(fd)
            else:
                self.busy.discard(fd)
            mark = fingerprint(entry) or 1
            if self.sent.get(fd) != mark:
                self.sent.set(fd, mark)
                changed_entries.append(entry)
        if read_all:
            self._ready()  # what the kernel said meanwhile is in this reading
        return {"sockets": changed_entries, "gone": gone, "read": read, "full": full}

    def _sweep(self, fds: FdSet) -> list[int]:
        """The next SWEEP descriptors in turn, from where the last sweep stopped (around to the lowest)."""
        chosen: list[int] = []
        for fd in fds.starting_at(self._turn):
            chosen.append(fd)
            if len(chosen) == SWEEP:
                break
        if len(chosen) < SWEEP:
            for fd in fds:
                if fd >= self._turn or len(chosen) == SWEEP:
                    break
                chosen.append(fd)
        self._turn = chosen[-1] + 1 if chosen else 0
        return chosen


def high_epoll(floor: int, dup_high: Callable[[int, int], int]) -> int | None:
    """A fresh epoll set (close-on-exec) on a machinery number at floor or above; None if there is no room."""
    ep = select.epoll()
    try:
        return dup_high(ep.fileno(), floor)
    except OSError:
        return None
    finally:
        ep.close()
