"""Textual's internals that widgets/textual_internals.py overrides: fail loudly, by name, when one changes.

And the rule that keeps them in one place: no other module of widgets/ uses a private name of
Textual's, nor reaches into another object's private attributes or the session's lab.
"""

from __future__ import annotations

import ast
import gc
import importlib
import inspect
import re
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path

from rich.segment import Segment
from rich.style import Style
from textual._compositor import CompositorUpdate
from textual.app import App, ComposeResult
from textual.geometry import Offset, Size
from textual.screen import Screen
from textual.scroll_view import ScrollView
from textual.selection import Selection
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Log

from widgets.textual_internals import (
    STYLE_CACHE,
    TEXTUAL_VERSION,
    FastLog,
    bound_style_cache,
    clean_line,
    keep_strips_acyclic,
)

WIDGETS = Path(__file__).resolve().parents[2] / "widgets"


def _parameters(function) -> list[str]:
    return list(inspect.signature(function).parameters)


def test_textual_is_the_version_the_overrides_were_written_for() -> None:
    assert version("textual") == TEXTUAL_VERSION, (
        f"Textual {version('textual')} is installed; widgets/textual_internals.py was written against "
        f"{TEXTUAL_VERSION}: check every internal it overrides, then update TEXTUAL_VERSION and the pin"
    )


def test_the_internals_fastlog_overrides_still_exist_with_their_signatures() -> None:
    assert _parameters(Log._render_line_strip) == ["self", "y", "rich_style"], "Log._render_line_strip changed"
    assert _parameters(Log._update_size) == ["self", "updates", "lines"], "Log._update_size changed"
    assert _parameters(ScrollView._size_updated) == ["self", "size", "virtual_size", "container_size", "layout"], (
        "ScrollView._size_updated changed"
    )
    assert _parameters(Widget._scroll_update) == ["self", "virtual_size"], "Widget._scroll_update changed"
    assert _parameters(Log.get_selection) == ["self", "selection"], "Log.get_selection changed"
    assert clean_line("a\tb\x07c") == "a       b�c", "Log._process_line cleans lines differently"


def test_a_strip_cut_or_cropped_whole_gives_textuals_results_and_is_freed_without_the_collector() -> None:
    assert _parameters(Strip.divide) == ["self", "cuts"], "Strip.divide changed"
    assert _parameters(Strip.crop_extend) == ["self", "start", "end", "style"], "Strip.crop_extend changed"
    keep_strips_acyclic()
    keep_strips_acyclic()  # twice: still one wrapper
    padding = Style(bgcolor="red")
    strip = Strip([Segment("hello"), Segment(" world")])
    assert strip.divide([11]) == [strip] and strip.divide(iter([11, 40])) == [strip]
    assert [part.text for part in strip.divide([5, 11])] == ["hello", " world"]
    assert strip.crop_extend(0, 11, padding) is strip and strip.crop_extend(-3, 11, None) is strip
    assert strip.crop_extend(2, 14, padding).text == "llo world   "
    assert strip.crop_extend(0, 5, None).text == "hello"
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    try:
        made = Strip([Segment("hello"), Segment(" world")])
        made.divide([11])
        made.crop_extend(0, 11, padding)
        del made
        assert gc.collect() == 0, "a strip kept itself in its caches: only the collector frees it"
    finally:
        if enabled:
            gc.enable()


class _LogApp(App[None]):
    def compose(self) -> ComposeResult:
        yield FastLog(id="log")


