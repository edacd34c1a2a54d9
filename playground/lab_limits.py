"""A lab's limits: light to import, so the command can build them before the engine loads."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """What one lab allows a script (a script is untrusted input); each has a flag to raise it."""

    processes: int = 64  # live processes, forked ones included (--max-processes)
    pending: int = 256  # calls in progress at once, each holding a thread (--max-pending)
    sleep: float = 60.0  # seconds, for one `sleep` or `+DELAY` (--max-sleep)
