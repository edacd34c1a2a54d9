"""Lesson mode: a lesson's prose and steps beside the lab and the log, one key to run the next step.

`LessonMode` is mixed into SockplayApp: its bindings are app bindings (shown in the footer and
the palette whatever has focus, so the step key works right after a typed line), and its
worker runs each step with playground.runner.Runner on the app's own lab, so outcomes are
checked exactly as `sockplay lessons --check` checks them.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual.binding import Binding

from playground.constants import DEFAULT_LANGUAGE, LANGUAGES
from playground.exit_codes import EXIT_USAGE

if TYPE_CHECKING:  # loaded when a lesson opens, not before the app's first frame
    import asyncio

    from textual.app import App

    from playground.events import Event
    from playground.lessons.catalog import Lesson
    from playground.runner import Runner, StepReport
    from playground.session.lab_session import LabSession
    from playground.session.lesson_run import LessonRun
    from playground.session.recording import SessionRecording
    from widgets.lesson_panel import LessonPanel
    from widgets.main_screen import MainScreen

    _App = App[int]  # what the mixin finds on the app it is mixed into (SockplayApp)
else:
    _App = object

__all__ = ["LessonMode", "LESSON_BINDINGS", "run_lesson"]

LESSON_BINDINGS = [
    Binding(
        "f5",
        "lesson_step",
        "next step",
        id="sockplay.lesson.step",
        tooltip="run the lesson's next step and check its outcome (a repeat block runs whole)",
    ),
    Binding(
        "f6",
        "lesson_language",
        "中文/English",
        id="sockplay.lesson.language",
        tooltip="show the lesson's prose in the other language",
    ),
    Binding(
        "f7",
        "lesson_pick",
        "lessons",
        id="sockplay.lesson.pick",
        tooltip="choose a lesson from the catalog (starts a fresh lab)",
    ),
]
LESSON_ACTIONS = {"lesson_step", "lesson_language", "lesson_pick"}


class LessonMode(_App):
    """The app's lesson state and actions (mixed into SockplayApp, before App)."""

    if TYPE_CHECKING:  # SockplayApp's, which this is mixed into
        session: LabSession
        lab_ready: asyncio.Event
        recording: SessionRecording

        @property
        def main_screen(self) -> MainScreen:
            raise NotImplementedError

        def want_refresh(self) -> None: ...

        async def refresh_lab(self, show_now: bool = True) -> None: ...

        def _lab_event(self, event: Event) -> None: ...

    lesson_run: LessonRun | None = None
    lesson_lang: str = DEFAULT_LANGUAGE
    lesson_busy: bool = False
    lesson_request: tuple[Lesson, str] | None = None  # opened once the lab is ready
    _lesson_runner: Runner | None = None

    def on_mount(self) -> None:
        if self.lesson_request is not None:
            self.run_worker(self._open_requested(), group="lesson", exit_on_error=False)

    async def _open_requested(self) -> None:
        assert self.lesson_request is not None
        lesson, lang = self.lesson_request
        await self.open_lesson(lesson, lang)

    # Bindings.

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "lesson_step":
            if self.lesson_run is None:
                return False
            return None if self.lesson_busy or self.lesson_run.done else True
        if action == "lesson_language":
            return self.lesson_run is not None
        return super().check_action(action, parameters)

    @property
    def lesson_panel(self) -> LessonPanel | None:
        from widgets.lesson_panel import LessonPanel

        try:
            return self.main_screen.query_one(LessonPanel)
        except Exception:
            return None

    def action_lesson_step(self) -> None:
        if self.lesson_run is None or self.lesson_busy or self.lesson_run.done:
            return
        self.lesson_busy = True
        self.refresh_bindings()
        self.run_worker(self._run_unit(), group="lesson-step", exit_on_error=False)

    def action_lesson_language(self) -> None:
        if self.lesson_run is None:
            return
        self.lesson_lang = LANGUAGES[(LANGUAGES.index(self.lesson_lang) + 1) % len(LANGUAGES)]
        panel = self.lesson_panel
        if panel is not None:
            panel.set_language(self.lesson_lang)

    def action_lesson_pick(self) -> None:
        from textual.command import SimpleCommand

        from playground.lessons.catalog import load_catalog

        lang = self.lesson_lang
        commands = []
        for lesson in load_catalog().runnable():
            commands.append(
                SimpleCommand(
                    f"{lesson.number:>2}  {lesson.title_in(lang)}",
                    lambda lesson=lesson: self.start_lesson(lesson),
                    lesson.summary_in(lang),
                )
            )
        self.search_commands(commands, placeholder="lesson…")

    def start_lesson(self, lesson: Lesson, lang: str | None = None) -> None:
        """Open a lesson (from the palette or the lesson list), in a worker: it may restart the lab."""
        self.run_worker(
            self.open_lesson(lesson, lang),
            group="lesson",
            exclusive=True,
            exit_on_error=False,
        )

    # Opening a lesson.

    async def open_lesson(self, lesson: Lesson, lang: str | None = None) -> None:
        """Show the lesson and get a Runner on a lab with no processes yet (restarting it if it has any)."""
        from playground.session.lesson_run import LessonRun
        from widgets.lesson_panel import LessonPanel

        await self.lab_ready.wait()
        session = self.session
        if lang:
            self.lesson_lang = lang
        if session.process_count:
            await self._fresh_lab()
        self._lesson_runner = session.new_runner()
        if lesson.shipped:  # sockplay's own lesson: its program is ours (lesson 25's)
            session.allow_lesson_programs()
        self.lesson_run = LessonRun.of(lesson)
        self.lesson_busy = False
        session.book.note(f"lesson {lesson.number}: {lesson.title_in(self.lesson_lang)}", time.monotonic_ns())
        panel = self.lesson_panel
        if panel is None:
            body = self.main_screen.query_one("#body")
            await body.mount(LessonPanel(self.lesson_run, self.lesson_lang, id="lesson-panel"))
        else:
            panel.load(self.lesson_run, self.lesson_lang)
        self.main_screen.sub_title = lesson.title_in(self.lesson_lang)
        self.refresh_bindings()

    async def _fresh_lab(self) -> None:
        """End every process and start a new lab: a lesson's script spawns its own."""
        session = self.session
        await session.restart()
        session.on_event = self._lab_event
        session.start_recording(self.recording)  # the new lab is recorded too
        await self.refresh_lab()

    # Running a step.

    async def _run_unit(self) -> None:
        from playground.script.model import Repeat
        from playground.session.lesson_run import DIVERGED, PASSED, RUNNING

        run, runner = self.lesson_run, self._lesson_runner
        assert run is not None and runner is not None
        index, unit = run.position, run.next_unit
        assert unit is not None
        session = self.session
        panel = self.lesson_panel
        unit.status = RUNNING
        unit.problems.clear()
        unit.checks.clear()
        unit.notes.clear()
        if panel is not None:
            panel.unit_changed(index)
        last_inner = unit.block.lines[-1] if unit.block is not None else None

        def observe(report: StepReport) -> None:
            unit.record(report)
            if report.line is last_inner and panel is not None:
                panel.unit_changed(index)  # a block's progress: one row update per run

        await session.settle()  # lines the learner typed run first
        runner.on_step = observe
        try:
            for line in unit.lines:
                if isinstance(line.node, Repeat):
                    await runner.run_repeat(line, keep_last=0)
                else:
                    await runner.run_line(line)
        except Exception as exc:  # the lab failed under the step: a divergence, not a crash
            unit.problems.append(f"{unit.number}: {exc}")
        finally:
            runner.on_step = None
        unit.status = DIVERGED if unit.problems else PASSED
        now = time.monotonic_ns()
        for text, held in unit.checks:
            session.book.note(f"{'✓' if held else '✗'} {text}", now, "notice" if held else "diverged")
        for problem in unit.problems:
            session.book.note(f"lesson line {problem}", now, "diverged")
        for note in unit.notes:
            session.book.note(note, now)
        run.position = index + 1
        self.lesson_busy = False
        if panel is not None:
            panel.refresh_lesson()
        self.want_refresh()
        self.refresh_bindings()


def run_lesson(
    name: str,
    lang: str | None = None,
    allow_network: bool = False,
    host_network: bool = False,
    directory: str | Path | None = None,
) -> int:
    """`sockplay lesson NAME`: the TUI in lesson mode on a fresh lab; returns the exit code."""
    from playground.lessons.catalog import LESSONS_DIR, Lesson, load_catalog
    from widgets.app import SockplayApp

    catalog = load_catalog(LESSONS_DIR if directory is None else directory)
    lesson = catalog.find(name)
    if not isinstance(lesson, Lesson):
        print(f"sockplay: no runnable lesson named {name!r} (`sockplay lessons` lists them)", file=sys.stderr)
        return EXIT_USAGE
    options: dict[str, Any] = {"host_network": True} if host_network else {}  # only asked for when wanted
    app = SockplayApp(allow_network=allow_network, default_lab=False, **options)
    app.lesson_request = (lesson, lang or DEFAULT_LANGUAGE)
    app.run()
    return app.return_code or 0