async def test_fastlog_measures_caches_and_rewrites_lines_through_logs_private_state() -> None:
    """What FastLog reads and writes of Log's private state (_lines, _width, _render_line_cache) still works."""
    app = _LogApp()
    async with app.run_test(size=(40, 10)) as pilot:
        log = app.query_one(FastLog)
        log.write_lines(["short", "a line wider than the others"])
        # Measured here and now, not in Log's thread worker.
        assert log.virtual_size.width == len("a line wider than the others")
        await pilot.pause()
        strip = log._render_line_strip(0, Style())
        assert strip.text == "short"
        assert log._render_line_strip(0, Style()) is strip, "Log's line cache (_render_line_cache) is not used"
        log.replace_line(0, "rewritten, and wider than every other line")
        assert log.lines[0] == "rewritten, and wider than every other line"
        assert log.virtual_size.width == len(log.lines[0])
        await pilot.pause()
        assert log._render_line_strip(0, Style()).text == log.lines[0], "refresh_lines no longer drops the cache"
        log.clear_line_cache()
        assert log.lines == ["rewritten, and wider than every other line", "a line wider than the others"]


async def test_an_enlarged_log_repaints_its_lines_from_the_cache() -> None:
    """Log's LRUCache, once full, keeps the size it filled to whatever maxsize says, until cleared."""
    app = _LogApp()
    async with app.run_test(size=(40, 20)) as pilot:
        log = app.query_one(FastLog)
        log.write_lines([f"line {i}" for i in range(400)])
        await pilot.pause()
        for y in (0, 100, 200):  # the cache filled at this height
            log.scroll_to(y=y, animate=False, immediate=True)
            await pilot.pause()
        await pilot.resize_terminal(40, 80)
        await pilot.pause()
        log.scroll_to(y=300, animate=False, immediate=True)
        await pilot.pause()
        cache = log._render_line_cache
        assert cache.maxsize >= 2 * log.size.height > 48
        misses = cache.misses
        log.refresh()
        await pilot.pause()
        assert cache.misses == misses, "an unchanged screen of the enlarged log was rendered again"


async def test_fastlog_replaces_every_line_at_once_as_clear_and_write_lines_would() -> None:
    app = _LogApp()
    async with app.run_test(size=(40, 10)) as pilot:
        log = app.query_one(FastLog)
        log.write_lines([f"line {i}" for i in range(50)])
        await pilot.pause()
        log.replace_all([f"new {i}" for i in range(30)], 12)
        assert log.line_count == 30 and log.lines[29] == "new 29"
        assert log.virtual_size == Size(12, 30)
        await pilot.pause()
        assert log.scroll_y == log.max_scroll_y > 0  # at the end, as write_lines(scroll_end=True) leaves it
        assert log._render_line_strip(0, Style()).text == "new 0", "the line cache was not dropped"
        log.replace_all(["two\nlines", "three"], 5)  # a line break: split as Log splits it
        assert log.lines == ["two", "lines", "three"]
        log.replace_all([], 0)
        assert log.line_count == 0 and log.virtual_size == Size(0, 0)


async def test_a_virtual_fastlog_draws_lines_made_when_asked_for() -> None:
    made: list[int] = []
    count = [30]

    class Lines(Sequence[str]):
        def __len__(self) -> int:
            return count[0]

        def __getitem__(self, index):  # type: ignore[override]
            made.append(index)
            return f"line {index}"

    app = _LogApp()
    async with app.run_test(size=(40, 10)) as pilot:
        log = app.query_one(FastLog)
        log.show_lines(Lines(), 7)
        await pilot.pause()
        assert log.line_count == 30 and log.virtual_size == Size(7, 30)
        assert log.scroll_y == log.max_scroll_y > 0 and set(made) <= set(range(20, 30)), "lines off screen were made"
        count[0] = 32
        log.lines_added(9)
        await pilot.pause()
        assert log.virtual_size == Size(9, 32) and log.scroll_y == log.max_scroll_y  # it follows the newest line
        strip = log._render_line_strip(31, Style())
        assert strip.text == "line 31" and log._render_line_strip(31, Style()) is strip
        log.line_changed(31, 12)
        assert log.virtual_size.width == 12 and log._render_line_strip(31, Style()) is not strip
        # A copy makes only the lines it takes, and takes what Log's own would.
        made.clear()
        chosen = Selection(Offset(2, 5), Offset(4, 7))
        assert log.get_selection(chosen) == ("ne 5\nline 6\nline", "\n")
        assert sorted(set(made)) == [5, 6, 7]
        assert log.get_selection(Selection(None, Offset(3, 1))) == ("line 0\nlin", "\n")


