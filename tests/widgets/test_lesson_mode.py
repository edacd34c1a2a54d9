"""Lesson mode in the TUI: the real app on the real engine, one lesson walked step by step."""

from __future__ import annotations

import pytest

from playground.lessons.catalog import Lesson, load_catalog, load_lesson
from playground.session.lesson_run import DIVERGED, PASSED, is_check
from tests.widgets.helpers import log_line_with, run_line, wait_for
from widgets.app import SockplayApp
from widgets.lesson_panel import LessonPanel, label

SIZE = (150, 45)
STEP_WAIT = 15.0  # a unit with `~`/`state` checks may wait up to a second per check


def _lesson(name: str = "1") -> Lesson:
    lesson = load_catalog().find(name)
    assert isinstance(lesson, Lesson)
    return lesson


def _app(lesson: Lesson, lang: str) -> SockplayApp:
    app = SockplayApp(default_lab=False)
    app.lesson_request = (lesson, lang)
    return app


async def _opened(pilot) -> LessonPanel:
    app = pilot.app
    await wait_for(pilot, lambda: app.lesson_panel is not None and app.lesson_run is not None, "the lesson pane")
    panel = app.lesson_panel
    assert panel is not None
    return panel


async def _step(pilot) -> None:
    """Press the step key and wait (bounded) until that unit has run."""
    app = pilot.app
    run = app.lesson_run
    before = run.position
    await wait_for(pilot, lambda: app.check_action("lesson_step", ()) is True, "the step key to be enabled")
    await pilot.press("f5")
    await wait_for(
        pilot, lambda: run.position == before + 1 and not app.lesson_busy, f"step {before + 1} to run", STEP_WAIT
    )


@pytest.mark.parametrize("lang", ["en", "zh"])
async def test_walk_lesson_1_from_first_step_to_last(lang):
    """Every step passes, its prose shows, and the learner's own lines in between do not break the lesson."""
    lesson = _lesson("1")
    app = _app(lesson, lang)
    async with app.run_test(size=SIZE) as pilot:
        panel = await _opened(pilot)
        run = app.lesson_run
        await wait_for(pilot, lambda: lesson.intro[lang][0] in panel.shown_prose, "the lesson's introduction")
        title = str(panel.query_one("#lesson-title").render())
        assert lesson.title_in(lang) in title
        first = run.units[0].prose(lang, "before")
        assert all(p in panel.shown_prose for p in first)
        for index, unit in enumerate(run.units):
            assert panel.query_one("#lesson-steps").highlighted == index
            await _step(pilot)
            assert unit.status == PASSED, f"line {unit.number} diverged: {unit.problems}"
            checks = [line for line in unit.lines if is_check(line)]  # `~` and `state` lines, shown as checks
            assert len(unit.checks) == len(checks) and all(held for _, held in unit.checks)
            if checks:
                assert f"✓ {unit.checks[0][0]}" in str(panel.query_one("#lesson-prose").render())
            shown = panel.shown_prose
            assert all(p in shown for p in unit.prose(lang, "after")), f"the why after line {unit.number}"
            following = run.next_unit
            if following is not None:
                assert all(p in shown for p in following.prose(lang, "before"))
            if "accept(l)" in unit.lines[0].text:
                # The learner's own calls, through the ordinary command line, that leave the lesson's state
                # as it was; the step key works right after them (focus is still in the command line).
                await run_line(pilot, "server: poll(a, POLLIN, 0)", "poll(a, POLLIN, 0) = 0")
                await run_line(pilot, "client: getsockopt(c, SO_SNDBUF)", "getsockopt(c, SO_SNDBUF)")
        assert run.done
        assert app.check_action("lesson_step", ()) is None  # shown, but nothing is left to run
        assert all(p in panel.shown_prose for p in lesson.outro[lang])
        total = len(run.units)
        assert panel.shown_prose[-1] == label(lang, "done", number=1, passed=total, total=total)
        # What ran is in the log too, as in the normal TUI.
        await log_line_with(pilot, 'write(c, "bye") = 3')


async def test_language_switch_in_the_app():
    lesson = _lesson("1")
    app = _app(lesson, "en")
    async with app.run_test(size=SIZE) as pilot:
        panel = await _opened(pilot)
        await pilot.press("f6")
        await wait_for(pilot, lambda: lesson.intro["zh"][0] in panel.shown_prose, "the Chinese introduction")
        assert lesson.title_in("zh") in str(panel.query_one("#lesson-title").render())
        await pilot.press("f6")
        await wait_for(pilot, lambda: lesson.intro["en"][0] in panel.shown_prose, "the English introduction")


async def test_an_altered_expected_outcome_shows_as_a_divergence(tmp_path):
    source = _lesson("1").path.read_text()
    wrong = "server: poll(a, POLLIN, 0)               = 1 POLLIN"
    assert source.count("server: poll(a, POLLIN, 0)               = 0\n") == 1
    path = tmp_path / "01-close-sends-fin.sockplay"
    path.write_text(source.replace("server: poll(a, POLLIN, 0)               = 0\n", wrong + "\n"))
    lesson = load_lesson(path)
    app = _app(lesson, "en")
    async with app.run_test(size=SIZE) as pilot:
        panel = await _opened(pilot)
        run = app.lesson_run
        target = next(i for i, u in enumerate(run.units) if u.lines[0].text.strip() == wrong)
        for _ in range(target + 1):
            await _step(pilot)
        unit = run.units[target]
        assert unit.status == DIVERGED
        assert all(u.status == PASSED for u in run.units[:target])
        assert unit.problems and "expected" in unit.problems[0]
        prose = str(panel.query_one("#lesson-prose").render())
        assert label("en", "diverged") in prose and "✗" in prose
        await log_line_with(pilot, "lesson line")
        # The lesson goes on after a divergence.
        await _step(pilot)
        assert run.units[target + 1].status == PASSED


async def test_pick_a_lesson_inside_the_app():
    app = SockplayApp()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(
            pilot, lambda: app.lab_ready.is_set() and "server" in app.session.lab.processes, "the default lab"
        )
        assert app.check_action("lesson_step", ()) is False  # no lesson: the key is not offered
        await pilot.press("f7")
        from textual.command import CommandPalette

        await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette), "the lesson list")
        await pilot.press(*"close", "enter")
        panel = await _opened(pilot)
        assert app.lesson_run.lesson.number == 1
        # A fresh lab: the lesson spawns its own server and client.
        assert app.session.lab.processes == {}
        await _step(pilot)
        assert app.lesson_run.units[0].status == PASSED
        assert panel.query_one("#lesson-steps").highlighted == 1


@pytest.mark.skipif(__import__("shutil").which("strace") is None, reason="strace is not installed")
async def test_lesson_25_runs_its_traced_client_in_the_tui_without_allow_exec():
    """sockplay's own lesson runs its program (the app was not given --allow-exec); its socket is client.3."""
    lesson = _lesson("watch-a-client")
    assert lesson.shipped
    app = _app(lesson, "en")
    assert not app.session.allow_exec
    async with app.run_test(size=SIZE) as pilot:
        await _opened(pilot)
        run = app.lesson_run
        while not run.done:
            await _step(pilot)
        assert [(u.number, u.problems) for u in run.units if u.status == DIVERGED] == []
        assert all(unit.status == PASSED for unit in run.units)
        assert "client" in app.session.lab.processes
