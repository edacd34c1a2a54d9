"""Pilot tests: the real app on the real engine, real processes, real sockets on 127.0.0.1."""

from __future__ import annotations

import os

from rich.cells import cell_len
from textual.widgets import Input, Select, Switch

from tests.widgets.helpers import (
    command_line,
    connected_pair,
    events_pane,
    fresh_snapshot,
    log_line_with,
    log_lines,
    log_text,
    ready,
    run_line,
    select,
    tree_text,
    type_line,
    wait_for,
)
from widgets.app import SockplayApp
from widgets.event_log import line_cells
from widgets.help_screen import HelpScreen
from widgets.inspector_panels import QueueBar
from widgets.prompt import PromptScreen

SIZE = (120, 40)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


def _closed(app: SockplayApp, process: str, fd: int) -> bool:
    """The kernel reports the socket closed (TCP state 7), and the Lab pane shows that state."""
    sock = app.lab_view.socket(process, fd)
    return sock is not None and sock.state in ("CLOSE", "CLOSED") and f"fd {fd} tcp {sock.state} " in tree_text(app)


async def test_default_lab_and_hint():
    app = SockplayApp()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        text = tree_text(app)
        assert "server  pid" in text and "client  pid" in text
        for name in ("server", "client"):
            proc = app.session.lab.processes[name]
            assert proc.alive and _alive(proc.pid)
            assert f"pid {proc.pid}  running" in text
        await log_line_with(pilot, "Try F2: server listens, client connects")


async def test_spawn_from_the_ui():
    app = SockplayApp()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("p")
        await wait_for(pilot, lambda: isinstance(app.screen, PromptScreen), "the spawn dialog")
        field = app.screen.query_one("#prompt-input", Input)
        field.value = ""
        await pilot.press(*"relay", "enter")
        await wait_for(pilot, lambda: "relay  pid" in tree_text(app), "relay in the Lab pane")
        proc = app.session.lab.processes["relay"]
        assert proc.alive and _alive(proc.pid)
        await log_line_with(pilot, "relay     + started")


async def test_arrow_keys_move_the_lab_cursor_and_the_inspector_follows():
    app = SockplayApp()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await select(pilot, ("process", "server"))
        screen = app.screen_stack[0]
        screen.query_one("#lab-tree").focus()
        await pilot.press("down")
        await wait_for(pilot, lambda: screen.selected == ("process", "client"), "client selected")
        inspector = screen.query_one("#inspector")
        await wait_for(pilot, lambda: inspector.border_title == "Inspector · client", "the Inspector on client")
        await pilot.press("up")
        await wait_for(pilot, lambda: screen.selected == ("process", "server"), "server selected again")
        # In the command line the same keys walk the history, not the Lab pane.
        await run_line(pilot, "server: s = socket(tcp)", "s = socket(tcp) = 3")
        await pilot.press("colon", "up")
        field = command_line(app).input
        await wait_for(pilot, lambda: field.value == "server: s = socket(tcp)", "the last line from the history")
        assert screen.selected == ("process", "server")


async def test_socket_key_makes_a_socket_the_kernel_reports():
    app = SockplayApp()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await select(pilot, ("process", "server"))
        await pilot.press("n")
        await log_line_with(pilot, "s = socket(tcp) = 3")
        await wait_for(pilot, lambda: "s fd 3 tcp CLOSE" in tree_text(app), "the new socket in the Lab pane")
        snapshot = await fresh_snapshot(pilot)
        assert [s["fd"] for s in snapshot["server"]] == [3]
        assert snapshot["server"][0]["type"] == 1


async def test_options_toggled_by_visible_calls_and_read_back():
    app = SockplayApp()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await run_line(pilot, "server: s = socket(tcp)", "s = socket(tcp) = 3")
        await select(pilot, ("socket", "server", 3))
        switch = app.screen.query_one("#sw-TCP_NODELAY", Switch)
        assert switch.value is False
        switch.focus()
        await pilot.press("space")
        await log_line_with(pilot, "setsockopt(s, TCP_NODELAY, 1) = 0")
        await log_line_with(pilot, "getsockopt(s, TCP_NODELAY) = 1")
        snapshot = await fresh_snapshot(pilot)
        assert snapshot["server"][0]["options"]["TCP_NODELAY"] == 1
        await wait_for(pilot, lambda: "NODELAY" in tree_text(app), "the NODELAY badge")
        assert switch.value is True
        # An integer option: the kernel doubles SO_RCVBUF, and the field shows what it reads back.
        field = app.screen.query_one("#in-SO_RCVBUF", Input)
        field.focus()
        field.value = "4096"
        await pilot.press("enter")
        await log_line_with(pilot, "setsockopt(s, SO_RCVBUF, 4096) = 0")
        await log_line_with(pilot, "getsockopt(s, SO_RCVBUF) = 8192")
        await select(pilot, ("process", "server"))
        await select(pilot, ("socket", "server", 3))
        await wait_for(pilot, lambda: field.value == "8192", "SO_RCVBUF to show the kernel's 8192")
        # SO_LINGER {1, 0}: the switch turns it on with the seconds field's value.
        linger = app.screen.query_one("#sw-SO_LINGER", Switch)
        linger.focus()
        await pilot.press("space")
        await log_line_with(pilot, "getsockopt(s, SO_LINGER) = {1, 0}")
        await wait_for(pilot, lambda: "LINGER=0" in tree_text(app), "the LINGER badge")


