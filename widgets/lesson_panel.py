"""The lesson pane: the lesson's prose, its steps with the next one highlighted, and a chart of timings.

A view only: the app sets `run` and `lang` and calls `refresh_lesson()` after each step;
the pane never runs anything itself.
"""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from playground.session.lesson_run import DIVERGED, PASSED, RUNNING, LessonRun, Unit, is_check

__all__ = ["LessonPanel", "LatencyChart", "LABELS", "label"]

LABELS = {
    "en": {
        "lesson": "Lesson {number}",
        "step": "step {done} of {total}",
        "next": "Next",
        "passed": "as expected",
        "diverged": "DIVERGED from the lesson",
        "running": "running…",
        "done": "End of lesson {number}: {passed} of {total} steps as expected.",
        "runs": "run {done} of {count}",
        "chart": "Time per request (ms), one column per run, same scale",
        "median": "median {median:.3f} ms, max {high:.3f}",
        "check_ok": "check holds",
        "check_bad": "check fails",
        "keys": "{step}: run the next step · {lang_key}: 中文 · type your own lines with :",
    },
    "zh": {
        "lesson": "第 {number} 课",
        "step": "第 {done} 步，共 {total} 步",
        "next": "下一步",
        "passed": "符合预期",
        "diverged": "与课程预期不符",
        "running": "运行中……",
        "done": "第 {number} 课完：{total} 步中 {passed} 步符合预期。",
        "runs": "第 {done} 次，共 {count} 次",
        "chart": "每个请求的耗时（毫秒），每列一次，同一刻度",
        "median": "中位数 {median:.3f} 毫秒，最大 {high:.3f}",
        "check_ok": "核对通过",
        "check_bad": "核对失败",
        "keys": "{step}：运行下一步 · {lang_key}：English · 随时可以按 : 输入自己的语句",
    },
}

MARKS = {PASSED: "✓", DIVERGED: "✗", RUNNING: "…"}
BARS = " ▁▂▃▄▅▆▇█"
CHART_ROWS = 2


def label(lang: str, key: str, **values: object) -> str:
    return LABELS.get(lang, LABELS["en"])[key].format(**values)


def _unit_text(unit: Unit) -> str:
    head = unit.lines[0].text.strip()
    if unit.block is not None:
        inner = unit.block.lines
        return f"{head}  ({len(inner)} lines: {inner[0].text.strip()} …)"
    checks = sum(1 for line in unit.lines if is_check(line))
    return head + (f"  + {checks} check{'s' if checks > 1 else ''}" if checks else "")


def block_label(unit: Unit, lang: str) -> str:
    """A short name for a repeat block: the first clause of the prose that introduces it."""
    paras = unit.prose(lang, "before")
    if not paras:
        return f"repeat, line {unit.number}"
    text = paras[0]
    for stop in (":", "：", ".", "。", "，", ","):
        head = text.split(stop)[0]
        if len(head) < len(text):
            text = head
            break
    return text[:40]


class LatencyChart(Static):
    """Each repeat block's per-run durations as columns on one common scale, blocks side by side."""

    def show(self, run: LessonRun | None, lang: str) -> None:
        blocks = run.blocks() if run is not None else []
        self.display = bool(blocks)
        if not blocks:
            self.update("")
            return
        self.update(chart_text(blocks, lang))


