"""Runs lessons headless against the live kernel and says whether each one holds."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from playground.lab import Lab
from playground.lessons.catalog import Lesson
from playground.runner import DEFAULT_STEP_TIMEOUT, Runner, RunReport, StepReport, sparkline
from playground.script.model import Line, Repeat


@dataclass
class StepTiming:
    """The durations of one step of a repeat block, over all its runs."""

    block: Line  # the `repeat` line
    line: Line
    durations_ms: list[float]

    @property
    def median_ms(self) -> float:
        ordered = sorted(self.durations_ms)
        return ordered[len(ordered) // 2] if ordered else 0.0

    def describe(self) -> str:
        text = self.line.text.strip().split(" = ")[0].strip()
        return (
            f"line {self.line.number}: {text}: median {self.median_ms:.3f} ms over {len(self.durations_ms)} runs"
            f"  {sparkline(self.durations_ms)}"
        )


@dataclass
class BlockTiming:
    """A repeat block's runs: how long each spent inside its calls."""

    block: Line
    runs_ms: list[float]

    def describe(self) -> str:
        ordered = sorted(self.runs_ms)
        median = ordered[len(ordered) // 2]
        return (
            f"repeat on line {self.block.number}: {len(ordered)} runs, median {median:.3f} ms a run "
            f"(min {ordered[0]:.3f}, max {ordered[-1]:.3f})  {sparkline(self.runs_ms)}"
        )


@dataclass
class LessonCheck:
    """How one lesson ran: its report, the repeat blocks' timing summaries, the wall time."""

    lesson: Lesson
    report: RunReport | None = None
    seconds: float = 0.0
    summaries: list[str] = field(default_factory=list)  # one line per step of each repeat block
    error: str | None = None  # the lab could not start or the run failed as a whole

    @property
    def holds(self) -> bool:
        return self.error is None and self.report is not None and not self.report.divergences

    def timings(self) -> list[StepTiming]:
        """Every repeated step's durations, block by block."""
        if self.report is None:
            return []
        out = []
        for block in self.lesson.script.lines:
            if not isinstance(block.node, Repeat):
                continue
            for inner in block.node.lines:
                durations = [
                    r.result.duration_ns / 1e6 for r in self.report.steps if r.line is inner and r.result is not None
                ]
                if durations:
                    out.append(StepTiming(block, inner, durations))
        return out

    def blocks(self) -> list[BlockTiming]:
        """Each repeat block's runs, timed as the sum of the calls' own durations in that run."""
        if self.report is None:
            return []
        out = []
        for block in self.lesson.script.lines:
            if not isinstance(block.node, Repeat):
                continue
            inner = {id(line) for line in block.node.lines}
            runs: dict[int, float] = {}
            for step in self.report.steps:
                if id(step.line) in inner and step.result is not None and step.iteration is not None:
                    runs[step.iteration] = runs.get(step.iteration, 0.0) + step.result.duration_ns / 1e6
            if runs:
                out.append(BlockTiming(block, [runs[i] for i in sorted(runs)]))
        return out

    @property
    def steps_run(self) -> int:
        return len(self.report.steps) if self.report else 0

    def problems(self) -> list[str]:
        """One line per divergence: `FILE:LINE: what was expected, what happened`."""
        if self.error:
            return [f"{self.lesson.path.name}: {self.error}"]
        assert self.report is not None
        return [
            f"{self.lesson.path.name}:{step.line.number}: {step.divergence or step.error}"
            for step in self.report.divergences
        ]


async def check_lesson(
    lesson: Lesson,
    step_timeout: float = DEFAULT_STEP_TIMEOUT,
    on_step: Callable[[StepReport], None] | None = None,
    host_network: bool = False,
    allow_exec: bool | None = None,
) -> LessonCheck:
    """Run one lesson's script on a fresh lab; every stated outcome is checked.

    Its outside programs (`spawn NAME exec ...`) run if it is one of sockplay's own lessons, or if allow_exec says so.
    """
    check = LessonCheck(lesson)

    def observe(report: StepReport) -> None:
        if report.block_end:
            check.summaries.extend(report.notes)
        if on_step is not None:
            on_step(report)

    start = time.monotonic()
    # Only ask for the host's loopback when told to, so this works with labs that have no such choice.
    options: dict[str, Any] = {"host_network": True} if host_network else {}
    try:
        lab = await Lab.start(**options)
    except Exception as exc:  # any failure to start is reported, not raised
        check.error = f"the lab could not start: {exc}"
        return check
    lab.lifecycle.outside.allowed = lesson.shipped if allow_exec is None else allow_exec
    try:
        check.report = await Runner(lab, step_timeout, observe).run(lesson.script)
    finally:
        await lab.shutdown()
        check.seconds = time.monotonic() - start
    return check