async def test_connect_and_accept_with_keys():
    app = SockplayApp()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await select(pilot, ("process", "server"))
        await pilot.press("n")
        await wait_for(pilot, lambda: "s fd 3 tcp" in tree_text(app), "server's socket")
        await select(pilot, ("socket", "server", 3))
        await pilot.press("b")
        await log_line_with(pilot, "bind(s, 127.0.0.1:0) = 0")
        await pilot.press("l")
        await wait_for(pilot, lambda: "LISTEN" in tree_text(app), "the listener")
        await select(pilot, ("process", "client"))
        await pilot.press("n")
        await wait_for(pilot, lambda: app.screen.lab_view.socket("client", 3) is not None, "client's socket")
        await select(pilot, ("socket", "client", 3))
        await pilot.press("c")
        await log_line_with(pilot, "connect(s, server.s) = 0")
        await select(pilot, ("socket", "server", 3))
        await pilot.press("a")
        await log_line_with(pilot, "a = accept(s) = 4 from 127.0.0.1:")
        await wait_for(pilot, lambda: tree_text(app).count("ESTABLISHED") == 2, "both ends established")
        snapshot = await fresh_snapshot(pilot)
        server_a = next(s for s in snapshot["server"] if s["fd"] == 4)
        client_s = snapshot["client"][0]
        assert server_a["state"] == 1 and client_s["state"] == 1
        assert tuple(server_a["peer"]) == tuple(client_s["local"])


async def test_write_then_read_shows_queue_and_data():
    app = SockplayApp()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await connected_pair(pilot)
        await select(pilot, ("socket", "client", 3))
        app.screen.query_one("#data-field", Input).value = "ping\\n"
        await pilot.press("w")
        await log_line_with(pilot, 'write(c, "ping\\n") = 5')
        await select(pilot, ("socket", "server", 4))
        bar = app.screen.query_one("#recv-bar", QueueBar)
        await wait_for(pilot, lambda: bar.queued == 5, "5 bytes in server's receive queue")
        assert "in 5 B" in tree_text(app)
        await pilot.press("r")
        await log_line_with(pilot, 'read(a, 100) = 5 "ping\\n"')
        await wait_for(pilot, lambda: bar.queued == 0, "the receive queue to drain")
        snapshot = await fresh_snapshot(pilot)
        assert next(s for s in snapshot["server"] if s["fd"] == 4)["inq"] == 0


async def test_shutdown_wr_is_seen_by_the_peer():
    app = SockplayApp()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await connected_pair(pilot)
        await select(pilot, ("socket", "client", 3))
        await pilot.press("W")
        await log_line_with(pilot, "shutdown(c, SHUT_WR) = 0")
        # The tree follows the kernel: the server's end moves to CLOSE-WAIT with no user action, and
        # the client's to FIN-WAIT-2 once its FIN is acknowledged (a snapshot may come in between).
        await wait_for(pilot, lambda: "a fd 4 tcp CLOSE-WAIT" in tree_text(app), "server's a in CLOSE-WAIT")
        await wait_for(pilot, lambda: "c fd 3 tcp FIN-WAIT-2" in tree_text(app), "client's c in FIN-WAIT-2")
        await select(pilot, ("socket", "server", 4))
        await pilot.press("r")
        await log_line_with(pilot, "read(a, 100) = 0")
        await select(pilot, ("socket", "client", 3))
        await pilot.press("R")
        await log_line_with(pilot, "shutdown(c, SHUT_RD) = 0")
        await pilot.press("X")
        await log_line_with(pilot, "shutdown(c, SHUT_RDWR) = 0")