def chart_text(blocks: list[Unit], lang: str) -> Text:
    top = max(max(u.runs_ms) for u in blocks) or 1.0
    out = Text()
    out.append(label(lang, "chart") + f"  (0 … {top:.1f} ms)\n", style="bold")
    for unit in blocks:
        ordered = sorted(unit.runs_ms)
        out.append(f"{block_label(unit, lang)}  ", style="italic")
        out.append(label(lang, "median", median=ordered[len(ordered) // 2], high=ordered[-1]) + "\n", style="dim")
        eighths = [round(v / top * CHART_ROWS * 8) for v in unit.runs_ms]
        for row in range(CHART_ROWS - 1, -1, -1):
            cells = "".join(BARS[max(0, min(8, e - row * 8))] for e in eighths)
            # Runs shorter than an eighth of a row still show as a floor, so no run is invisible.
            if row == 0:
                cells = "".join(c if c != " " else "▁" for c in cells)
            out.append(cells + "\n", style="bold")
    return out


class LessonPanel(Vertical):
    """Prose beside the lab and the log, the lesson's steps, and the chart of a lesson's timings."""

    DEFAULT_CSS = Path(__file__).with_name("lesson.tcss").read_text()  # the styles live in lesson.tcss

    def __init__(self, run: LessonRun, lang: str, step_key: str = "f5", lang_key: str = "f6", **kwargs) -> None:
        super().__init__(**kwargs)
        self.run = run
        self.lang = lang
        self.step_key = step_key
        self.lang_key = lang_key
        self.shown_prose: list[str] = []  # the paragraphs on show, for tests and screen readers

    def compose(self) -> ComposeResult:
        yield Static(id="lesson-title")
        with VerticalScroll(id="lesson-prose-scroll"):
            yield Static(id="lesson-prose")
        yield LatencyChart(id="lesson-chart")
        yield Static(id="lesson-progress")
        yield OptionList(id="lesson-steps")

    def on_mount(self) -> None:
        self.border_title = "Lesson"
        self.load(self.run, self.lang)

    def load(self, run: LessonRun, lang: str) -> None:
        """A new lesson (or the same in another language): rebuild the step list."""
        self.run, self.lang = run, lang
        steps = self.query_one("#lesson-steps", OptionList)
        steps.clear_options()
        steps.add_options([Option(self._step_prompt(unit), id=f"unit-{i}") for i, unit in enumerate(run.units)])
        self.refresh_lesson()

    def set_language(self, lang: str) -> None:
        self.load(self.run, lang)

    def _step_prompt(self, unit: Unit) -> Text:
        mark = MARKS.get(unit.status, " ")
        style = {PASSED: "green", DIVERGED: "bold red", RUNNING: "yellow"}.get(unit.status, "")
        text = Text(f"{mark} ", style=style)
        text.append(_unit_text(unit), style="dim" if unit.lines and is_check(unit.lines[0]) else "")
        if unit.block is not None and unit.status == RUNNING:
            text.append(f"  {label(self.lang, 'runs', done=unit.done_runs, count=unit.block.count)}", style="yellow")
        return text

    def unit_changed(self, index: int) -> None:
        """One unit's status or progress changed (cheap: only its row and the progress line)."""
        steps = self.query_one("#lesson-steps", OptionList)
        if 0 <= index < steps.option_count:
            steps.replace_option_prompt_at_index(index, self._step_prompt(self.run.units[index]))
        self._show_progress()

    def refresh_lesson(self) -> None:
        """Everything after a unit finished: rows, highlight, prose and chart."""
        run, lang = self.run, self.lang
        steps = self.query_one("#lesson-steps", OptionList)
        last = run.position - 1  # only the unit that just ran changed (rows are rebuilt by load())
        if 0 <= last < steps.option_count:
            steps.replace_option_prompt_at_index(last, self._step_prompt(run.units[last]))
        if not run.done:
            steps.highlighted = run.position
        lesson = run.lesson
        title = Text(f"{label(lang, 'lesson', number=lesson.number)} · {lesson.title_in(lang)}", style="bold")
        self.query_one("#lesson-title", Static).update(title)
        self.border_title = label(lang, "lesson", number=lesson.number)
        self._show_progress()
        self._show_prose()
        self.query_one(LatencyChart).show(run, lang)

    def _show_progress(self) -> None:
        run = self.run
        done = sum(1 for u in run.units if u.status in (PASSED, DIVERGED))
        text = Text(label(self.lang, "step", done=done, total=len(run.units)))
        bad = sum(1 for u in run.units if u.status == DIVERGED)
        if bad:
            text.append(f"  ✗ {bad}", style="bold red")
        text.append("   " + label(self.lang, "keys", step=self.step_key, lang_key=self.lang_key), style="dim")
        self.query_one("#lesson-progress", Static).update(text)

    def _show_prose(self) -> None:
        run, lang = self.run, self.lang
        out = Text()
        shown: list[str] = []

        def para(text: str, style: str = "") -> None:
            shown.append(text)
            out.append(text + "\n\n", style=style)

        last = run.last_unit
        if last is None:
            summary = run.lesson.summary_in(lang)
            if summary:
                para(summary, "italic")
            for p in run.lesson.intro.get(lang, []):
                para(p)
        else:
            out.append(_unit_text(last) + "\n", style="bold")
            if last.status == DIVERGED:
                out.append("✗ " + label(lang, "diverged") + "\n", style="bold red")
                for problem in last.problems:
                    out.append(f"  line {problem}\n", style="red")
            elif last.status == PASSED:
                out.append("✓ " + label(lang, "passed") + "\n", style="bold green")
            for text, held in last.checks:
                out.append(f"  {'✓' if held else '✗'} {text}\n", style="green" if held else "red")
            if last.block is None:  # a block's per-step figures are in the log; its chart is below
                for note in last.notes:
                    out.append(f"  {note}\n", style="dim")
            out.append("\n")
            for p in last.prose(lang, "after"):
                para(p)
        unit = run.next_unit
        if unit is not None:
            prose = unit.prose(lang, "before")
            out.append(f"{label(lang, 'next')} ▸ {_unit_text(unit)}\n", style="bold")
            for p in prose:
                para(p)
        else:
            for p in run.lesson.outro.get(lang, []):
                para(p)
            passed = sum(1 for u in run.units if u.status == PASSED)
            para(label(lang, "done", number=run.lesson.number, passed=passed, total=len(run.units)), "bold")
        self.shown_prose = shown
        self.query_one("#lesson-prose", Static).update(out)
        self.query_one("#lesson-prose-scroll", VerticalScroll).scroll_home(animate=False)
