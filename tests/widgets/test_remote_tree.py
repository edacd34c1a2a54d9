"""The Lab pane with a remote host: the host with its destination, round trip and kernel, its processes under it."""

from __future__ import annotations

import asyncio
import time

from textual.widgets import Static

from tests.sshd import Sshd
from tests.widgets.helpers import ready, select, tree_text, type_line, wait_for
from widgets.app import SockplayApp
from widgets.inspector import Inspector

SIZE = (120, 40)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" │├└─"))


async def test_a_remote_host_is_a_node_with_its_processes_under_it(sshd: Sshd) -> None:
    app = SockplayApp(allow_network=True, host_network=True)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await type_line(pilot, "host far ssh remote")
        await wait_for(pilot, lambda: "far  ssh remote  not connected" in tree_text(app), "far, not yet connected")
        await type_line(pilot, "spawn web on far")
        await wait_for(pilot, lambda: "far  ssh remote  rtt " in tree_text(app), "far connected, with its round trip")
        await wait_for(pilot, lambda: "web  pid" in tree_text(app), "web in the Lab pane")
        lines = tree_text(app).splitlines()
        host_line = next(i for i, line in enumerate(lines) if line.lstrip().startswith("far  ssh remote"))
        web_line = next(i for i, line in enumerate(lines) if "web  pid" in line)
        assert "Linux" in lines[host_line]
        assert web_line > host_line and _indent(lines[web_line]) > _indent(lines[host_line])  # under its host
        assert " on far" not in lines[web_line]  # its place in the tree says so
        assert all(
            _indent(lines[i]) == _indent(lines[host_line]) for i, line in enumerate(lines) if "server  pid" in line
        )
        await select(pilot, ("remote", "far"))
        inspector = app.query_one(Inspector)
        await wait_for(pilot, lambda: "remote host far" in str(inspector.border_title), "the Inspector")
        shown = str(inspector.query_one("#host-panel", Static).render())
        assert "ssh remote" in shown and "round trip" in shown and "kernel" in shown and "python" in shown
    deadline = time.monotonic() + 15
    while sshd.agents_and_workers() and time.monotonic() < deadline:  # quitting ends every remote process
        await asyncio.sleep(0.05)
    assert sshd.agents_and_workers() == []
