"""Recording and replay in the TUI: the real app, the real engine, real processes on loopback."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from textual.widgets import ListView, OptionList

from playground.recording import sessions_dir
from playground.recording_list import list_sessions
from playground.script.format import format_node
from playground.script.model import Step
from playground.script.parser import parse_script
from tests.widgets.helpers import WAIT, command_line, connected_pair, ready, run_line, select, wait_for
from widgets.app import SockplayApp
from widgets.replay_screen import ReplayScreen, ReplaySource, SessionPickerScreen, StepRow

SIZE = (140, 44)
REPO = Path(__file__).resolve().parents[2]
SOCKPLAY = [sys.executable, "-m", "playground.cli"]

RECORDING = """\
# a hand-made recording
#@ kernel: {kernel}
sockplay 1
spawn server
spawn client
server: l = socket(tcp)                  = 3
server: bind(l, 127.0.0.1:0)             = 0
server: listen(l, 8)                     = 0
client: c = socket(tcp)                  = 3
client: connect(c, server.l)             = 0
server: a = accept(l)                    = 4
client: write(c, "hi")                   = 2
server: read(a, 10)                      = 2 "hi"
"""


def _write_recording(path: Path, kernel: str | None = None, tamper: bool = False) -> Path:
    text = RECORDING.format(kernel=kernel or os.uname().release)
    if tamper:
        text = text.replace(
            'client: write(c, "hi")                   = 2', 'client: write(c, "hi")                   = 5'
        )
    path.write_text(text)
    return path


def _steps(path: Path) -> list[str]:
    """Each step's call, as the script writes it, without delay or outcome."""
    script = parse_script(path.read_bytes(), str(path), allow_truncated_tail=True)
    return [
        format_node(replace(line.node, delay=None, expect=None, blocks=False))
        for line in script.steps()
        if isinstance(line.node, Step)
    ]


def _rows(app: SockplayApp) -> list[StepRow]:
    screen = app.screen_stack[0]
    assert isinstance(screen, ReplayScreen)
    return screen.rows


async def _replay_ready(pilot) -> ReplayScreen:
    app = pilot.app
    await wait_for(
        pilot,
        lambda: isinstance(app.screen_stack[0], ReplayScreen) and app.screen_stack[0].ready,
        "replay mode on a fresh lab",
    )
    return app.screen_stack[0]


