"""The Lab pane with hosts: each host with its address and state, its processes under it."""

from __future__ import annotations

from textual.widgets import Static

from tests.widgets.helpers import ready, select, tree_text, type_line, wait_for
from widgets.app import SockplayApp
from widgets.inspector import Inspector

SIZE = (120, 40)


async def test_hosts_show_their_address_state_cable_and_processes() -> None:
    app = SockplayApp()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await type_line(pilot, "host alpha 192.0.2.1")
        await wait_for(pilot, lambda: "alpha  192.0.2.1  up" in tree_text(app), "alpha in the Lab pane")
        await type_line(pilot, "spawn web on alpha")
        await wait_for(pilot, lambda: "web  pid" in tree_text(app), "web in the Lab pane")
        lines = tree_text(app).splitlines()
        host_line = next(i for i, line in enumerate(lines) if "alpha  192.0.2.1" in line)
        web_line = next(i for i, line in enumerate(lines) if "web  pid" in line)
        indent = len(lines[host_line]) - len(lines[host_line].lstrip(" │├└─"))
        assert web_line > host_line
        assert len(lines[web_line]) - len(lines[web_line].lstrip(" │├└─")) > indent  # under its host
        await type_line(pilot, "cable alpha out delay 100ms")
        await wait_for(pilot, lambda: "out: delay 100ms" in tree_text(app), "the cable's delay")
        await type_line(pilot, "cut alpha")
        await wait_for(pilot, lambda: "alpha  192.0.2.1  cut" in tree_text(app), "alpha cut")
        await select(pilot, ("host", "alpha"))
        inspector = app.query_one(Inspector)
        await wait_for(pilot, lambda: "host alpha" in str(inspector.border_title), "the Inspector")
        panel = inspector.query_one("#host-panel", Static)
        await wait_for(pilot, lambda: "address 192.0.2.1" in str(panel.render()), "the host panel")
        shown = str(panel.render())
        assert "cut" in shown and "out: delay 100ms" in shown and "sent " in shown and "delivered " in shown
        await type_line(pilot, "crash alpha")
        await wait_for(pilot, lambda: "alpha  192.0.2.1  crashed" in tree_text(app), "alpha crashed")
        await wait_for(pilot, lambda: "killed SIGKILL" in tree_text(app), "web killed by the crash")
        await type_line(pilot, "boot alpha")
        await wait_for(pilot, lambda: "alpha  192.0.2.1  up" in tree_text(app), "alpha up again")


async def test_the_palette_cuts_mends_crashes_and_boots_a_host() -> None:
    from textual.command import CommandList

    app = SockplayApp()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await type_line(pilot, "host beta 198.51.100.2")
        await wait_for(pilot, lambda: "beta  198.51.100.2  up" in tree_text(app), "beta in the Lab pane")
        for line, state in (("cut beta", "cut"), ("mend beta", "up"), ("crash beta", "crashed"), ("boot beta", "up")):
            await pilot.press("ctrl+p")
            await pilot.press(*f"host: {line}")
            await wait_for(
                pilot,
                lambda line=line: (
                    app.screen.query(CommandList)
                    and f"host: {line}" in str(app.screen.query_one(CommandList).get_option_at_index(0).prompt)
                ),
                f"the palette's {line}",
            )
            await pilot.press("enter")
            await wait_for(pilot, lambda state=state: f"beta  198.51.100.2  {state}" in tree_text(app), line)