async def test_close_removes_the_socket_and_the_peer_sees_fin():
    app = SockplayApp()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await connected_pair(pilot)
        await select(pilot, ("socket", "client", 3))
        await pilot.press("x")
        await log_line_with(pilot, "close(c) = 0")
        await wait_for(pilot, lambda: "c fd 3" not in tree_text(app), "client's socket gone from the Lab pane")
        await wait_for(pilot, lambda: "a fd 4 tcp CLOSE-WAIT" in tree_text(app), "server's a in CLOSE-WAIT")
        # With the socket gone, the selection falls back to its process.
        await wait_for(pilot, lambda: app.screen.selected == ("process", "client"), "the selection on client")
        snapshot = await fresh_snapshot(pilot)
        assert snapshot["client"] == []


async def test_epipe_with_sigpipe_caught():
    app = SockplayApp()
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await ready(pilot)
        await connected_pair(pilot)
        await select(pilot, ("process", "server"))
        await pilot.press("P")
        await log_line_with(pilot, "signal(SIGPIPE, catch) = 0")
        await wait_for(
            pilot,
            lambda: app.screen.query_one("#disp-SIGPIPE", Select).value == "catch",
            "the SIGPIPE disposition shown as catch",
        )
        await run_line(pilot, "client: close(c)", "close(c) = 0")
        await run_line(pilot, 'server: write(a, "ping")', 'write(a, "ping") = 4')
        await wait_for(pilot, lambda: _closed(app, "server", 4), "the peer's RST (a closed by the kernel)")
        line = await run_line(pilot, 'server: write(a, "ping")', "EPIPE")
        assert "= -1 EPIPE (Broken pipe) ! SIGPIPE" in line
        assert line[21] == "!"  # drawn as a signal line
        await wait_for(
            pilot,
            lambda: any("caught SIGPIPE" in str(n.title) for n in app._notifications),
            "a notification of the caught SIGPIPE",
        )
        assert app.session.lab.processes["server"].alive
        assert "server  pid" in tree_text(app) and "running" in tree_text(app).splitlines()[0]


async def test_process_killed_by_sigpipe():
    app = SockplayApp()
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await ready(pilot)
        await connected_pair(pilot)
        await run_line(pilot, "client: close(c)", "close(c) = 0")
        await run_line(pilot, 'server: write(a, "ping")', 'write(a, "ping") = 4')
        await wait_for(pilot, lambda: _closed(app, "server", 4), "the peer's RST (a closed by the kernel)")
        await run_line(pilot, 'server: write(a, "ping")', "killed SIGPIPE")
        await wait_for(pilot, lambda: "killed SIGPIPE" in tree_text(app).splitlines()[0], "server shown killed")
        await wait_for(
            pilot,
            lambda: any("killed by SIGPIPE" in str(n.title) for n in app._notifications),
            "a notification of the death",
        )
        proc = app.session.lab.processes["server"]
        assert not proc.alive and str(proc.death) == "killed SIGPIPE"
        assert not _alive(proc.pid)
        # The death line is written when the death is reported, which may come after the call's line.
        await wait_for(pilot, lambda: "† killed SIGPIPE" in log_text(app), "the death line in the log")


async def test_blocking_read_completes_later_in_place():
    app = SockplayApp()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await connected_pair(pilot)
        await select(pilot, ("socket", "server", 4))
        await pilot.press("r")
        pending = await log_line_with(pilot, "(pending)")
        assert "read(a, 100) ..." in pending and pending[21] == "…"
        index = log_lines(app).index(pending)
        await wait_for(pilot, lambda: "⧗ read(a, 100)" in tree_text(app), "the tree to show server blocked")
        await run_line(pilot, 'client: write(c, "x")', 'write(c, "x") = 1')
        await wait_for(pilot, lambda: 'read(a, 100) = 1 "x"' in log_lines(app)[index], "the pending line completed")
        assert log_lines(app)[index][21] == "✓"
        await log_line_with(pilot, '↳ read(a, 100) = 1 "x"   (returned after')
        await wait_for(pilot, lambda: "⧗" not in tree_text(app), "server no longer blocked")


async def test_command_line_error_in_place_keeps_the_text():
    app = SockplayApp()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await type_line(pilot, "server: read(zz, 10)", keys=True)
        cl = command_line(app)
        await wait_for(pilot, lambda: cl.error is not None, "the error")
        column, message = cl.error
        assert column == 14 and "no socket named 'zz'" in message
        assert cl.input.value == "server: read(zz, 10)"
        hint = str(cl.query_one("#command-hint").render())
        assert "^ column 14:" in hint
        assert cl.input.cursor_position == len(cl.input.value)  # the caret marks the column; typing appends
        # A line the lab refuses (no column) is kept too.
        cl.input.value = "kill nobody"
        await pilot.press("enter")
        await wait_for(pilot, lambda: cl.error is not None and "nobody" in cl.error[1], "the unknown process")
        assert cl.input.value == "kill nobody"


