"""`sockplay trace -- COMMAND ...`: the TUI on a lab whose one process is a traced program."""

from __future__ import annotations

import shutil
import sys

import pytest

from playground.cli.trace import process_name
from tests.widgets.helpers import log_line_with, ready, tree_text, wait_for
from widgets.app import SockplayApp

SIZE = (120, 40)
PROGRAM = "import socket, time; s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(); s.accept()"


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
async def test_the_program_is_the_labs_one_process_and_its_calls_reach_the_log() -> None:
    line = f'spawn watched exec --trace {sys.executable} -c "{PROGRAM}"'
    app = SockplayApp(default_lab=False, record=False, first_lines=(line,))
    app.session.allow_exec = True
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await wait_for(pilot, lambda: "watched  pid" in tree_text(app), "the program in the Lab pane")
        assert list(app.session.lab.processes) == ["watched"]
        await log_line_with(pilot, "#> listen(3, 128) = 0")
        await log_line_with(pilot, "#> accept4(3, ...)")  # blocked: shown pending


async def test_typed_programs_are_refused_unless_allowed() -> None:
    app = SockplayApp(default_lab=False, record=False, first_lines=("spawn x exec true",))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await log_line_with(pilot, "pass --allow-exec")
        assert "x" not in app.session.lab.processes


def test_a_command_gives_a_process_name() -> None:
    assert process_name("/usr/bin/Python3.11") == "python3-11"
    assert process_name("./9lives") == "prog-9lives"
    assert process_name("curl") == "curl"


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
async def test_watching_a_running_process_by_its_pid() -> None:
    import subprocess

    looper = (
        "import socket, time\nprint('ready', flush=True)\nwhile True:\n    socket.socket().close(); time.sleep(0.05)"
    )
    target = subprocess.Popen([sys.executable, "-c", looper], stdout=subprocess.PIPE, text=True)
    try:
        assert target.stdout is not None and target.stdout.readline() == "ready\n"
        app = SockplayApp(default_lab=False, record=False, host_network=True)
        app.session.allow_exec = True
        app.attach_to = ("looper", target.pid)
        async with app.run_test(size=SIZE) as pilot:
            await ready(pilot)
            await wait_for(pilot, lambda: f"looper  pid {target.pid}" in tree_text(app), "the process in the Lab pane")
            await log_line_with(pilot, "#> close(3) = 0")
        assert target.poll() is None  # watched, not owned: it runs on
    finally:
        target.kill()
        target.wait()
