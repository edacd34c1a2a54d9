"""The command palette's sockplay commands: every binding of the main screen, by name."""

from __future__ import annotations

from functools import partial

from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider

from widgets.palette_match import score

__all__ = ["SockplayCommands"]


class SockplayCommands(Provider):
    """Lists the main screen's actions (with their keys) and runs the one chosen."""

    def _commands(self) -> list[tuple[str, str, str]]:
        screen = self.screen
        out: list[tuple[str, str, str]] = []
        from widgets.main_screen import MainScreen

        if not isinstance(screen, MainScreen):
            return out
        keys = screen.key_names()
        for binding in screen.BINDINGS:
            assert isinstance(binding, Binding)
            if screen.check_action(binding.action, ()) is False:
                continue
            key = keys.get(binding.action, binding.key)
            title = binding.description
            help_text = f"{binding.tooltip} · key {key}" if binding.tooltip else f"key {key}"
            out.append((title, binding.action, help_text))
        return out

    async def discover(self) -> Hits:
        for title, action, help_text in self._commands():
            yield DiscoveryHit(title, partial(self.screen.run_action, action), help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, action, help_text in self._commands():
            found = score(matcher, query, title, help_text)
            if found > 0:
                yield Hit(
                    found, matcher.highlight(title), partial(self.screen.run_action, action), text=title, help=help_text
                )