async def test_colon_before_every_command_as_vim_users_type():
    """Issue 11: ':' before each line broke the second one (typed into the kept field, a parse error)."""
    app = SockplayApp()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        cl = command_line(app)
        await pilot.press("colon", *"server: s = socket(tcp)", "enter")
        await log_line_with(pilot, "s = socket(tcp) = 3")
        await wait_for(pilot, lambda: cl.input.value == "", "the first line to run")
        assert cl.input.has_focus  # focus stays in the command line after Enter
        # The second ':' lands in the empty command line: it does nothing there.
        await pilot.press("colon")
        assert cl.input.value == "" and cl.error is None
        await pilot.press(*"server: t = socket(udp)", "enter")
        await log_line_with(pilot, "t = socket(udp) = 4")
        await wait_for(pilot, lambda: cl.input.value == "", "the second line to run")
        assert cl.error is None
        # A ':' inside a line is typed as usual (PROC: before a call).
        await pilot.press(*"client: c = socket(tcp)")
        assert cl.input.value == "client: c = socket(tcp)"
        await pilot.press("enter")
        await log_line_with(pilot, "c = socket(tcp) = 3")
        await wait_for(pilot, lambda: cl.input.value == "", "the third line to run")
        # A line that starts with ':' (pasted, say) runs as if it did not.
        cl.input.value = ": client: d = socket(udp)"
        await pilot.press("end", "enter")
        await log_line_with(pilot, "d = socket(udp) = 4")
        await wait_for(pilot, lambda: cl.input.value == "", "the ':'-led line to run")
        assert cl.error is None
        # After a refused line, what is typed next goes after the kept text, not into its middle.
        await pilot.press(*"server: read(zz, 10)", "enter")
        await wait_for(pilot, lambda: cl.error is not None, "the error")
        assert cl.input.cursor_position == len(cl.input.value)
        await pilot.press("x")
        assert cl.input.value == "server: read(zz, 10)x"


def _status(app: SockplayApp) -> str:
    return str(command_line(app).query_one("#command-hint").render())


async def test_a_socket_key_on_a_process_says_why_in_the_status_line():
    """Issue 11: `w` with `server` selected did nothing at all; now the status line says why."""
    app = SockplayApp()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await select(pilot, ("process", "server"))
        await pilot.press("w")
        await wait_for(pilot, lambda: "acts on a socket" in _status(app), "the reason in the status line")
        assert "w (write)" in _status(app) and "server has none" in _status(app)
        await pilot.press("n")
        await log_line_with(pilot, "s = socket(tcp) = 3")
        await wait_for(pilot, lambda: "s  fd 3" in tree_text(app) or "fd 3" in tree_text(app), "the socket")
        await pilot.press("x")
        await wait_for(pilot, lambda: "select one of server's sockets" in _status(app), "the reason for x")
        assert "x (close)" in _status(app)
        assert "close(" not in log_text(app)  # nothing ran
        # A process key with a socket selected acts on the socket's process, as before.
        await select(pilot, ("socket", "server", 3))
        await pilot.press("n")
        await log_line_with(pilot, "s2 = socket(tcp) = 4")


async def test_command_line_default_actor_history_and_completion():
    app = SockplayApp()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await select(pilot, ("process", "client"))
        assert "client ›" in str(command_line(app).query_one("#command-prompt").render())
        await run_line(pilot, "c = socket(udp)", "c = socket(udp) = 3")
        assert "client" in (await log_line_with(pilot, "c = socket(udp)"))
        field = command_line(app).input
        assert field.has_focus
        await pilot.press(*"server: l = so", "tab")
        assert field.value == "server: l = socket"  # what socket and socketpair share
        await pilot.press("(", *"t", "tab")
        assert field.value == "server: l = socket(tcp"
        field.value = "setsockopt(c, SO_RCV"
        field.cursor_position = len(field.value)
        await pilot.press("tab")
        assert field.value.startswith("setsockopt(c, SO_RCV")
        assert "SO_RCVBUF" in str(command_line(app).query_one("#command-hint").render())
        field.value = ""
        await pilot.press("up")
        assert field.value == "c = socket(udp)"


