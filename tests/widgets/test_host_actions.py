"""Keys, palette entries and the cable form for the network lab's hosts."""

from __future__ import annotations

from textual.widgets import Input

from playground.session.view import HostView, LabView
from tests.widgets.helpers import ready, select, tree_text, wait_for
from widgets.app import SockplayApp
from widgets.cable_form import CableForm, cable_line, current_settings
from widgets.command_line import CommandLine
from widgets.host_actions import next_host

SIZE = (80, 24)


def test_the_form_writes_the_cable_line_a_script_would() -> None:
    assert cable_line("beta", "both", {"delay": "100ms", "loss": " 5% "}) == "cable beta delay 100ms loss 5%"
    assert cable_line("beta", "out", {"rate": "1mbit", "jitter": "10ms"}) == "cable beta out jitter 10ms rate 1mbit"
    assert cable_line("beta", "in", {"delay": "  "}) == "cable beta clear"
    cable = (("in", "delay 100ms"), ("out", "delay 100ms loss 5%"))
    host = HostView("beta", "192.0.2.2", "02:00:00:00:00:02", "up", cable)
    assert current_settings(host, "both") == {"delay": "100ms"}
    assert current_settings(host, "out") == {"delay": "100ms", "loss": "5%"}


def test_a_new_host_gets_a_name_and_an_address_nobody_has() -> None:
    assert next_host(LabView()) == "alpha 192.0.2.1"
    taken = (HostView("alpha", "192.0.2.1", "m", "up"), HostView("beta", "192.0.2.2", "m", "up"))
    assert next_host(LabView(hosts=taken)) == "gamma 192.0.2.3"


async def test_keys_add_a_host_cut_mend_crash_boot_and_impair_its_cable_at_80x24() -> None:
    app = SockplayApp()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        screen = app.screen
        await pilot.press("T")  # no host yet: the status line says why
        hint = screen.query_one(CommandLine).query_one("#command-hint")
        await wait_for(pilot, lambda: "has none yet" in str(hint.render()), "why T does nothing")
        await pilot.press("H")
        await wait_for(pilot, lambda: app.screen.query("#prompt-input"), "the new-host prompt")
        assert app.screen.query_one("#prompt-input", Input).value == "alpha 192.0.2.1"
        await pilot.press("enter")
        await wait_for(pilot, lambda: "alpha  192.0.2.1  up" in tree_text(app), "alpha in the Lab pane")
        await select(pilot, ("host", "alpha"))
        for key, state in (("T", "cut"), ("T", "up"), ("O", "crashed"), ("O", "up")):
            await pilot.press(key)
            await wait_for(pilot, lambda state=state: f"alpha  192.0.2.1  {state}" in tree_text(app), f"{key}: {state}")
        await pilot.press("I")
        await wait_for(pilot, lambda: isinstance(app.screen, CableForm), "the cable form")
        form = app.screen
        box = form.query_one("#cable-box").region
        assert box.height <= 24 and all(box.contains_region(field.region) for field in form.query(Input))
        form.query_one("#cable-delay", Input).value = "100ms"
        form.query_one("#cable-loss", Input).value = "5%"
        form.query_one("#cable-delay", Input).focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: "delay 100ms loss 5%" in tree_text(app), "the cable's impairments")
        await pilot.press("I")
        await wait_for(pilot, lambda: isinstance(app.screen, CableForm), "the cable form again")
        assert app.screen.query_one("#cable-delay", Input).value == "100ms"  # it shows what the cable has
        await pilot.click("#cable-clear")
        await wait_for(pilot, lambda: "delay" not in tree_text(app), "the cable cleared")
