"""The Lab pane shows thread actors under their process, with their TIDs and what they are blocked in."""

from __future__ import annotations

from tests.widgets.helpers import ready, run_line, select, tree_text, wait_for
from widgets.app import SockplayApp
from widgets.inspector import Inspector

SIZE = (120, 40)


async def test_threads_are_shown_under_their_process_and_take_typed_lines() -> None:
    app = SockplayApp()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await run_line(pilot, "server: u = socket(udp)")
        await run_line(pilot, "thread worker in server")
        thread = app.session.lab.threads["worker"]
        await wait_for(pilot, lambda: f"⎇ worker  tid {thread.tid}" in tree_text(app), "the thread in the Lab pane")
        lines = tree_text(app).splitlines()
        at = next(i for i, line in enumerate(lines) if "⎇ worker" in line)
        assert lines[at].startswith("  ") and "server  pid" in lines[at - 1]  # right under its process
        # Selected, the thread is the command line's actor: a bare call is the thread's.
        await select(pilot, ("thread", "worker"))
        await run_line(pilot, "poll(u, POLLIN, 20000)")
        await wait_for(
            pilot, lambda: "⎇ worker  tid" in tree_text(app) and "⧗ poll(u, POLLIN, 20000)" in tree_text(app), "⧗"
        )
        shown = next(line for line in tree_text(app).splitlines() if "⎇ worker" in line)
        assert "⧗ poll(u, POLLIN, 20000)" in shown
        assert "⧗" not in next(line for line in tree_text(app).splitlines() if "server  pid" in line)
        # The Inspector shows the thread's process: its descriptors, names and dispositions are the thread's.
        inspector = app.screen_stack[0].query_one(Inspector)
        await wait_for(pilot, lambda: inspector.border_title == "Inspector · worker, a thread of server", "the title")
        assert inspector.current == "process-panel"
