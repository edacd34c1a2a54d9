"""Input fields whose growing text does not lay out the whole screen."""

from __future__ import annotations

from textual.geometry import Size
from textual.reactive import Reactive
from textual.widgets import Input

from widgets.textual_internals import update_scrollbars

__all__ = ["Field"]


class Field(Input):
    """An Input of fixed size: a new value scrolls within it, and nothing else moves.

    Input sets its virtual size on every change of value, and Textual answers that with
    a layout of the whole screen (tens of milliseconds with sockplay's panes).
    """

    virtual_size = Reactive(Size(0, 0), layout=False)

    def on_mount(self) -> None:
        if getattr(self.app, "deterministic", False):
            self.cursor_blink = False  # snapshots must not catch the cursor mid-blink

    def watch_virtual_size(self, size: Size) -> None:
        if self.is_mounted:
            update_scrollbars(self, size)
            self.refresh()
