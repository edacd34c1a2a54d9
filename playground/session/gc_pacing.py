"""Keeps CPython's full garbage collections out of the moments when engine events stream in.

UI-free. A full collection walks every object the collector tracks, with the GIL held; a
session's history (log entries, the events and packets behind them) is most of those
objects, so once 100,000 events have streamed in, one full collection stops the event loop
for a third of a second, and CPython runs one each time the long-lived objects have grown
by a quarter: a dozen stalls in a 20-second burst, each one a key press drawn that late.

While events stream, each tick of the app moves every object that has survived so far into
the permanent generation (`gc.freeze()`), so collections only walk what is new. Objects
frozen and later dropped in a reference cycle (rendered lines a cache let go of, mostly) are
not reclaimed while frozen: once the stream has been quiet for a moment, or after a long
unbroken stream, everything is unfrozen and collected once.
"""

from __future__ import annotations

import gc
import time

from playground.worker import libc

__all__ = ["CollectorPacing", "FREEZE_EVERY", "QUIET", "LONGEST_FREEZE"]

FREEZE_EVERY = 1.0  # seconds between freezes while events stream
QUIET = 1.0  # seconds without events after which the frozen objects are collected
LONGEST_FREEZE = 30.0  # seconds of unbroken streaming after which they are collected anyway


class CollectorPacing:
    """Freezes the collector's long-lived objects while events stream, and collects once they stop."""

    def __init__(
        self, freeze_every: float = FREEZE_EVERY, quiet: float = QUIET, longest_freeze: float = LONGEST_FREEZE
    ) -> None:
        self.freeze_every = freeze_every
        self.quiet = quiet
        self.longest_freeze = longest_freeze
        self.frozen_since: float | None = None
        self._last_freeze = float("-inf")
        self._last_busy = float("-inf")

    @property
    def frozen(self) -> bool:
        return self.frozen_since is not None

    def tick(self, busy: bool, now: float | None = None) -> None:
        """Called on the app's tick; `busy`: engine events arrived since the last one."""
        now = time.monotonic() if now is None else now
        if busy:
            self._last_busy = now
            if self.frozen_since is not None and now - self.frozen_since >= self.longest_freeze:
                self.release(collect=True)
            if now - self._last_freeze >= self.freeze_every:
                gc.collect(1)  # the young generations' garbage goes first: only survivors are frozen
                gc.freeze()
                self._last_freeze = now
                if self.frozen_since is None:
                    self.frozen_since = now
        elif self.frozen_since is not None and now - self._last_busy >= self.quiet:
            self.release(collect=True)

    def release(self, collect: bool = False) -> None:
        """Unfreeze what this pacing froze (and collect it now, if asked)."""
        if self.frozen_since is None:
            return
        self.frozen_since = None
        gc.unfreeze()
        if collect:
            gc.collect()
            give_back_free_heap()


def give_back_free_heap() -> None:
    """Return the C heap's free memory to the system (glibc's malloc_trim; elsewhere nothing).

    A stream's garbage, once collected, leaves the heap as large as its peak: with 10,000
    connections made, some 0.6 KB a connection (bench/many_held.py). A trim of a heap of a
    hundred megabytes takes a few milliseconds, once, after a stream.
    """
    libc.trim_heap()