async def test_a_tui_session_is_recorded_and_replays_clean(tmp_path):
    app = SockplayApp()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        path = app.recording.path
        assert path is not None and path.parent == sessions_dir()
        assert path.name in str(app.screen_stack[0].title) and "● rec" in str(app.screen_stack[0].title)
        await select(pilot, ("process", "server"))
        await pilot.press("n")  # a key: server: s = socket(tcp)
        await wait_for(pilot, lambda: "s = socket(tcp)" in path.read_text(), "the key's line in the recording")
        await connected_pair(pilot)  # F2: seven lines
        await run_line(pilot, 'client: write(c, "ping")')  # a typed line
        await run_line(pilot, "server: read(a, 10)")
        await wait_for(
            pilot,
            lambda: "read(a, 10)" in path.read_text() and '"ping"' in path.read_text(),
            "the typed lines in the recording",
        )
    text = path.read_text()
    assert "spawn server" in text and "spawn client" in text
    assert "server: s = socket(tcp)" in text and 'client: write(c, "ping")' in text
    assert [info.path for info in list_sessions()] == [path]
    done = subprocess.run(
        [*SOCKPLAY, "replay", "--check", str(path)], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr


async def test_no_record_and_record_path(tmp_path):
    chosen = tmp_path / "mine.sockplay"
    app = SockplayApp(record_path=chosen)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        assert app.recording.path == chosen
    assert "spawn server" in chosen.read_text()
    app = SockplayApp(record=False)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        assert app.recording.path is None and "not recording" in str(app.screen_stack[0].title)
    assert list_sessions() == []


async def test_step_through_a_recording_and_see_a_divergence(tmp_path):
    path = _write_recording(tmp_path / "tampered.sockplay", kernel="0.0.1-elsewhere", tamper=True)
    app = SockplayApp(replay=ReplaySource(path, speed=0.0))
    async with app.run_test(size=SIZE) as pilot:
        screen = await _replay_ready(pilot)
        rows = _rows(app)
        assert len(rows) == 10 and rows[0].state == "next"
        info = str(screen.query_one("#replay-info").render())
        assert "kernel 0.0.1-elsewhere" in info
        await pilot.press("f5")
        await wait_for(pilot, lambda: rows[0].state == "ok", "the first step")
        assert rows[1].state == "next" and rows[0].live == "spawn server"
        await pilot.press("f5")
        await pilot.press("f5")
        await wait_for(pilot, lambda: rows[2].state == "ok", "the socket step")
        assert "server: l = socket(tcp) = 3" in rows[2].plain
        assert "live: server: l = socket(tcp) = 3" in rows[2].plain
        # Run to the selected line, then the rest.
        screen.query_one("#replay-steps", ListView).index = 5
        await pilot.press("f6")
        await wait_for(pilot, lambda: rows[5].state == "ok" and rows[6].state == "next", "lines up to accept")
        await pilot.press("f7")
        await wait_for(pilot, lambda: all(row.state in ("ok", "diverged") for row in rows), "every line")
        assert rows[8].state == "diverged" and rows[8].has_class("-diverged")
        assert 'live: client: write(c, "hi") = 2' in rows[8].plain and "✗ DIVERGES" in rows[8].plain
        assert [row.state for row in rows].count("diverged") == 1
        assert "1 diverged" in str(screen.query_one("#replay-info").render())
        # Restart: a fresh lab, every row waiting again.
        old_lab = app.session.lab
        await pilot.press("f8")
        await wait_for(
            pilot, lambda: screen.ready and app.session.lab is not old_lab and rows[0].state == "next", "a fresh lab"
        )
        assert all(row.state == "waiting" for row in rows[1:])
    # Nobody took over: the replay's own recording is not kept.
    assert list_sessions() == []


async def test_take_over_records_a_new_session_that_begins_with_the_replayed_steps(tmp_path):
    path = _write_recording(tmp_path / "clean.sockplay")
    app = SockplayApp(replay=ReplaySource(path, speed=0.0))
    async with app.run_test(size=SIZE) as pilot:
        screen = await _replay_ready(pilot)
        rows = _rows(app)
        screen.query_one("#replay-steps", ListView).index = 7
        await pilot.press("f6")
        await wait_for(pilot, lambda: rows[7].state == "ok", "the replay up to accept")
        assert screen.check_action("command", ()) is None  # by hand only after taking over
        await pilot.press("n")  # a key for the lab by hand: the status line says why it does nothing
        hint = command_line(app).query_one("#command-hint")
        await wait_for(pilot, lambda: "the recording has the lab: take over (" in str(hint.render()), "the reason")
        await pilot.press("f9")
        await wait_for(pilot, lambda: screen.taken_over, "the take-over")
        assert screen.check_action("replay_step", ()) is None
        new = app.recording.path
        assert new is not None and new != path
        assert "● rec" in str(screen.title)
        await run_line(pilot, 'client: write(c, "more")')
        await run_line(pilot, "server: read(a, 10)")
        await wait_for(
            pilot,
            lambda: '"himore"' in new.read_text() or '"more"' in new.read_text(),
            "the live lines in the new recording",
        )
    replayed = _steps(path)[:6]
    assert _steps(new)[:6] == replayed
    assert _steps(new)[6:] == ['client: write(c, "more")', "server: read(a, 10)"]
    text = new.read_text()
    assert "spawn server" in text and "taken over by hand after line 11" in text
    assert [info.path for info in list_sessions()] == [new]
    done = subprocess.run(
        [*SOCKPLAY, "replay", "--check", str(new)], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr


async def test_open_a_recording_from_the_live_tui(tmp_path):
    directory = sessions_dir()
    directory.mkdir(parents=True, exist_ok=True)
    _write_recording(directory / "2020-01-01T00-00-00.sockplay")
    app = SockplayApp(record=False)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("ctrl+o")
        await wait_for(pilot, lambda: isinstance(app.screen, SessionPickerScreen), "the list of recordings")
        options = app.screen.query_one("#sessions-list", OptionList)
        assert options.option_count == 1
        assert "2020-01-01T00-00-00.sockplay" in str(options.get_option_at_index(0).prompt)
        await pilot.press("enter")
        screen = await _replay_ready(pilot)
        assert "server" not in app.session.lab.processes  # a fresh lab, not the live one
        await pilot.press("f7")
        await wait_for(pilot, lambda: all(row.state == "ok" for row in screen.rows), "the whole recording", WAIT * 2)


def test_record_options_on_the_default_command():
    from playground.cli.main import build_parser

    parser = build_parser()
    assert parser.parse_args(["--no-record"]).no_record is True
    assert parser.parse_args(["--record", "x.sockplay"]).record == "x.sockplay"
    assert parser.parse_args([]).record is None and parser.parse_args([]).no_record is False


async def test_open_a_recording_from_the_command_palette():
    app = SockplayApp(record=False)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        from textual.command import CommandPalette

        app.action_command_palette()
        await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette), "the command palette")
        await pilot.press(*"open recording")
        palette = app.screen
        await wait_for(pilot, lambda: palette.query_one("CommandList", OptionList).option_count > 0, "the hits")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, SessionPickerScreen), "the list of recordings")
