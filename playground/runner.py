"""Runs a parsed script on a lab, checking each stated outcome."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from playground.events import CallResult, Event, ProcessEnded, ProcessReaped, SignalCaught
from playground.lab import CallHandle, Lab, LabError
from playground.outcomes import divergence
from playground.script.format import format_node
from playground.script.model import Completion, Line, Outcome, Repeat, Script, Step

DEFAULT_STEP_TIMEOUT = 10.0
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


@dataclass
class RunReport:
    path: str
    steps: list[StepReport] = field(default_factory=list)

    @property
    def divergences(self) -> list[StepReport]:
        return [s for s in self.steps if s.divergence or s.error]

    @property
    def exit_code(self) -> int:
        return 1 if self.divergences else 0


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
        self._notes: list[str] = []
        self._blocked: dict[int, CallHandle] = {}
        lab.subscribe(self._observe)

    def _observe(self, event: Event) -> None:
        if isinstance(event, SignalCaught):
            self._notes.append(f"{event.process} caught {', '.join(event.signals)} between calls")
        elif isinstance(event, ProcessEnded):
            state = f"{event.death}" if event.death else "ended"
            tail = " (a zombie until its parent reaps it)" if event.zombie else ""
            self._notes.append(f"{event.process} {state}{tail}")
        elif isinstance(event, ProcessReaped) and event.by:
            self._notes.append(f"{event.by} reaped {event.process}")

    async def run(self, script: Script) -> RunReport:
        report = RunReport(script.path)
        for line in script.lines:
            if isinstance(line.node, Repeat):
                report.steps.extend(await self.run_repeat(line))
            else:
                report.steps.append(await self.run_line(line))
        return report

    async def run_repeat(self, line: Line) -> list[StepReport]:
        block = line.node
        assert isinstance(block, Repeat)
        reports = []
        for i in range(1, block.count + 1):
            for j, inner in enumerate(block.lines):
                reports.append(await self.run_line(inner, iteration=i, first=j == 0))
        closing = StepReport(line, "end", block_end=True, notes=summarize_repeat(block, reports))
        if self.on_step:
            self.on_step(closing)
        return reports

    async def run_line(self, line: Line, iteration: int | None = None, first: bool = False) -> StepReport:
        node = line.node
        report = StepReport(line, line.text.strip(), iteration=iteration, first_in_block=first)
        try:
            if isinstance(node, Step):
                await self._step(node, report)
            elif isinstance(node, Completion):
                await self._completion(node, report)
            else:
                if getattr(node, "seconds", None) is not None and self.speed is not None:
                    await asyncio.sleep(node.seconds * self.speed)  # type: ignore[union-attr]
                else:
                    await self.lab.run_node(node)
                report.text = format_node(node)
        except LabError as exc:
            report.error = str(exc)
            report.text = format_node(node) if not isinstance(node, (Step, Completion)) else _node_text(node)
        # Deaths and signals are reported by the kernel asynchronously; give
        # the event loop one turn to deliver those this line may have caused.
        if not isinstance(node, Step) or report.result is None or report.result.outcome.death is not None:
            await asyncio.sleep(0)
        report.notes, self._notes = self._notes, []
        if self.on_step:
            self.on_step(report)
        return report

    async def _step(self, step: Step, report: StepReport) -> None:
        report.process = step.actor
        report.call = step.call.name
        if step.delay:
            await asyncio.sleep(step.delay * (self.speed if self.speed is not None else 1.0))
        handle = self.lab.submit(step, spin=not step.blocks)
        if step.blocks:
            try:
                result = await asyncio.wait_for(asyncio.shield(handle.future), BLOCK_GRACE)
            except TimeoutError:
                report.text = format_node(step, pending=True)
                return
            handle.stated = True
            report.result = result
            report.text = format_node(step, result.outcome)
            report.divergence = f"expected the call to block, but it returned {_outcome_text(result.outcome)} at once"
            return
        self.lab._spin_for(handle)
        try:
            result = await asyncio.wait_for(asyncio.shield(handle.future), self.step_timeout)
        except TimeoutError:
            handle.pending = True
            report.text = format_node(step, pending=True)
            report.divergence = (
                f"still blocked after {self.step_timeout:g} s; end the line with '...' if it is meant to block"
            )
            return
        report.result = result
        report.text = format_node(step, result.outcome)
        if step.expect is not None:
            report.divergence = divergence(step.call.name, step.expect, result.outcome)

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
            await asyncio.sleep(node.delay)
        try:
            result = await asyncio.wait_for(asyncio.shield(handle.future), self.step_timeout)
        except TimeoutError:
            report.text = _node_text(node)
            report.divergence = (
                f"{node.actor}'s blocked {step.call.name} had not returned after {self.step_timeout:g} s"
            )
            return
        report.result = result
        report.text = format_node(Completion(node.actor, None, node.delay), result.outcome)
        if node.expect is not None:
            report.divergence = divergence(step.call.name, node.expect, result.outcome)


def _node_text(node: Step | Completion) -> str:
    return format_node(node)


def _outcome_text(outcome: Outcome) -> str:
    from playground.script.format import format_outcome

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


def sparkline(values: list[float]) -> str:
    """A one-line chart of values, low to high."""
    if not values:
        return ""
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
