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
from playground.script.model import Completion, Line, Outcome, Script, Step

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
            step_report = await self.run_line(line)
            report.steps.append(step_report)
        return report

    async def run_line(self, line: Line) -> StepReport:
        node = line.node
        report = StepReport(line, line.text.strip())
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
        # the event loop one turn to deliver those this line caused.
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
        handle = self.lab.submit(step)
        if step.blocks:
            try:
                result = await asyncio.wait_for(asyncio.shield(handle.future), BLOCK_GRACE)
            except asyncio.TimeoutError:
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
        except asyncio.TimeoutError:
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
        except asyncio.TimeoutError:
            report.text = _node_text(node)
            report.divergence = f"{node.actor}'s blocked {step.call.name} had not returned after {self.step_timeout:g} s"
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
