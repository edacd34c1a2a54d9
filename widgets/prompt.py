"""A small dialog asking for one value (a process name, a signal, an address), with quick picks."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList

__all__ = ["PromptScreen"]


class PromptScreen(ModalScreen[str | None]):
    """Enter accepts the field; a pick from the list accepts that; Esc cancels."""

    BINDINGS = [Binding("escape", "cancel", "cancel", id="sockplay.prompt.cancel")]

    def __init__(self, title: str, value: str = "", hint: str = "", picks: list[str] | None = None) -> None:
        super().__init__(classes="prompt-screen")
        self.title_text = title
        self.value = value
        self.hint = hint
        self.picks = picks or []

    def compose(self) -> ComposeResult:
        with Vertical(id="prompt-box"):
            yield Label(self.title_text, id="prompt-title")
            yield Input(self.value, id="prompt-input")
            if self.hint:
                yield Label(self.hint, id="prompt-hint")
            if self.picks:
                yield OptionList(*self.picks, id="prompt-picks")

    def on_mount(self) -> None:
        field = self.query_one("#prompt-input", Input)
        field.focus()
        field.cursor_position = len(field.value)

    @on(Input.Submitted, "#prompt-input")
    def _submitted(self, event: Input.Submitted) -> None:
        value = event.value.strip()
        self.dismiss(value or None)

    @on(OptionList.OptionSelected, "#prompt-picks")
    def _picked(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(str(event.option.prompt))

    def action_cancel(self) -> None:
        self.dismiss(None)
