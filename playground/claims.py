"""Checks of what a line claims beyond a call's outcome: how long the call took, and a process's state.

The executor calls these; each returns why the claim does not hold, or None.
"""

from __future__ import annotations

from statistics import median

from playground.events import CallResult
from playground.outcomes import divergence
from playground.script.model import Outcome, Timing
from playground.script.timing import format_ns


def timing_divergence(timing: Timing | None, duration_ns: float) -> str | None:
    """`expected after 30ms, took 0.2ms` when the duration breaks the claim, else None."""
    if timing is None:
        return None
    holds = duration_ns >= timing.ns if timing.bound == "after" else duration_ns <= timing.ns
    return None if holds else f"expected {timing}, took {format_ns(duration_ns)}"


def call_divergence(
    call: str | None, expect: Outcome | None, timing: Timing | None, result: CallResult, repeated: bool = False
) -> str | None:
    """Why a call's result breaks its line: the stated outcome, then the timing claim (a single run's;
    in a repeat block, `repeated`, the claim is the median's, checked once the block is done)."""
    reasons = []
    if expect is not None:
        reasons.append(divergence(call, expect, result.outcome))
    if not repeated and result.outcome.death is None:
        reasons.append(timing_divergence(timing, result.duration_ns))
    found = [r for r in reasons if r]
    return "; ".join(found) if found else None


def median_divergence(timing: Timing | None, durations_ns: list[int]) -> str | None:
    """A repeated line's claim against the median of its runs' durations."""
    if timing is None or not durations_ns:
        return None
    why = timing_divergence(timing, median(durations_ns))
    return None if why is None else f"{why} (the median of {len(durations_ns)} runs)"


def process_state(pid: int, reaped: bool) -> str:
    """A lab process's state as `state PROC STATE` names it, from the letter in /proc/PID/stat.

    A process its parent (or the lab) has reaped is exited without a look: its pid may be another's by now.
    """
    if reaped:
        return "exited"
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return "exited"
    # The name in parentheses may hold spaces and ')': the state is the first field after the last ')'.
    fields = stat.rsplit(b")", 1)[-1].split()
    letter = fields[0].decode() if fields else "?"
    if letter == "Z":
        return "zombie"
    if letter == "X":
        return "exited"
    if letter in ("T", "t"):
        return "stopped"
    return "running"
