"""A lab process's descriptors as one byte each, and which of them changed since last asked.

A Python set of 10,000 descriptors is a 512 KB table and 10,000 int objects, and every
copy of it (the periodic inspection made several, four times a second) another table:
the lab process's heap held about 4 MB at 10,000 sockets for that alone (issue 13).
Here a descriptor is a byte in a bytearray (10 KB for 10,000), iterated in order by the
bytearray's own search; what changed since the inspection last looked is kept aside, so
it need not compare whole sets. Calls of the process's threads add and drop descriptors
while the inspection reads: a lock keeps the count and the changes whole.
Runs on remote hosts' Python 3.8 too.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator


class FdSet:
    """A set of descriptors (non-negative ints), ascending when iterated."""

    def __init__(self, fds: Iterable[int] = ()) -> None:
        self._flags = bytearray()
        self._count = 0
        self._changed: set[int] = set()
        self._lock = threading.Lock()
        self.update(fds)

    def __len__(self) -> int:
        return self._count

    def __contains__(self, fd: object) -> bool:
        return isinstance(fd, int) and 0 <= fd < len(self._flags) and self._flags[fd] == 1

    def __iter__(self) -> Iterator[int]:
        return self.starting_at(0)

    def starting_at(self, start: int) -> Iterator[int]:
        """The descriptors from `start` up (those added meanwhile may or may not be seen)."""
        flags = self._flags
        fd = flags.find(1, max(start, 0))
        while fd >= 0:
            yield fd
            fd = flags.find(1, fd + 1)

    def add(self, fd: int) -> None:
        with self._lock:
            flags = self._flags
            if fd >= len(flags):
                flags.extend(bytes(fd + 1 - len(flags)))
            if not flags[fd]:
                flags[fd] = 1
                self._count += 1
            # (even when it was there: a thread's close of that number may not have been tracked yet,
            # and the new socket under it must join the inspection's epoll set)
            self._changed.add(fd)

    def update(self, fds: Iterable[int]) -> None:
        for fd in fds:
            self.add(fd)

    def discard(self, fd: int) -> None:
        with self._lock:
            if fd in self:
                self._flags[fd] = 0
                self._count -= 1
                self._changed.add(fd)

    def copy(self) -> FdSet:
        """A copy whose every descriptor counts as changed (a fork's child has seen none of them)."""
        return FdSet(self)

    def take_changes(self) -> set[int]:
        """The descriptors added or dropped since the last time this was asked (either way: look at each)."""
        with self._lock:
            changed, self._changed = self._changed, set()
        return changed
