"""A lesson being walked through in the TUI: its units (what one key runs) and how each went.

UI-free: the app's lesson worker runs a unit's lines with playground.runner.Runner on the
app's lab, so a step is checked exactly as `sockplay lessons --check` checks it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from playground.lessons.catalog import Lesson, Paragraphs
from playground.runner import StepReport
from playground.script.model import Line, Repeat, StateCheck, Wire

__all__ = ["LessonRun", "Unit", "TODO", "RUNNING", "PASSED", "DIVERGED"]

TODO, RUNNING, PASSED, DIVERGED = "todo", "running", "passed", "diverged"


def is_check(line: Line) -> bool:
    """A `~` (wire) or `state` line: a check of what the step before it did."""
    return isinstance(line.node, (Wire, StateCheck))


@dataclass
class Unit:
    """What one press of the step key runs: a line with the checks after it, or a whole repeat block."""

    lines: list[Line]
    before: Paragraphs = field(default_factory=dict)
    after: Paragraphs = field(default_factory=dict)
    status: str = TODO
    problems: list[str] = field(default_factory=list)  # `LINE: expected ..., got ...`
    checks: list[tuple[str, bool]] = field(default_factory=list)  # each `~`/`state` line and whether it held
    notes: list[str] = field(default_factory=list)
    done_runs: int = 0  # a repeat block's runs so far
    runs_ms: list[float] = field(default_factory=list)  # a repeat block: each run's time inside its calls

    @property
    def block(self) -> Repeat | None:
        node = self.lines[0].node
        return node if isinstance(node, Repeat) else None

    @property
    def number(self) -> int:
        return self.lines[0].number

    def prose(self, lang: str, where: str) -> list[str]:
        table = self.before if where == "before" else self.after
        return list(table.get(lang, ()))

    def record(self, report: StepReport) -> None:
        """Take one line's report: a divergence, a check's verdict, a run of a block."""
        if report.block_end:
            self.notes.extend(report.notes)
            if report.divergence:  # a timing claim the runs' median breaks
                self.problems.append(f"{report.line.number}: {report.divergence}")
            return
        problem = report.divergence or report.error
        if problem:
            self.problems.append(f"{report.line.number}: {problem}")
        if is_check(report.line):
            self.checks.append((report.text, not problem))
        if report.iteration is not None and self.block is not None:
            inner = self.block.lines
            if report.line is inner[-1]:
                self.done_runs = report.iteration
            if report.result is not None:
                while len(self.runs_ms) < report.iteration:
                    self.runs_ms.append(0.0)
                self.runs_ms[report.iteration - 1] += report.result.duration_ns / 1e6


def _merge(into: Paragraphs, more: Paragraphs) -> None:
    for lang, paras in more.items():
        into.setdefault(lang, []).extend(paras)


@dataclass
class LessonRun:
    """A lesson's units in order and the index of the next one to run."""

    lesson: Lesson
    units: list[Unit]
    position: int = 0  # the next unit; == len(units) when the lesson is done

    @classmethod
    def of(cls, lesson: Lesson) -> LessonRun:
        units: list[Unit] = []
        for line in lesson.script.lines:
            step = lesson.step_at(line.number)
            if is_check(line) and units and units[-1].block is None:
                unit = units[-1]  # a check belongs with the step it checks
                unit.lines.append(line)
            else:
                unit = Unit([line])
                units.append(unit)
            if step is not None:
                _merge(unit.before, step.before)
                _merge(unit.after, step.after)
            if isinstance(line.node, Repeat):
                for inner in line.node.lines:
                    inner_step = lesson.step_at(inner.number)
                    if inner_step is not None:
                        _merge(unit.before, inner_step.before)
                        _merge(unit.after, inner_step.after)
        return cls(lesson, units)

    @property
    def done(self) -> bool:
        return self.position >= len(self.units)

    @property
    def next_unit(self) -> Unit | None:
        return None if self.done else self.units[self.position]

    @property
    def last_unit(self) -> Unit | None:
        return self.units[self.position - 1] if self.position > 0 else None

    def blocks(self) -> list[Unit]:
        """The repeat blocks run so far (for the chart)."""
        return [u for u in self.units if u.block is not None and u.runs_ms]
