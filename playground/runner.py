"""Runs a parsed script on a lab, checking each stated outcome (the lines run in playground.executor)."""

from __future__ import annotations

from array import array
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from playground.claims import median_divergence
from playground.constants import DEFAULT_STEP_TIMEOUT
from playground.executor import Executor, StepReport
from playground.exit_codes import EXIT_DIVERGED, EXIT_OK
from playground.lab import Lab
from playground.script.indexed import at_index
from playground.script.model import Completion, Line, Repeat, Script, Step

__all__ = ["DEFAULT_STEP_TIMEOUT", "Runner", "RunReport", "StepReport", "run_script", "sparkline"]

# How many lines ahead a process's next step counts as coming soon (see Executor.following).
LOOKAHEAD = 2


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


class Runner(Executor):
    """Executes a script's lines in order on a lab; `on_step` sees each report as it is made."""

    def __init__(
        self,
        lab: Lab,
        step_timeout: float = DEFAULT_STEP_TIMEOUT,
        on_step: Callable[[StepReport], None] | None = None,
        speed: float | None = None,
    ) -> None:
        super().__init__(lab, step_timeout, speed)
        self.on_step = on_step
        self.speed = speed

    async def run(self, script: Script) -> RunReport:
        report = RunReport(script.path)
        for i, line in enumerate(script.lines):
            if isinstance(line.node, Repeat):
                report.steps.extend(await self.run_repeat(line))
            else:
                self.following = tuple(_actor(n.node) for n in script.lines[i + 1 : i + 1 + LOOKAHEAD])
                report.steps.append(await self.run_line(line))
        return report

    async def run_repeat(self, line: Line, keep_last: int | None = None) -> list[StepReport]:
        """Run a repeat block; its reports, with a closing one if its timing claims fail.

        keep_last: keep only that many of the last reports, and every one that diverged or
        failed (the TUI's: 10,000 runs' reports, each with its call's raw result, would be
        dropped at the block's end, leaving the heap fragmented by what the lab kept meanwhile).
        """
        block = line.node
        assert isinstance(block, Repeat)
        kept: list[tuple[int, StepReport]] = []  # (the order it ran in, the report)
        last: deque[tuple[int, StepReport]] = deque(maxlen=keep_last)
        durations = BlockDurations(len(block.lines))
        for i in range(1, block.count + 1):
            for j, inner in enumerate(block.lines):
                self.following = tuple(
                    _actor(block.lines[(j + k) % len(block.lines)].node) for k in range(1, LOOKAHEAD + 1)
                )
                # `repeat N as i`: this run's line has `[i]` replaced by its number (0 to N-1), reported as the block's
                run = at_index(inner, block.var, i - 1) if block.var else inner
                report = await self.run_line(run, iteration=i, first=j == 0)
                report.line = inner
                durations.add(j, report)
                ran = (len(block.lines) * (i - 1) + j, report)
                if keep_last is None or report.divergence or report.error:
                    kept.append(ran)
                else:
                    last.append(ran)
        closing = StepReport(line, "end", block_end=True, notes=summarize_repeat(block, durations))
        closing.divergence = repeat_divergence(block, durations)
        if self.on_step:
            self.on_step(closing)
        reports = [report for _, report in sorted(kept + list(last), key=lambda ran: ran[0])]
        return reports + [closing] if closing.divergence else reports

    async def run_line(self, line: Line, iteration: int | None = None, first: bool = False) -> StepReport:
        report = await super().run_line(line, iteration, first)
        if self.on_step:
            self.on_step(report)
        return report


async def run_script(
    script: Script,
    allow_network: bool = False,
    step_timeout: float = DEFAULT_STEP_TIMEOUT,
    on_step: Callable[[StepReport], None] | None = None,
    allow_exec: bool = False,
) -> RunReport:
    """Start a lab, run the script on it, shut the lab down (allow_exec: let it run outside programs)."""
    lab = await Lab.start(allow_network=allow_network)
    lab.lifecycle.outside.allowed = allow_exec
    try:
        return await Runner(lab, step_timeout, on_step).run(script)
    finally:
        await lab.shutdown()


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


class BlockDurations:
    """Each line of a repeat block: the durations of its runs' calls (ns), and of those whose process lived on."""

    def __init__(self, lines: int) -> None:
        self.all = [array("q") for _ in range(lines)]
        self.lived = [array("q") for _ in range(lines)]

    def add(self, index: int, report: StepReport) -> None:
        result = report.result
        if result is None:
            return
        self.all[index].append(result.duration_ns)
        if result.outcome.death is None:
            self.lived[index].append(result.duration_ns)


def summarize_repeat(block: Repeat, runs: BlockDurations) -> list[str]:
    """One line per repeated step: its durations over the runs, as figures and a sparkline."""
    notes = []
    for inner, measured in zip(block.lines, runs.all, strict=True):
        durations = [ns / 1e6 for ns in measured]
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


def repeat_divergence(block: Repeat, runs: BlockDurations) -> str | None:
    """The timing claims of a repeated block's lines, each checked against the median of its runs."""
    found = []
    for inner, durations in zip(block.lines, runs.lived, strict=True):
        timing = getattr(inner.node, "timing", None)
        why = median_divergence(timing, list(durations))
        if why:
            found.append(f"line {inner.number}: {why}")
    return "; ".join(found) if found else None


def _actor(node: object) -> str | None:
    return getattr(node, "actor", None) if isinstance(node, (Step, Completion)) else None