async def test_the_style_cache_stays_bounded_while_a_log_scrolls_thousands_of_lines_by() -> None:
    # Each line's segments carry the line's offset in their style: Textual's own cache of their
    # ANSI codes would keep 16,384 of them. The app bounds it; a log scrolled by still draws right.
    cached = Strip.__dict__["render_ansi"].__func__
    assert hasattr(cached, "cache_info") and hasattr(cached, "__wrapped__"), "Strip.render_ansi is not an lru_cache"
    bound_style_cache()
    Strip.render_ansi.cache_clear()
    count = [5000]

    class Lines(Sequence[str]):
        def __len__(self) -> int:
            return count[0]

        def __getitem__(self, index):  # type: ignore[override]
            return f"line {index}"

    class EncodingApp(_LogApp):
        """Encodes each frame as the terminal's driver would (a headless app does not)."""

        def _display(self, screen, renderable) -> None:  # type: ignore[no-untyped-def]
            super()._display(screen, renderable)
            if isinstance(renderable, CompositorUpdate):
                renderable.render_segments(self.console)

    app = EncodingApp()
    async with app.run_test(size=(40, 60)) as pilot:
        log = app.query_one(FastLog)
        log.show_lines(Lines(), 10)
        for top in range(0, 5000, 59):
            log.scroll_to(y=top, animate=False, immediate=True)
            await pilot.pause()
        assert Strip.render_ansi.cache_info().currsize == STYLE_CACHE
        log.scroll_to(y=4000, animate=False, immediate=True)
        await pilot.pause()
        assert log.render_line(0).text.startswith("line 4000")
        bound_style_cache()  # (again: the same cache kept)
        assert Strip.render_ansi.cache_info().currsize == STYLE_CACHE


def _private_names_of(classes: list[type]) -> set[str]:
    """Private names that Textual's classes among `classes` define (attributes set on self, and methods)."""
    names: set[str] = set()
    for cls in classes:
        if cls.__module__.split(".")[0] != "textual":
            continue
        text = inspect.getsource(cls)
        names |= set(re.findall(r"\bself\.(_[a-z][a-z0-9_]*)\b", text))
        names |= set(re.findall(r"^\s+def (_[a-z][a-z0-9_]*)\(", text, re.M))
    return names


def _textual_classes_under(module_name: str, class_name: str) -> list[type]:
    """Textual's classes a widget class inherits; a mixin (no Textual base) is mixed into a Screen."""
    cls = getattr(importlib.import_module(f"widgets.{module_name}"), class_name)
    mro = list(cls.__mro__)
    if not any(base.__module__.startswith("textual.") for base in mro):
        mro = list(Screen.__mro__)
    return mro


def _private_attributes(tree: ast.AST) -> list[ast.Attribute]:
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
    ]


def test_no_other_widget_module_uses_textual_internals_or_private_attributes() -> None:
    found = []
    for path in sorted(WIDGETS.glob("*.py")):
        if path.name == "textual_internals.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in _private_attributes(tree):
            owner = ast.unparse(node.value)
            if owner not in ("self", "cls"):
                found.append(f"{path.name}:{node.lineno}: {owner}.{node.attr} (another object's private name)")
        for cls in (node for node in tree.body if isinstance(node, ast.ClassDef)):
            textual_names = _private_names_of(_textual_classes_under(path.stem, cls.name))
            for node in _private_attributes(cls):
                if ast.unparse(node.value) == "self" and node.attr in textual_names:
                    found.append(f"{path.name}:{node.lineno}: self.{node.attr} (a private name of Textual's)")
    assert not found, "\n".join(found)


def test_widgets_ask_the_session_never_the_lab() -> None:
    found = []
    for path in sorted(WIDGETS.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr == "lab":
                found.append(f"{path.name}:{node.lineno}: {ast.unparse(node)}")
    assert not found, "\n".join(found)
