"""Following a live lab: a LadderSet fed by the lab's events as they happen."""

from __future__ import annotations

import asyncio
import sys
import time
from typing import TYPE_CHECKING, Any, TextIO

from playground.events import CallDone, CallObserved, DirectiveDone, PacketsSeen, ProcessEnded, ProcessStarted
from playground.ladder.connections import LadderSet, samples_from_kernel
from playground.ladder.model import CLOSED, GONE_NS, CallNote, Ladder, observed_note
from playground.ladder.svg import ladder_svg
from playground.output_files import OutputRefused, write_output
from playground.script.model import Kill

if TYPE_CHECKING:
    from playground.lab import Lab

# Calls after which the kernel's view is read: those that can change a state with nothing on the
# wire yet (a FIN queued behind data), and failures (a connection the kernel gave up on). A read
# costs about a millisecond, too much to pay after every call.
SAMPLE_AFTER = frozenset({"close", "shutdown", "connect"})
# A reading taken while a segment went by is not trusted (the ladder cannot tell which came first), and
# on a busy machine the call's own segments or the peer's answer often do: read once more this much later.
RESAMPLE_S = 0.1


class LadderRecorder:
    """Follows a lab's events (attach it before the run) and keeps every connection's ladder.

    With `kernel`, the kernel's view (sock_diag) is read after the calls in SAMPLE_AFTER, after
    a call that failed, when a process ends and before saving (and whenever `sample()` is
    called), and reconciled with the state machine: where they disagree, the kernel wins.
    """

    def __init__(self, lab: Lab, kernel: bool = True) -> None:
        self.lab = lab
        self.kernel = kernel
        self.set = LadderSet(lab.t0)
        self._last_packet = time.monotonic()
        self._arrived = asyncio.Event()
        self._kills: dict[str, int] = {}
        self._present: dict[tuple, str] = {}
        self._gone: dict[tuple, int] = {}
        self._pending_observed: set[tuple[int, int]] = set()  # outside programs' calls seen pending
        self._resample: asyncio.TimerHandle | None = None
        self.set.add_packets(list(lab.packets))
        self._unsubscribe = lab.subscribe(self._on_event)

    @property
    def ladders(self) -> list[Ladder]:
        for builder in self.set.builders:
            builder.refresh_labels()
        return self.set.ladders

    def close(self) -> None:
        self._unsubscribe()
        if self._resample is not None:
            self._resample.cancel()
            self._resample = None

    def observe(self, event: object) -> None:
        """Take one lab event, as the subscription does: for events from before the recorder was made.

        A CallNote stands for the CallDone it was made from (what a session keeps until a ladder is asked for).
        """
        if isinstance(event, CallNote):
            self.set.add_call(event)
            if self.kernel and (event.name in SAMPLE_AFTER or " = -1 " in event.text):
                self.sample()
            return
        self._on_event(event)

    def _on_event(self, event: object) -> None:
        if isinstance(event, PacketsSeen):
            self.set.add_packets(event.packets)
            self._last_packet = time.monotonic()
            self._arrived.set()
        elif isinstance(event, CallDone):
            note = CallNote.from_event(event, self.lab)
            if note is not None:
                self.set.add_call(note)
            if self.kernel and note is not None and (note.name in SAMPLE_AFTER or " = -1 " in note.text):
                self.sample()
                self._sample_again_later()
        elif isinstance(event, CallObserved):
            self._observed(event)
        elif isinstance(event, ProcessStarted):
            self.set.add_process(event.process, event.parent)
        elif isinstance(event, DirectiveDone) and isinstance(event.node, Kill):
            self._kills[event.node.name] = event.t_ns
        elif isinstance(event, ProcessEnded):
            t = self._kills.pop(event.process, event.t_ns)
            self.set.process_ended(CallNote(t, event.process, f"{event.process} {event.death or 'ended'}"))
            if self.kernel:
                self.sample()

    def _observed(self, event: CallObserved) -> None:
        """An outside program's call: written beside its socket's column, as a lab process's."""
        if event.pending:
            self._pending_observed.add(event.key)
            return
        blocked = event.key in self._pending_observed
        self._pending_observed.discard(event.key)
        note = observed_note(event, blocked)
        if note is not None:
            self.set.add_call(note)

    def _sample_again_later(self) -> None:
        if self._resample is None:
            self._resample = asyncio.get_running_loop().call_later(RESAMPLE_S, self._sampled_again)

    def _sampled_again(self) -> None:
        self._resample = None
        self.sample()

    def sample(self) -> None:
        """Read the kernel's TCP sockets now and reconcile every ladder with them."""
        before = time.monotonic_ns()
        sockets = self.lab.kernel_sockets()
        after = time.monotonic_ns()
        t, slack = (before + after) // 2, (after - before) // 2
        found = samples_from_kernel(sockets, t)
        present = {side: state for _t, side, state in found}
        for side, state in present.items():
            self.set.add_sample(t, side, state, slack)  # one that agrees with the state machine draws nothing
        for side in self._present.keys() - present.keys():
            self._gone[side] = t
        for side, when in list(self._gone.items()):
            if side in present or t - when > GONE_NS:
                del self._gone[side]
            else:  # gone from the kernel's list: no socket any more (said again for a while, in case
                self.set.add_sample(t, side, CLOSED, slack)  # the first was too close to a segment)
        self._present = present

    async def settle(self, quiet: float = 0.15, limit: float = 1.0) -> None:
        """Wait (at most `limit` seconds) until no packet has arrived for `quiet` seconds.

        The capture thread hands packets over in batches, a little after they were sent: the
        wait is at least `quiet`, even if nothing has arrived lately.
        """
        if self.lab.capture is None:
            return
        start = time.monotonic()
        deadline = start + limit
        while True:
            remaining = min(deadline, max(start, self._last_packet) + quiet) - time.monotonic()
            if remaining <= 0:
                return
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except TimeoutError:
                pass

    async def until(self, predicate: Any, timeout: float = 5.0) -> bool:
        """Wait (at most `timeout` seconds) until predicate(ladders) holds, re-checking as packets arrive."""
        deadline = time.monotonic() + timeout
        while True:
            if predicate(self.ladders):
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), min(remaining, 0.05))
            except TimeoutError:
                pass

    async def save(self, path: str, warn: TextIO | None = None) -> int | None:
        """Write every connection's ladder, stacked, to an SVG file; returns how many were drawn.

        Without packet capture nothing is written, and `warn` (standard error by default) says why;
        None if the file could not be written (said on `warn` too).
        """
        warn = warn if warn is not None else sys.stderr
        if self.lab.capture is None:
            print(f"sockplay: no ladder written: {self.lab.capture_reason or 'no packet capture'}", file=warn)
            return 0
        await self.settle()
        if self.kernel:
            self.sample()
        ladders = self.ladders
        try:
            write_output(path, ladder_svg(ladders))
        except OutputRefused as exc:
            print(f"sockplay: no ladder written: {exc}", file=warn)
            return None
        except OSError as exc:
            print(f"sockplay: cannot write the ladder to {path}: {exc.strerror or exc}", file=warn)
            return None
        return len(ladders)