async def test_filter_and_search_the_log():
    app = SockplayApp()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await connected_pair(pilot)
        await select(pilot, ("process", "client"))
        await pilot.press("F")
        await wait_for(pilot, lambda: events_pane(app).book.filter == ("client", None), "the filter")
        lines = [line for line in log_lines(app) if line[11:20].strip() not in ("lab",)]
        assert lines and all(line[11:20].strip() == "client" for line in lines)
        await pilot.press("F")
        await wait_for(pilot, lambda: any("server" in line[11:20] for line in log_lines(app)), "all lines again")
        await pilot.press("slash")
        await pilot.press(*"accept")
        pane = events_pane(app)
        await wait_for(pilot, lambda: pane.match_index is not None, "a match")
        assert "accept" in log_lines(app)[pane.match_index]
        await pilot.press("escape")
        await wait_for(pilot, lambda: pane.match_index is None, "the search to close")


async def test_help_screen_and_command_palette():
    app = SockplayApp()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), "the help screen")
        rows = app.screen.keys
        assert ("r", "read: read up to the size field's bytes", "sockplay.read") in rows
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, HelpScreen), "help to close")
        await pilot.press("ctrl+p")
        await pilot.press(*"connect a pair")
        from textual.command import CommandList

        await wait_for(
            pilot,
            lambda: (
                app.screen.query(CommandList)
                and "connect a pair" in str(app.screen.query_one(CommandList).get_option_at_index(0).prompt)
            ),
            "the palette's hit",
        )
        await pilot.press("enter")
        await wait_for(pilot, lambda: tree_text(app).count("ESTABLISHED") >= 2, "the pair made from the palette")


async def test_fork_dispositions_kill_and_waitpid():
    app = SockplayApp()
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await ready(pilot)
        await select(pilot, ("process", "server"))
        await pilot.press("C")
        await log_line_with(pilot, "signal(SIGCHLD, catch) = 0")
        await pilot.press("f")
        await log_line_with(pilot, "child = fork() = ")
        await wait_for(pilot, lambda: "child  pid" in tree_text(app), "the child under server")
        assert tree_text(app).splitlines()[1].startswith("  child")
        await select(pilot, ("process", "child"))
        await pilot.press("k")
        await wait_for(pilot, lambda: isinstance(app.screen, PromptScreen), "the signal dialog")
        await pilot.press("enter")
        await wait_for(pilot, lambda: "zombie" in tree_text(app), "the child a zombie")
        await log_line_with(pilot, "caught SIGCHLD")
        await select(pilot, ("process", "server"))
        await pilot.press("y")
        await log_line_with(pilot, "waitpid(-1, WNOHANG) = ")
        await wait_for(pilot, lambda: "killed SIGTERM" in tree_text(app), "the child reaped")


async def test_keymap_remaps_a_binding():
    app = SockplayApp(keymap={"sockplay.socket": "ctrl+n"})
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await select(pilot, ("process", "server"))
        await pilot.press("ctrl+n")
        await log_line_with(pilot, "s = socket(tcp) = 3")
        assert app.screen.key_names()["socket"] == "^n"


async def test_themes_apply():
    app = SockplayApp()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        before = app.palette.error
        app.theme = "textual-light"
        await wait_for(pilot, lambda: app.palette.error != before, "the palette to follow the theme")
        await connected_pair(pilot)


async def test_quit_ends_every_lab_process():
    app = SockplayApp()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await connected_pair(pilot)
        pids = [p.pid for p in app.session.lab.processes.values()]
        assert all(_alive(pid) for pid in pids)
        await pilot.press("ctrl+q")
    assert app.return_code == 0
    assert not any(os.path.exists(f"/proc/{pid}") for pid in pids)


async def test_log_stays_fast_with_100k_entries():
    app = SockplayApp(default_lab=False)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        book = app.session.book
        for i in range(100_000):
            book.note(f"synthetic event {i}", book.t0 + i * 1000)
        pane = events_pane(app)
        import time

        start = time.perf_counter()
        pane.flush()
        await pilot.pause()
        elapsed = time.perf_counter() - start
        assert len(log_lines(app)) >= 100_000
        assert elapsed < 2.0, f"writing 100k lines took {elapsed:.2f} s"
        start = time.perf_counter()
        await pilot.press("F")  # nothing selected: back to all, a full relist
        await pilot.pause()
        assert time.perf_counter() - start < 3.0


async def test_log_widens_for_its_widest_line():
    app = SockplayApp(default_lab=False)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        book = app.session.book
        log = events_pane(app).log_widget
        for text in ("x" * 300, "中" * 200, "tab\tthen text"):
            book.note(text, book.t0)
            events_pane(app).flush()
            widest = max(cell_len(log._process_line(line)) for line in log.lines)
            assert log.virtual_size.width == widest == max(map(line_cells, log.lines))
