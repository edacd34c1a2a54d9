"""Messages the panes post up to the main screen: what the user asked for."""

from __future__ import annotations

from textual.message import Message

__all__ = ["OptionEdited", "DispositionChosen"]


class OptionEdited(Message):
    """The user set a socket option; `value` is script syntax (1, 0, {1, 5}, 0.5, 65536)."""

    def __init__(self, option: str, value: str) -> None:
        super().__init__()
        self.option = option
        self.value = value


class DispositionChosen(Message):
    """The user chose a signal's disposition (SIG_DFL, SIG_IGN or catch)."""

    def __init__(self, signal: str, disposition: str) -> None:
        super().__init__()
        self.signal = signal
        self.disposition = disposition
