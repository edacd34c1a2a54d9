"""`sockplay trace -- COMMAND ...`: the TUI on a lab whose one process is a traced program."""

from __future__ import annotations

import re
import shutil
import sys

import pytest

from playground.cli.trace import process_name
from tests.helpers import drawn_call
from tests.widgets.helpers import log_line_with, ready, run_line, select, tree_text, wait_for
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


# The course's graceful-shutdown client (lesson 25's), talking to a lab server on the lab's own network.
CLIENT = (
    "import socket\\ns = socket.create_connection(('127.0.0.1', 7025))\\nassert s.recv(100) == b'hi'\\n"
    "s.sendall(b'bye')\\ns.shutdown(socket.SHUT_WR)\\nwhile s.recv(100):\\n    pass\\ns.close()"
)
SERVER_AND_CLIENT = (
    "spawn server",
    "server: l = socket(tcp)",
    "server: bind(l, 127.0.0.1:7025)",
    "server: listen(l, 8)",
    f'spawn client exec --trace {sys.executable} -c "{CLIENT}"',
    "server: a = accept(l)",  # (blocks until the client's connect: the lines after it wait for it)
)


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
async def test_a_traced_clients_socket_is_in_the_tree_read_only_and_its_calls_in_the_ladder() -> None:
    from widgets.lab_tree import LabTree
    from widgets.ladder_view import LadderLines, LadderScreen

    app = SockplayApp(default_lab=False, record=False, first_lines=SERVER_AND_CLIENT)
    app.session.allow_exec = True
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        if app.session.lab.capture is None:
            pytest.skip(f"no packet capture here: {app.session.lab.capture_reason}")
        await log_line_with(pilot, "a = accept(l) = 4")
        await run_line(pilot, 'server: write(a, "hi")', 'write(a, "hi") = 2')
        # The client half-closed and waits for the answer: its socket, under it, as the kernel has it.
        # (FIN-WAIT-1 until the server's kernel acknowledges the FIN, which it may delay.)
        mine = re.compile(r"^  client\.3 fd 3 tcp FIN-WAIT-[12] 127\.0\.0\.1:\d+ ↔ 127\.0\.0\.1:7025", re.M)
        await wait_for(pilot, lambda: mine.search(tree_text(app)), "client.3 in FIN-WAIT under client", 20)
        assert "client  pid" in tree_text(app) and "outside program, read-only" in tree_text(app)
        await log_line_with(pilot, "client.3 > server.a FIN")  # its packets carry its socket's name
        # Read-only: a socket action on it is refused, and nothing is sent to the lab.
        await select(pilot, ("socket", "client", 3))
        tree = app.screen.query_one(LabTree)
        tree.focus()
        await wait_for(pilot, lambda: tree.has_focus, "the Lab pane to have focus")
        screen = app.screen
        assert screen.check_action("close", ()) is False
        assert "watched and never acted on" in (screen.unavailable_reason("close") or "")
        # The ladder of its connection: its calls beside its column, the server's beside the other.
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, LadderScreen), "the ladder screen")
        view = app.screen.query_one(LadderLines)
        for fragment in (
            "client.3",
            "server.a",
            "connect(3, 127.0.0.1:7025)",
        ):
            await wait_for(pilot, lambda f=fragment: f in view.plain, f"{fragment!r} in the ladder")
        # (a call with its segment inside it that ran a millisecond or more, as on a busy machine, is drawn
        # in two rows)
        for call in ("shutdown(3, SHUT_WR) = 0", 'write(a, "hi") = 2'):
            await wait_for(pilot, lambda c=call: drawn_call(view.plain, c), f"{call!r} in the ladder")
        # The server reads to end of file and closes: the client, which closed first, leaves a TIME-WAIT under it.
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, LadderScreen), "back on the main screen")
        for line in ("server: poll(a, POLLRDHUP, 1000)", "server: read(a, 100)", "server: read(a, 100)"):
            await run_line(pilot, line)
        await run_line(pilot, "server: close(a)", "close(a) = 0")
        gone = re.compile(
            r"^client  pid \d+  exited 0  outside program, read-only\n  client\.3 no fd tcp TIME-WAIT", re.M
        )
        await wait_for(pilot, lambda: gone.search(tree_text(app)), "client.3's TIME-WAIT under the ended client", 20)
