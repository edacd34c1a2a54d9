"""The one executor of script lines: what each kind of line does on a lab, and when it diverges.

`sockplay run`, replay, lessons (through playground.runner.Runner) and the TUI (through
playground.session.LabSession) all carry lines out here: a `+DELAY`, a call and the `...`
line that completes it, `spawn`, `kill`, `sleep`, a `~` wire check and a `state` check.
They differ only in what they show, and in that a script waits for each call's result
while the TUI shows the call's events as they come.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from dataclasses import dataclass, field

from playground import lab_threads
from playground.claims import call_divergence, process_state
from playground.constants import DEFAULT_STEP_TIMEOUT
from playground.errors import LabError
from playground.events import (
    CallObserved,
    CallResult,
    Event,
    PacketsSeen,
    ProcessEnded,
    ProcessReaped,
    SignalCaught,
)
from playground.lab import PENDING_AFTER, CallHandle, Lab
from playground.netlab import directives as network_lab
from playground.packet_log import AnyPacket, SeenPackets
from playground.script.format import format_node, format_outcome
from playground.script.model import (
    Cable,
    Completion,
    Fault,
    Host,
    Kill,
    Line,
    Node,
    Observed,
    RemoteHost,
    Segment,
    Sleep,
    Spawn,
    StateCheck,
    Step,
    Thread,
    Wire,
)
from playground.script.parser import parse_line

# How long a `~` line waits for the segment it expects, and a `state` line for its state.
WIRE_WAIT = 1.0
STATE_WAIT = 1.0
# Packets kept for the `~` lines after a call (the lab keeps them all; a step that floods the wire must not
# keep a second copy of the flood; `--wire`, which prints them all, keeps them all), and how many a divergence names.
STEP_PACKETS = 10_000
SAID_PACKETS = 8
# How long a step marked `...` is given to return before it counts as blocked.
BLOCK_GRACE = 0.05


@dataclass
class StepReport:
    """What happened on one line of the script."""

    line: Line
    text: str  # the line as it ran, outcome filled in
    result: CallResult | None = None
    divergence: str | None = None
    error: str | None = None  # the lab could not carry the line out
    notes: list[str] = field(default_factory=list)  # deaths, idle signals, ... seen after this line
    process: str | None = None
    call: str | None = None
    iteration: int | None = None  # 1-based, inside a repeat block
    block_end: bool = False  # this report closes a repeat block (text is a summary)
    first_in_block: bool = False  # the first line of one run of a repeat block
    observed: list[CallObserved] = field(default_factory=list)  # outside programs' calls that returned meanwhile


class Executor:
    """Carries out script lines on one lab, in order, and reports each one.

    watch: follow the lab's events, for `~` lines (the packets since the last call) and for
    the notes of a report (deaths, signals caught between calls, reaps).
    """

    def __init__(
        self,
        lab: Lab,
        step_timeout: float = DEFAULT_STEP_TIMEOUT,
        speed: float | None = None,
        watch: bool = True,
    ) -> None:
        self.lab = lab
        self.step_timeout = step_timeout
        # `+DELAY` gaps are scaled by speed (0: none, 1: as written); `sleep` lines never are.
        self._speed = 1.0 if speed is None else speed
        self.settle_wire = False  # wait for each step's packets before reporting it (`--wire`)
        # Whose lines come next, if the caller knows: the first is woken while the current
        # call runs, and all poll for their next request instead of sleeping (a wake-up
        # costs more than a step).
        self.following: tuple[str | None, ...] = ()
        self._notes: list[str] = []
        self._observed: list[CallObserved] = []
        # Packets seen since the current step began, and how far `~` lines have matched them.
        self._packets = SeenPackets()
        self._packets_over = False  # more came than STEP_PACKETS
        self._wire_pos = 0
        self._step_start_ns = 0
        self._packet_arrived = asyncio.Event()
        self._unsubscribe = lab.subscribe(self._observe) if watch else None

    def close(self) -> None:
        """Stop following the lab's events."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    @property
    def packets(self) -> SeenPackets:
        """The packets seen since the current step was sent (a new list for each step)."""
        return self._packets

    def _observe(self, event: Event) -> None:
        if isinstance(event, PacketsSeen):
            fresh = [p for p in event.packets if p.t_ns >= self._step_start_ns]
            room = STEP_PACKETS - len(self._packets)
            if len(fresh) > room and not self.settle_wire:  # (`--wire` prints every packet: all are kept)
                fresh = fresh[: max(room, 0)]
                self._packets_over = True
            self._packets.extend(fresh)
            self._packet_arrived.set()
        elif isinstance(event, SignalCaught):
            self._notes.append(f"{event.process} caught {', '.join(event.signals)} between calls")
        elif isinstance(event, ProcessEnded):
            state = f"{event.death}" if event.death else "ended"
            tail = " (a zombie until its parent reaps it)" if event.zombie else ""
            self._notes.append(f"{event.process} {state}{tail}")
        elif isinstance(event, ProcessReaped) and event.by:
            self._notes.append(f"{event.by} reaped {event.process}")
        elif isinstance(event, CallObserved) and not event.pending:
            self._observed.append(event)

    # A whole line, reported.

    async def run_line(self, line: Line, iteration: int | None = None, first: bool = False) -> StepReport:
        """Carry out one line and report what happened (waiting for a call's result, not for `...`)."""
        node = line.node
        report = StepReport(line, line.text.strip(), iteration=iteration, first_in_block=first)
        try:
            if isinstance(node, Step):
                report.process, report.call = node.actor, node.call.name
                handle = await self.send(node)
                await self.await_step(node, handle, report)  # its text keeps the `+DELAY`: the output is a script too
            elif isinstance(node, Wire):
                await self.check_wire(node, report)
            elif isinstance(node, StateCheck):
                await self.check_state(node, report)
            elif isinstance(node, Observed):
                report.text, report.process = format_node(node), node.process  # shown in place, never executed
            elif isinstance(node, Completion):
                report.process = node.actor
                await self.await_completion(node, self.claim(node), report, self.step_timeout)
            else:
                await self.directive(node)
                report.text = format_node(node)
        except LabError as exc:
            report.error = str(exc)
            report.text = format_node(node)
        if self.settle_wire and isinstance(node, (Step, Completion)) and self.lab.capture is not None:
            await self.settle()
        # Deaths and signals are reported by the kernel asynchronously; give
        # the event loop one turn to deliver those this line may have caused.
        if not isinstance(node, Step) or report.result is None or report.result.outcome.death is not None:
            await asyncio.sleep(0)
        report.notes += self.take_notes()
        report.observed = self.take_observed()
        return report

    def take_observed(self) -> list[CallObserved]:
        """The outside programs' calls that returned since the last take (`#> PROC: ...` lines)."""
        observed, self._observed = self._observed, []
        return observed

    def take_notes(self) -> list[str]:
        """What the lab reported since the last take (deaths, signals caught between calls, reaps)."""
        notes, self._notes = self._notes, []
        return notes

    # The rules, one kind of line at a time.

    async def wait_delay(self, node: Node) -> None:
        """Wait out a line's `+DELAY`, scaled by the speed and bounded by the lab's limit (LabError beyond it)."""
        delay = getattr(node, "delay", None)
        if delay:
            seconds = delay * self._speed
            self.lab.check_sleep(seconds)
            await asyncio.sleep(seconds)

    async def send(self, step: Step, wait: bool = True) -> CallHandle:
        """Wait out the step's `+DELAY`, then send its call; `~` lines match the packets from here on.

        wait: the caller waits for the result, so a call expected to return is polled for a
        moment instead of slept on (the TUI does not wait: its events show the result).
        """
        self._step_start_ns = time.monotonic_ns()
        self._packets = SeenPackets()
        self._wire_pos, self._packets_over = 0, False
        if step.delay:
            await self.wait_delay(step)
            step = dataclasses.replace(step, delay=None)
        following = self.following
        lab_threads.check_step(self.lab, step)
        return self.lab.submit(
            step,
            spin=wait and not step.blocks,
            linger=step.actor in following,
            wake=following[0] if following else None,
        )

    async def await_step(self, step: Step, handle: CallHandle, report: StepReport) -> None:
        """A sent call's result and divergence: a `...` call must block, any other must return in time."""
        if step.blocks:
            await self._await_blocking(step, handle, report)
            return
        try:
            if handle.future.done():
                result = handle.future.result()
            else:
                result = await asyncio.wait_for(asyncio.shield(handle.future), self.step_timeout)
        except TimeoutError:
            handle.pending = True
            report.text = format_node(step, pending=True)
            report.divergence = (
                f"still blocked after {self.step_timeout:g} s; end the line with '...' if it is meant to block"
            )
            return
        handle.stated = True  # its own line states it, although the lab may have marked it pending meanwhile
        report.result = result
        report.text = format_node(step, result.outcome)
        report.divergence = call_divergence(
            step.call.name, step.expect, step.timing, result, report.iteration is not None
        )

    async def _await_blocking(self, step: Step, handle: CallHandle, report: StepReport) -> None:
        try:
            result = await asyncio.wait_for(asyncio.shield(handle.future), BLOCK_GRACE)
        except TimeoutError:
            report.text = format_node(step, pending=True)
            return
        if result.duration_ns >= PENDING_AFTER * 1e9:
            # It did block (longer than the lab calls pending); it just returned
            # before the next line: its outcome waits for the `...` line that states it.
            handle.pending = True
            if handle not in handle.process.blocked:
                handle.process.blocked.append(handle)
            report.text = format_node(step, pending=True)
            return
        handle.stated = True
        report.result = result
        report.text = format_node(step, result.outcome)
        report.divergence = f"expected the call to block, but it returned {format_outcome(result.outcome)} at once"

    def claim(self, node: Completion) -> CallHandle:
        """The blocked call a `...` line states the outcome of: the actor's oldest one not yet stated."""
        assert node.actor is not None
        handle = self.lab.oldest_unstated(node.actor)
        if handle is None:
            raise LabError(f"{node.actor} has no blocked call whose outcome is still to be stated")
        handle.stated = True
        return handle

    async def await_completion(
        self, node: Completion, handle: CallHandle, report: StepReport, timeout: float | None
    ) -> None:
        """Wait out the `+DELAY`, then (up to timeout, if any) for the claimed call's result, and compare it."""
        step = handle.node
        assert isinstance(step, Step)
        report.call = step.call.name
        await self.wait_delay(node)
        try:
            result = await asyncio.wait_for(asyncio.shield(handle.future), timeout)
        except TimeoutError:
            report.text = format_node(node)
            report.divergence = f"{node.actor}'s blocked {step.call.name} had not returned after {timeout:g} s"
            return
        report.result = result
        report.text = format_node(Completion(node.actor, None, node.delay, node.timing), result.outcome)
        report.divergence = call_divergence(
            step.call.name, node.expect, node.timing, result, report.iteration is not None
        )

    async def directive(self, node: Node, text: str | None = None) -> None:
        """`spawn`, `thread`, `kill` or `sleep`, after its `+DELAY` (a `sleep` itself is never scaled)."""
        await self.wait_delay(node)
        if isinstance(node, Spawn) and node.command:
            await self.lab.lifecycle.outside.spawn(node, network_lab.netns_of(self.lab, node.host))
        elif isinstance(node, Spawn):
            await self.lab.spawn(node.name, node.host)
        elif isinstance(node, RemoteHost):
            self.lab.lifecycle.remote_hosts.declare(node, text or format_node(node))
        elif isinstance(node, (Host, Fault, Cable)):
            await network_lab.carry_out(self.lab, node)
        elif isinstance(node, Kill):
            await self.lab.kill(node.name, node.signal)
        elif isinstance(node, Thread):
            await lab_threads.start_thread(self.lab, node)
        elif isinstance(node, Sleep):
            self.lab.check_sleep(node.seconds)
            # Its delay is waited out: a recording measures that gap itself.
            bare = dataclasses.replace(node, delay=None)
            await self.lab.sleep(bare, text or format_node(bare))

    async def settle(self, quiet: float = 0.005, limit: float = 0.05) -> None:
        """Wait (bounded) until the capture has reported what is queued, then for `quiet` seconds of calm."""
        await self.lab.capture_flush()
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            self._packet_arrived.clear()
            try:
                await asyncio.wait_for(self._packet_arrived.wait(), quiet)
            except TimeoutError:
                return

    async def check_wire(self, wire: Wire, report: StepReport) -> None:
        """A `~` line: the packet it describes among those since the last call (waiting up to WIRE_WAIT)."""
        report.text = format_node(wire)
        if self.lab.capture is None:
            report.notes.append(f"not checked: no packet capture ({self.lab.capture_reason})")
            return
        if wire.nothing or wire.forbid:
            await self.settle(0.05, 0.2)
            bad = [p for p in self._packets if wire.nothing or wire.forbid in p.flags]
            if bad:
                report.divergence = f"expected {report.text[2:]}, but saw: {bad[0].summary}"
            return
        assert wire.segment is not None
        segment = lab_threads.by_process(self.lab, wire.segment)  # packets name a thread's sockets by its process
        deadline = time.monotonic() + WIRE_WAIT
        while True:
            for i in range(self._wire_pos, len(self._packets)):
                if segment_matches(segment, self._packets[i]):
                    self._wire_pos = i + 1
                    report.notes.append(f"saw {self._packets[i].summary}")
                    return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                report.divergence = f"expected {report.text[2:]}, saw {self._seen_since(self._wire_pos)}"
                return
            self._packet_arrived.clear()
            try:
                await asyncio.wait_for(self._packet_arrived.wait(), remaining)
            except TimeoutError:
                pass

    def _seen_since(self, start: int) -> str:
        """The packets seen from `start` on, as a divergence says them (the first few)."""
        seen = self._packets[start:]
        text = "; ".join(p.summary for p in seen[:SAID_PACKETS]) or "no packet"
        if len(seen) > SAID_PACKETS:
            text += f"; and {len(seen) - SAID_PACKETS} more"
        if self._packets_over:
            text += f" (only the first {STEP_PACKETS:,} packets after a call are kept for `~` lines)"
        return text

    async def check_state(self, check: StateCheck, report: StepReport) -> None:
        """A `state` line: poll the kernel (up to STATE_WAIT) until the socket is in the stated state."""
        report.text = format_node(check)
        report.process = check.process
        await self.wait_delay(check)
        deadline = time.monotonic() + STATE_WAIT
        while True:
            seen = await self._seen_state(check)
            if seen == check.state:
                return
            if time.monotonic() > deadline:
                where = "in " if check.var is not None else ""
                report.divergence = f"expected {check.subject} {where}{check.state}, the kernel says {seen}"
                return
            await asyncio.sleep(0.005)

    async def _seen_state(self, check: StateCheck) -> str:
        """A socket's TCP state (`state PROC.VAR STATE`) or a process's (`state PROC STATE`)."""
        if check.var is not None:
            return await self.lab.socket_state(check.process, check.var)
        proc = self.lab.process(check.process)
        return process_state(proc.pid, proc.reaped)


