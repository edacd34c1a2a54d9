"""The palette's lesson commands: the lesson keys (step, language, list) and every runnable lesson."""

from __future__ import annotations

import functools
from collections.abc import Callable
from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

from playground.lessons.catalog import load_catalog
from widgets.lesson_mode import LESSON_BINDINGS
from widgets.palette_match import score

__all__ = ["LessonCommands"]


@functools.cache
def _lessons() -> tuple:
    """The runnable lessons, read once (the palette asks at every key typed)."""
    return tuple(load_catalog(planned=False).runnable())


class LessonCommands(Provider):
    """`lesson: next step` and friends (when they apply), and `lesson 1: close() sends a FIN` for each lesson."""

    def _commands(self) -> list[tuple[str, Callable[[], object], str]]:
        app = self.app
        out: list[tuple[str, Callable[[], object], str]] = []
        for binding in LESSON_BINDINGS:
            if app.check_action(binding.action, ()) is False:
                continue
            key = app.get_key_display(binding)
            out.append(
                (
                    f"lesson: {binding.description}",
                    partial(app.run_action, binding.action),
                    f"{binding.tooltip} · key {key}",
                )
            )
        lang = getattr(app, "lesson_lang", "en")
        start = getattr(app, "start_lesson", None)
        if start is not None:
            for lesson in _lessons():
                out.append(
                    (
                        f"lesson {lesson.number}: {lesson.title_in(lang)}",
                        partial(start, lesson),
                        lesson.summary_in(lang),
                    )
                )
        return out

    async def discover(self) -> Hits:
        for title, callback, help_text in self._commands():
            yield DiscoveryHit(title, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, callback, help_text in self._commands():
            found = score(matcher, query, title, help_text)
            if found > 0:
                yield Hit(found, matcher.highlight(title), callback, text=title, help=help_text)
