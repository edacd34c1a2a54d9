"""Runs lessons headless against the live kernel and says whether each one holds."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from playground.lab import Lab
from playground.lessons.catalog import Lesson
from playground.runner import DEFAULT_STEP_TIMEOUT, Runner, RunReport, StepReport


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

    @property
    def steps_run(self) -> int:
        return len(self.report.steps) if self.report else 0

    def problems(self) -> list[str]:
        """One line per divergence: `FILE:LINE: what was expected, what happened`."""
        if self.error:
            return [f"{self.lesson.path.name}: {self.error}"]
        assert self.report is not None
        return [f"{self.lesson.path.name}:{step.line.number}: {step.divergence or step.error}"
                for step in self.report.divergences]


async def check_lesson(
    lesson: Lesson,
    step_timeout: float = DEFAULT_STEP_TIMEOUT,
    on_step: Callable[[StepReport], None] | None = None,
    host_network: bool = False,
) -> LessonCheck:
    """Run one lesson's script on a fresh lab; every stated outcome is checked."""
    check = LessonCheck(lesson)

    def observe(report: StepReport) -> None:
        if report.block_end:
            check.summaries.extend(report.notes)
        if on_step is not None:
            on_step(report)

    start = time.monotonic()
    # Only ask for the host's loopback when told to, so this works with labs that have no such choice.
    options = {"host_network": True} if host_network else {}
    try:
        lab = await Lab.start(**options)
    except Exception as exc:  # any failure to start is reported, not raised
        check.error = f"the lab could not start: {exc}"
        return check
    try:
        check.report = await Runner(lab, step_timeout, observe).run(lesson.script)
    finally:
        await lab.shutdown()
        check.seconds = time.monotonic() - start
    return check
