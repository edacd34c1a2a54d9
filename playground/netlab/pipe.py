"""One direction of one cable: which frames it drops, copies, holds and for how long.

Pure arithmetic on the switch's clock (nanoseconds, CLOCK_MONOTONIC) and the
cable's own seeded random numbers, so the same frames meet the same fates in
every run of a lab with the same seed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from playground.netlab.impairments import QUEUE_LIMIT, Impairment

LOST_LOSS = "lost-loss"
LOST_QUEUE = "lost-queue"


@dataclass
class Departure:
    """A copy of a frame the pipe lets through: when it leaves, and whether it is the extra copy."""

    at_ns: int
    duplicate: bool = False
    queued: bool = False  # holds a place in the rate queue until it leaves


@dataclass
class PipeCounters:
    delayed: int = 0
    duplicated: int = 0
    lost_loss: int = 0
    lost_queue: int = 0


class Pipe:
    """Turns a frame's arrival into its departures (none when it is lost), as netem would."""

    def __init__(self, seed: str) -> None:
        self._impairment = Impairment()
        self.clear = True  # nothing to do: the switch skips the pipe (most frames, most of the time)
        self.random = random.Random(seed)
        self.counters = PipeCounters()
        self._busy_until = 0  # when the rate queue's last frame has gone out
        self._queued = 0

    @property
    def impairment(self) -> Impairment:
        return self._impairment

    @impairment.setter
    def impairment(self, impairment: Impairment) -> None:
        self._impairment = impairment
        self.clear = impairment.clear

    def admit(self, now_ns: int, length: int) -> list[Departure] | str:
        """The copies that leave and when, or the fate of a frame that never does."""
        imp = self._impairment
        if self.clear:
            return [Departure(now_ns)]
        if imp.loss and self.random.random() * 100 < imp.loss:
            self.counters.lost_loss += 1
            return LOST_LOSS
        copies = [False]
        if imp.duplicate and self.random.random() * 100 < imp.duplicate:
            copies.append(True)
            self.counters.duplicated += 1
        departures: list[Departure] = []
        for duplicate in copies:
            departure = self._schedule(now_ns, length, duplicate)
            if departure is None:
                self.counters.lost_queue += 1
                if not duplicate:
                    return LOST_QUEUE
                continue
            if departure.at_ns > now_ns:
                self.counters.delayed += 1
            departures.append(departure)
        return departures

    def left(self, departure: Departure) -> None:
        """A copy this pipe scheduled has gone out (or was dropped after all): its queue place is free."""
        if departure.queued:
            self._queued -= 1

    def _schedule(self, now_ns: int, length: int, duplicate: bool) -> Departure | None:
        imp = self._impairment
        delay = imp.delay_ns
        if imp.jitter_ns:
            delay = max(0, delay + round(self.random.uniform(-imp.jitter_ns, imp.jitter_ns)))
        if imp.reorder and self.random.random() * 100 < imp.reorder:
            delay = 0
        at = now_ns + delay
        if not imp.rate:
            return Departure(at, duplicate)
        if self._queued >= QUEUE_LIMIT:
            return None
        start = max(at, self._busy_until)
        self._busy_until = start + length * 8 * 1_000_000_000 // imp.rate
        self._queued += 1
        return Departure(self._busy_until, duplicate, queued=True)