async def run_typed_line(lab: Lab, text: str, default_actor: str | None = None) -> CallResult | None:
    """Parse a typed line against the live lab and carry it out; a call's result (None for `...`).

    Raises LineError for a line that does not parse and LabError for one the lab cannot carry out.
    """
    node = parse_line(text, lab.scope(default_actor))
    if node is None:
        return None
    executor = Executor(lab, watch=False)
    if isinstance(node, Step):
        handle = await executor.send(node)
        if node.blocks:
            return None
        return handle.future.result() if handle.future.done() else await handle.future
    if isinstance(node, Completion):
        handle = executor.claim(node)
        await executor.wait_delay(node)
        return await handle.future
    if isinstance(node, (Wire, StateCheck)):
        return None  # a check reports; it does nothing to the lab
    await executor.directive(node)
    return None


def _end_matches(spec: str | None, label: str | None) -> bool:
    if spec is None:
        return True
    if label is None:
        return False
    return label == spec if "." in spec else label.split(".")[0] == spec


def segment_matches(segment: Segment, packet: AnyPacket) -> bool:
    """Whether a captured packet is the one a `~` line describes."""
    if segment.lost and not packet.lost:
        return False
    if segment.kind == "TCP":
        if packet.protocol != "TCP":
            return False
        if not set(segment.flags) <= set(packet.flags):
            return False
        if any(f in packet.flags and f not in segment.flags for f in ("SYN", "FIN", "RST")):
            return False
    elif segment.kind == "UDP":
        if packet.protocol != "UDP":
            return False
    else:
        if not packet.protocol.startswith("ICMP"):
            return False
        if segment.icmp and (packet.icmp or "").replace(" ", "-") != segment.icmp:
            return False
        # The kernel, not a lab socket, sends an ICMP error: only its destination is named.
        return _end_matches(segment.dst, packet.dst_label) and (
            segment.length is None or packet.length == segment.length
        )
    if segment.length is not None and packet.length != segment.length:
        return False
    if segment.window is not None and not (
        packet.window > segment.window if segment.window_above else packet.window == segment.window
    ):
        return False
    return _end_matches(segment.src, packet.src_label) and _end_matches(segment.dst, packet.dst_label)
