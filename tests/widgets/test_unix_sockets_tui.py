"""AF_UNIX sockets and socketpair in the TUI: the lab tree shows them by kind, state and path."""

from __future__ import annotations

from tests.widgets.helpers import ready, run_line, select, tree_text, wait_for
from widgets.app import SockplayApp

SIZE = (120, 40)


async def test_the_lab_tree_shows_unix_sockets_by_path_and_a_socketpair_as_connected() -> None:
    app = SockplayApp()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await run_line(pilot, "server: u = socket(unix)", "u = socket(unix) = 3")
        await run_line(pilot, 'server: bind(u, "srv.sock")', "= 0")
        await run_line(pilot, "server: listen(u, 4)", "listen(u, 4) = 0")
        await run_line(pilot, "client: c = socket(unix)", "c = socket(unix) = 3")
        await run_line(pilot, "client: connect(c, server.u)", "connect(c, server.u) = 0")
        await run_line(pilot, "client: x, y = socketpair(unix_dgram)", "x, y = socketpair(unix_dgram) = {4, 5}")
        await wait_for(pilot, lambda: "x fd 4" in tree_text(app), "the socketpair in the lab tree")
        text = tree_text(app)
        assert 'u fd 3 unix LISTEN "srv.sock"' in text, text
        assert "c fd 3 unix ESTABLISHED" in text and '↔ "srv.sock"' not in text.split("c fd 3")[0], text
        assert "x fd 4 unix_dgram CONNECTED" in text and "y fd 5 unix_dgram CONNECTED" in text, text
        await select(pilot, ("socket", "server", 3))  # the Inspector opens on it without failing
        await pilot.pause(0.1)
