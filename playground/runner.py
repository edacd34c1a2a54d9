"""Runs a parsed script on a lab, checking each stated outcome."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from playground.capture import Packet
from playground.claims import call_divergence, median_divergence, process_state
from playground.constants import DEFAULT_STEP_TIMEOUT
from playground.events import CallResult, Event, PacketsSeen, ProcessEnded, ProcessReaped, SignalCaught
from playground.exit_codes import EXIT_DIVERGED, EXIT_OK
from playground.lab import PENDING_AFTER, CallHandle, Lab, LabError
from playground.script.format import format_delay, format_node, format_outcome
from playground.script.model import (
    Completion,
    Line,
    Outcome,
    Repeat,
    Script,
    Segment,
    Sleep,
    StateCheck,
    Step,
    Wire,
)

# How long a `~` line waits for the segment it expects, and a `state` line for its state.
WIRE_WAIT = 1.0
STATE_WAIT = 1.0
# How long a step marked `...` is given to return before it counts as blocked.
BLOCK_GRACE = 0.05
# How many lines ahead a process's next step counts as coming soon (see `_following`).
LOOKAHEAD = 2


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


@dataclass
class RunReport:
    path: str
    steps: list[StepReport] = field(default_factory=list)

    @property
    def divergences(self) -> list[StepReport]:
        return [s for s in self.steps if s.divergence or s.error]

    @property
    def exit_code(self) -> int:
        return EXIT_DIVERGED if self.divergences else EXIT_OK


class Runner:
    """Executes lines in order on a lab; `on_step` sees each report as it is made."""

    def __init__(
        self,
        lab: Lab,
        step_timeout: float = DEFAULT_STEP_TIMEOUT,
        on_step: Callable[[StepReport], None] | None = None,
        speed: float | None = None,
    ) -> None:
        self.lab = lab
        self.step_timeout = step_timeout
        self.on_step = on_step
        self.speed = speed
        # `+DELAY` gaps are scaled by speed (0: none, 1: as written); `sleep` lines never are.
        self._speed = 1.0 if speed is None else speed
        self.settle_wire = False  # wait for each step's packets before reporting it (`--wire`)
        self._notes: list[str] = []
        self._blocked: dict[int, CallHandle] = {}
        # Packets seen since the current step began, and how far `~` lines have matched them.
        self._packets: list[Packet] = []
        self._wire_pos = 0
        self._step_start_ns = 0
        self._packet_arrived = asyncio.Event()
        # Whose lines come next (LOOKAHEAD of them), if the runner knows: the first is woken
        # while the current call runs, and all poll for their next request instead of
        # sleeping (a wake-up costs more than a step).
        self._following: tuple[str | None, ...] = ()
        lab.subscribe(self._observe)

    def _observe(self, event: Event) -> None:
        if isinstance(event, PacketsSeen):
            self._packets.extend(p for p in event.packets if p.t_ns >= self._step_start_ns)
            self._packet_arrived.set()
        elif isinstance(event, SignalCaught):
            self._notes.append(f"{event.process} caught {', '.join(event.signals)} between calls")
        elif isinstance(event, ProcessEnded):
            state = f"{event.death}" if event.death else "ended"
            tail = " (a zombie until its parent reaps it)" if event.zombie else ""
            self._notes.append(f"{event.process} {state}{tail}")
        elif isinstance(event, ProcessReaped) and event.by:
            self._notes.append(f"{event.by} reaped {event.process}")

    async def run(self, script: Script) -> RunReport:
        report = RunReport(script.path)
        for i, line in enumerate(script.lines):
            if isinstance(line.node, Repeat):
                report.steps.extend(await self.run_repeat(line))
            else:
                self._following = tuple(_actor(n.node) for n in script.lines[i + 1 : i + 1 + LOOKAHEAD])
                report.steps.append(await self.run_line(line))
        return report

    async def run_repeat(self, line: Line) -> list[StepReport]:
        block = line.node
        assert isinstance(block, Repeat)
        reports = []
        for i in range(1, block.count + 1):
            for j, inner in enumerate(block.lines):
                self._following = tuple(
                    _actor(block.lines[(j + k) % len(block.lines)].node) for k in range(1, LOOKAHEAD + 1)
                )
                reports.append(await self.run_line(inner, iteration=i, first=j == 0))
        closing = StepReport(line, "end", block_end=True, notes=summarize_repeat(block, reports))
        closing.divergence = repeat_divergence(block, reports)
        if self.on_step:
            self.on_step(closing)
        return reports + [closing] if closing.divergence else reports

    async def run_line(self, line: Line, iteration: int | None = None, first: bool = False) -> StepReport:
        node = line.node
        report = StepReport(line, line.text.strip(), iteration=iteration, first_in_block=first)
        try:
            if isinstance(node, Step):
                self._step_start_ns = time.monotonic_ns()
                self._packets, self._wire_pos = [], 0
                await self._step(node, report)
            elif isinstance(node, Wire):
                await self._wire(node, report)
            elif isinstance(node, StateCheck):
                await self._state(node, report)
            elif isinstance(node, Completion):
                await self._completion(node, report)
            else:
                delay = getattr(node, "delay", None)
                if delay:
                    await self._pause(delay)
                if isinstance(node, Sleep):
                    self.lab.check_sleep(node.seconds)
                await self.lab.run_node(dataclasses.replace(node, delay=None) if delay else node)
                report.text = format_node(node)
        except LabError as exc:
            report.error = str(exc)
            report.text = format_node(node) if not isinstance(node, (Step, Completion)) else _node_text(node)
        if self.settle_wire and isinstance(node, (Step, Completion)) and self.lab.capture is not None:
            await self.settle()
        # Deaths and signals are reported by the kernel asynchronously; give
        # the event loop one turn to deliver those this line may have caused.
        if not isinstance(node, Step) or report.result is None or report.result.outcome.death is not None:
            await asyncio.sleep(0)
        report.notes, self._notes = report.notes + self._notes, []
        if self.on_step:
            self.on_step(report)
        return report

    async def _pause(self, delay: float) -> None:
        """A `+DELAY`, scaled by speed and bounded by the lab's limit (LabError beyond it)."""
        seconds = delay * self._speed
        self.lab.check_sleep(seconds)
        await asyncio.sleep(seconds)

    async def _step(self, step: Step, report: StepReport) -> None:
        await self._step_without_delay(step, report)
        if step.delay:  # the line as it ran, `+DELAY` and all: the output is a script too
            report.text = format_delay(step.delay) + report.text

    async def _step_without_delay(self, step: Step, report: StepReport) -> None:
        report.process = step.actor
        report.call = step.call.name
        if step.delay:
            await self._pause(step.delay)
            step = dataclasses.replace(step, delay=None)
        following = self._following
        handle = self.lab.submit(
            step, spin=not step.blocks, linger=step.actor in following, wake=following[0] if following else None
        )
        if step.blocks:
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
            report.divergence = f"expected the call to block, but it returned {_outcome_text(result.outcome)} at once"
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
        report.text = format_node(step, result.outcome)  # the step has no delay left
        report.divergence = call_divergence(
            step.call.name, step.expect, step.timing, result, report.iteration is not None
        )

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

    async def _wire(self, wire: Wire, report: StepReport) -> None:
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
        deadline = time.monotonic() + WIRE_WAIT
        while True:
            for i in range(self._wire_pos, len(self._packets)):
                if segment_matches(wire.segment, self._packets[i]):
                    self._wire_pos = i + 1
                    report.notes.append(f"saw {self._packets[i].summary}")
                    return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                seen = "; ".join(p.summary for p in self._packets[self._wire_pos :]) or "no packet"
                report.divergence = f"expected {report.text[2:]}, saw {seen}"
                return
            self._packet_arrived.clear()
            try:
                await asyncio.wait_for(self._packet_arrived.wait(), remaining)
            except TimeoutError:
                pass

    async def _state(self, check: StateCheck, report: StepReport) -> None:
        """Poll the kernel (bounded) until the socket is in the stated state."""
        report.text = format_node(check)
        report.process = check.process
        if check.delay:
            await self._pause(check.delay)
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
        if check.var is not None:
            return await self.lab.socket_state(check.process, check.var)
        proc = self.lab.process(check.process)
        return process_state(proc.pid, proc.reaped)

    async def _completion(self, node: Completion, report: StepReport) -> None:
        assert node.actor is not None
        handle = self.lab.oldest_unstated(node.actor)
        report.process = node.actor
        if handle is None:
            report.error = f"{node.actor} has no blocked call whose outcome is still to be stated"
            report.text = _node_text(node)
            return
        handle.stated = True
        step = handle.node
        assert isinstance(step, Step)
        report.call = step.call.name
        if node.delay:
            await self._pause(node.delay)
        try:
            result = await asyncio.wait_for(asyncio.shield(handle.future), self.step_timeout)
        except TimeoutError:
            report.text = _node_text(node)
            report.divergence = (
                f"{node.actor}'s blocked {step.call.name} had not returned after {self.step_timeout:g} s"
            )
            return
        report.result = result
        report.text = format_node(Completion(node.actor, None, node.delay, node.timing), result.outcome)
        report.divergence = call_divergence(
            step.call.name, node.expect, node.timing, result, report.iteration is not None
        )


