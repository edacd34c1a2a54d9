"""A one-widget footer: the screen's active bindings as clickable keys.

Textual's Footer recomposes a widget per key whenever focus or bindings change, which
costs tens of milliseconds per key press on a slow machine with sockplay's many actions;
this draws the same keys (same source: `screen.active_bindings`) as one line of text.
"""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual.widget import Widget

from widgets.palette import Palette

__all__ = ["KeyFooter"]


class KeyFooter(Widget):
    """Keys and descriptions of the enabled bindings; a click runs the binding's action."""

    DEFAULT_CLASSES = "key-footer"

    def __init__(self, palette: Palette, **kwargs) -> None:
        super().__init__(**kwargs)
        self.palette = palette
        self._entries: tuple[tuple[str, str, str, bool], ...] = ()

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)
        self._bindings_changed(self.screen)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _bindings_changed(self, screen) -> None:
        entries = []
        seen = set()
        for _key, (namespace, binding, enabled, _tooltip) in screen.active_bindings.items():
            if not binding.show or binding.action in seen:
                continue
            seen.add(binding.action)
            action = (
                binding.action
                if "." in binding.action
                else (f"screen.{binding.action}" if namespace is screen else f"app.{binding.action}")
            )
            entries.append((self.app.get_key_display(binding), binding.description, action, enabled))
        entries_tuple = tuple(entries)
        if entries_tuple != self._entries:
            self._entries = entries_tuple
            self.refresh()

    def set_palette(self, palette: Palette) -> None:
        self.palette = palette
        self.refresh()

    def render(self) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        p = self.palette
        for key, description, action, enabled in self._entries:
            click = Style.from_meta({"@click": action})
            key_style = (p.accent if enabled else p.muted) + click
            text.append(f" {key} ", key_style + Style(bold=True))
            text.append(f"{description} ", (Style() if enabled else p.muted) + click)
        text.append(" ^p ", p.accent + Style(bold=True) + Style.from_meta({"@click": "app.command_palette"}))
        text.append("palette", Style.from_meta({"@click": "app.command_palette"}))
        return text
