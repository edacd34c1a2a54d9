"""A small form for a host's cable: which way, and each impairment (delay, jitter, loss, ...).

It writes the `cable` line a script would (`cable beta out delay 100ms loss 5%`), so what it does
shows in the log and the recording like a typed line; an empty form writes `cable beta clear`.
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select

from playground.session.view import HostView

__all__ = ["SETTINGS", "CableForm", "cable_line", "current_settings"]

# (setting, an example of its value): the switch's impairments, in the order a cable line writes them.
SETTINGS = (
    ("delay", "100ms"),
    ("jitter", "10ms"),
    ("loss", "5%"),
    ("duplicate", "1%"),
    ("reorder", "25%"),
    ("rate", "1mbit"),
)
_DIRECTIONS = (("both ways", "both"), ("into the host (in)", "in"), ("out of the host (out)", "out"))


def current_settings(host: HostView, direction: str) -> dict[str, str]:
    """What the host's cable has now in that direction (both: what in and out share)."""
    per_way: dict[str, dict[str, str]] = {}
    for way, settings in host.cable:
        words = settings.split()
        per_way[way] = dict(zip(words[::2], words[1::2], strict=False))
    if direction == "both":
        ins, outs = per_way.get("in", {}), per_way.get("out", {})
        return {key: value for key, value in ins.items() if outs.get(key) == value}
    return per_way.get(direction, {})


def cable_line(host: str, direction: str, values: dict[str, str]) -> str:
    """The line the form's values make: `cable HOST [in|out] SETTING VALUE ...`, or `cable HOST clear`."""
    words = [f"{name} {values[name].strip()}" for name, _ in SETTINGS if values.get(name, "").strip()]
    if not words:
        return f"cable {host} clear"
    way = "" if direction == "both" else f" {direction}"
    return f"cable {host}{way} " + " ".join(words)


class CableForm(ModalScreen[str | None]):
    """Enter (or Apply) gives the cable line; Clear gives `cable HOST clear`; Esc cancels."""

    BINDINGS = [Binding("escape", "cancel", "cancel", id="sockplay.cable.cancel")]

    def __init__(self, host: HostView) -> None:
        super().__init__(classes="prompt-screen")
        self.host = host

    def compose(self) -> ComposeResult:
        with Vertical(id="cable-box"):
            yield Label(f"cable of {self.host.name} ({self.host.address})", id="cable-title")
            yield Select(_DIRECTIONS, value="both", allow_blank=False, compact=True, id="cable-direction")
            now = current_settings(self.host, "both")
            for name, example in SETTINGS:
                with Horizontal(classes="cable-row"):
                    yield Label(name, classes="cable-name")
                    yield Input(now.get(name, ""), placeholder=f"e.g. {example}", compact=True, id=f"cable-{name}")
            yield Label("empty fields: none · all empty: the cable is clear", id="cable-hint")
            with Horizontal(id="cable-buttons"):
                yield Button("Apply", variant="primary", compact=True, id="cable-apply")
                yield Button("Clear", compact=True, id="cable-clear")

    def on_mount(self) -> None:
        self.query_one(f"#cable-{SETTINGS[0][0]}", Input).focus()

    @on(Select.Changed, "#cable-direction")
    def _direction_changed(self, event: Select.Changed) -> None:
        now = current_settings(self.host, str(event.value))
        for name, _ in SETTINGS:
            self.query_one(f"#cable-{name}", Input).value = now.get(name, "")

    def _line(self) -> str:
        direction = str(self.query_one("#cable-direction", Select).value)
        values = {name: self.query_one(f"#cable-{name}", Input).value for name, _ in SETTINGS}
        return cable_line(self.host.name, direction, values)

    @on(Input.Submitted)
    @on(Button.Pressed, "#cable-apply")
    def _apply(self) -> None:
        self.dismiss(self._line())

    @on(Button.Pressed, "#cable-clear")
    def _clear(self) -> None:
        self.dismiss(f"cable {self.host.name} clear")

    def action_cancel(self) -> None:
        self.dismiss(None)