def _node_text(node: Step | Completion) -> str:
    return format_node(node)


def _outcome_text(outcome: Outcome) -> str:
    return format_outcome(outcome)


async def run_script(
    script: Script,
    allow_network: bool = False,
    step_timeout: float = DEFAULT_STEP_TIMEOUT,
    on_step: Callable[[StepReport], None] | None = None,
) -> RunReport:
    """Start a lab, run the script on it, shut the lab down."""
    lab = await Lab.start(allow_network=allow_network)
    try:
        return await Runner(lab, step_timeout, on_step).run(script)
    finally:
        await lab.shutdown()


def elapsed_ms(lab: Lab, t_ns: int) -> float:
    return (t_ns - lab.t0) / 1e6


def monotonic_ms() -> float:
    return time.monotonic_ns() / 1e6


SPARK = "▁▂▃▄▅▆▇█"
SPARK_WIDTH = 40  # characters at most: more runs than that share a character (their mean)


def sparkline(values: list[float], width: int = SPARK_WIDTH) -> str:
    """A one-line chart of values, low to high, at most `width` characters wide."""
    if not values:
        return ""
    if len(values) > width:
        bins = [values[len(values) * i // width : len(values) * (i + 1) // width] for i in range(width)]
        values = [sum(b) / len(b) for b in bins]
    low, high = min(values), max(values)
    span = high - low or 1.0
    return "".join(SPARK[min(len(SPARK) - 1, int((v - low) / span * len(SPARK)))] for v in values)


def summarize_repeat(block: Repeat, reports: list[StepReport]) -> list[str]:
    """One line per repeated step: its durations over the runs, as figures and a sparkline."""
    notes = []
    for inner in block.lines:
        durations = [r.result.duration_ns / 1e6 for r in reports if r.line is inner and r.result is not None]
        if not durations:
            continue
        ordered = sorted(durations)
        median = ordered[len(ordered) // 2]
        text = inner.text.strip().split(" = ")[0].split("...")[0].strip()
        if len(text) > 40:
            text = text[:39] + "…"
        notes.append(
            f"{text}: {len(durations)} runs, median {median:.3f} ms, min {ordered[0]:.3f}, max {ordered[-1]:.3f}  "
            f"{sparkline(durations)}"
        )
    return notes


def repeat_divergence(block: Repeat, reports: list[StepReport]) -> str | None:
    """The timing claims of a repeated block's lines, each checked against the median of its runs."""
    found = []
    for inner in block.lines:
        timing = getattr(inner.node, "timing", None)
        durations = [
            r.result.duration_ns
            for r in reports
            if r.line is inner and r.result is not None and r.result.outcome.death is None
        ]
        why = median_divergence(timing, durations)
        if why:
            found.append(f"line {inner.number}: {why}")
    return "; ".join(found) if found else None


def _actor(node: object) -> str | None:
    return getattr(node, "actor", None) if isinstance(node, (Step, Completion)) else None


def _end_matches(spec: str | None, label: str | None) -> bool:
    if spec is None:
        return True
    if label is None:
        return False
    return label == spec if "." in spec else label.split(".")[0] == spec


def segment_matches(segment: Segment, packet: Packet) -> bool:
    """Whether a captured packet is the one a `~` line describes."""
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
    return _end_matches(segment.src, packet.src_label) and _end_matches(segment.dst, packet.dst_label)
