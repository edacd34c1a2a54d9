"""The only module that uses Textual's private names: what the event log needs for speed.

Textual's Log measures each batch of lines in a thread worker, re-renders every line through
rich's Highlighter (a copy per line) and caches lines only while text is selected; a
growing log's virtual size lays out the whole screen. At 100,000 lines and a stream of
calls that costs the event loop more than a key press may wait, and a list of every line costs
memory in proportion. `FastLog` overrides those few internals, and can be a virtual log (its
lines a sequence that makes each one when drawn); nothing else in widgets/ touches a private
Textual name (a test greps).

Textual is pinned to TEXTUAL_VERSION in pyproject.toml, and
tests/widgets/test_textual_internals.py fails, naming the internal, when one changes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from typing import Any

from rich.cells import cell_len
from rich.style import Style
from rich.text import Text
from textual.geometry import Offset, Size
from textual.reactive import Reactive
from textual.selection import Selection
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Log

__all__ = [
    "STYLE_CACHE",
    "TEXTUAL_VERSION",
    "FastLog",
    "bound_style_cache",
    "clean_line",
    "keep_strips_acyclic",
    "update_scrollbars",
]

_BREAKS = re.compile("[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")  # where str.splitlines splits
# Rendered lines the log keeps (Textual's Log: 1,024): two screens of the log (at least; a taller one
# keeps twice its height). Each keeps the strips made from it (cropped, then with its text-selection
# offsets) and their styles, some 6 KB a line: 128 lines kept ~450 KB more small objects than 48 with
# 10,000 connections held (issue 13; pymalloc's allocated blocks, as bench/heap_layout.py reads them).
LINE_CACHE = 48
STYLE_CACHE = 1024  # styles whose ANSI codes Textual keeps (its own: 16,384): two screens of the log
TEXTUAL_VERSION = "8.2.8"  # the version these overrides were written against (pyproject.toml pins it)


def clean_line(line: str) -> str:
    """A log line as Log draws it: tabs expanded, control codes replaced."""
    return Log._process_line(line)


def bound_style_cache(size: int = STYLE_CACHE) -> None:
    """Make Textual keep the ANSI codes of at most `size` styles (Strip.render_ansi's cache).

    Log lines carry their own (x, y) offset in their segments' styles (for text selection),
    so every line drawn makes styles that are never drawn again: once a stream has scrolled
    60,000 lines by, Textual's cache holds 16,384 of them, each with its meta and strings,
    some 8 MB (bench/many_held.py: 800 bytes per held connection at 10,000). A screen draws a
    few hundred styles; 1,024 hold two screens of the log.
    """
    cached: Any = getattr(Strip.__dict__.get("render_ansi"), "__func__", None)
    if not hasattr(cached, "cache_info") or not hasattr(cached, "__wrapped__"):
        return  # (not Textual's lru_cache any more: tests/widgets/test_textual_internals.py says so)
    if cached.cache_info().maxsize != size:
        render: Any = lru_cache(maxsize=size)(cached.__wrapped__)
        bounded: classmethod[Any, Any, str] = classmethod(render)
        setattr(Strip, "render_ansi", bounded)  # noqa: B010 (a class attribute mypy sees as a method)


def keep_strips_acyclic() -> None:
    """Make a Strip never keep itself in its own caches, so a strip dropped is freed at once.

    Strip.divide caches `[self]` when its one cut is the strip's end, and Strip.crop_extend
    caches `self` when it crops the whole strip and adds nothing: each such strip becomes a
    reference cycle (with its 7 caches and segments), which only the collector frees. The
    compositor does one or the other for most lines it draws: while a block made 4,000
    connections, 4.8 objects a connection became cyclic garbage (0.6 with this). While events
    stream, the app freezes the collector's objects (session/gc_pacing), so those stayed until
    the stream ended, in pools among what lives on: pymalloc's arenas kept the holes (issue 13).
    The strips given back are the ones Textual gives (divide's list is a new one each call); only
    the cache entry that is the strip itself is not made.
    """
    divide: Any = Strip.divide
    crop_extend: Any = Strip.crop_extend
    if getattr(divide, "acyclic", False):
        return

    def acyclic_divide(self: Strip, cuts: Iterable[int]) -> Sequence[Strip]:
        cell_length = self.cell_length
        wanted = [cut for cut in cuts if cut <= cell_length]
        if wanted == [cell_length]:
            return [self]
        return divide(self, wanted)

    def acyclic_crop_extend(self: Strip, start: int, end: int, style: Style | None) -> Strip:
        if start <= 0 and end == self.cell_length:  # extend_cell_length and crop each give self back
            return self
        return crop_extend(self, start, end, style)

    acyclic_divide.__doc__ = divide.__doc__
    acyclic_crop_extend.__doc__ = crop_extend.__doc__
    acyclic_divide.acyclic = True  # type: ignore[attr-defined]
    setattr(Strip, "divide", acyclic_divide)  # noqa: B010
    setattr(Strip, "crop_extend", acyclic_crop_extend)  # noqa: B010


def update_scrollbars(widget: Widget, virtual_size: Size) -> None:
    """What Textual does for a new virtual size, minus the layout of the whole screen."""
    widget._scroll_update(virtual_size)


class FastLog(Log):
    """A Log whose lines are measured cheaply, cached always, and can be rewritten in place.

    Given a sequence (`show_lines`) instead of written lines, it draws from it: only the lines
    on screen are asked for, and the widest is told, not measured.

    Its virtual size grows with every batch; Textual would lay out the whole screen for
    that, so here only the log's own scrollbars follow it. `following`: the view stays on
    the newest line until the user scrolls away from it.
    """

    virtual_size = Reactive(Size(0, 0), layout=False)

    following = True
    measure: Callable[[str], int] = staticmethod(lambda line: cell_len(clean_line(line)))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Log keeps 1,024 rendered lines, each a Strip with its crops and their caches: some 12 MB
        # once a stream has scrolled that many past. A few screens' worth is as fast to scroll.
        self._render_line_cache.maxsize = LINE_CACHE
        self._shown = 0  # the virtual log's lines drawn so far (show_lines)

    def watch_virtual_size(self, size: Size) -> None:
        if self.is_mounted:
            update_scrollbars(self, size)
            self.follow()
            self.refresh()

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        self.following = new_value >= self.max_scroll_y - 0.5

    def _size_updated(self, size: Size, virtual_size: Size, container_size: Size, layout: bool = True) -> bool:
        following = self.following
        wanted = max(LINE_CACHE, 2 * size.height)  # (a very tall terminal: two screens)
        cache = self._render_line_cache
        if cache.maxsize != wanted:
            # Textual's LRUCache, once full, evicts one for each new line whatever its maxsize says: it
            # stays at the size it filled to until cleared (a log enlarged would miss a line a repaint).
            cache.clear()
            cache.maxsize = wanted
        changed = super()._size_updated(size, virtual_size, container_size, layout)
        self.following = following
        self.follow()
        return changed

    def follow(self) -> None:
        if self.following and self.auto_scroll and self.scroll_y < self.max_scroll_y:
            self.scroll_end(animate=False, immediate=True, x_axis=False)

    def clear_line_cache(self) -> None:
        """Drop the rendered lines (new colours, a new search term)."""
        self._render_line_cache.clear()

    def _render_line_strip(self, y: int, rich_style: Style) -> Strip:
        """A line as Log renders it, kept in Log's cache always (Log keeps lines only while text is selected).

        Unlike Log, the highlighter colours the line in place (rich's Highlighter copies it first)
        and the line is measured cheaply (`measure`). refresh_lines (called by replace_line),
        clear and style updates drop cached lines, as in Log.
        """
        if self.text_selection is not None:
            return super()._render_line_strip(y, rich_style)
        cache = self._render_line_cache
        strip = cache.get(y)
        if strip is None:
            line = clean_line(self._lines[y])
            text = Text(line, no_wrap=True)
            text.stylize(rich_style)
            if self.highlight:
                self.highlighter.highlight(text)
            strip = Strip(text.render(self.app.console), self.measure(line))
            cache[y] = strip
        return strip

    def _update_size(self, updates: int, lines: list[str]) -> None:  # type: ignore[override]  # Log's is a @work
        """Widen the log for a batch's widest line, here and now.

        Log measures each batch in a thread worker: a worker per batch (its state messages
        included), and a thread holding the GIL against the event loop while it measures.
        """
        self._widen(max(map(self.measure, lines), default=0))

    def _widen(self, width: int) -> None:
        if width > self._width:
            self._width = width
            self.virtual_size = Size(width, self.line_count)

    def replace_all(self, lines: list[str], width: int) -> None:
        """Every line at once (the log's list becomes `lines`), the widest `width` cells, scrolled to the end.

        What clear() and write_lines(lines, scroll_end=True) do, without what costs per line: Log
        splits each line, measures it and drops it from its cache one by one (60,000 lines: 100 ms).
        Lines with a line break go that way still.
        """
        if _BREAKS.search("".join(lines)):
            self.clear()
            if lines:
                self.write_lines(lines, scroll_end=True)
            return
        self._lines = lines
        self._width = width
        self._render_line_cache.clear()
        self._updates += 1
        self._clear_y = 0
        self.virtual_size = Size(width, len(lines))
        if lines:
            self.scroll_end(animate=False, immediate=True, x_axis=False)
        self.refresh()

    @property
    def line_count(self) -> int:
        """Number of lines (Log's reads the last line to know: a virtual log's would be made for it)."""
        if isinstance(self._lines, list):
            return super().line_count
        return len(self._lines)

    def get_selection(self, selection: Selection) -> tuple[str, str] | None:
        """The selected text, made from the selected lines only (Log joins every line: a virtual log's
        lines are each rendered when read, 60,000 of them for a copy of three)."""
        lines = self._lines
        first = selection.start.y if selection.start is not None else 0
        last = min(selection.end.y if selection.end is not None else len(lines) - 1, len(lines) - 1)
        picked = [lines[y] for y in range(first, last + 1)]
        start = Offset(selection.start.x, 0) if selection.start is not None else None
        end = Offset(selection.end.x, selection.end.y - first) if selection.end is not None else None
        return Selection(start, end).extract("\n".join(picked)), "\n"

    def show_lines(self, lines: Sequence[str], width: int) -> None:
        """A virtual log: `lines` makes each line when asked for (only those on screen are), `width` cells the widest.

        The log keeps `lines` (the list of strings becomes a sequence) and is told when it
        grows (`lines_added`) or a line changes (`line_changed`). Lines must hold no line break.
        """
        self._lines = lines  # type: ignore[assignment]  # Log's is a list; it only reads it (len, index, join)
        self._shown = len(lines)
        self._width = width
        self._render_line_cache.clear()
        self._updates += 1
        self._clear_y = 0
        self.virtual_size = Size(width, len(lines))
        if len(lines):
            self.scroll_end(animate=False, immediate=True, x_axis=False)
        self.refresh()

    def lines_added(self, width: int) -> None:
        """The virtual log's sequence grew (as write_lines would write its new lines); `width`: the widest now."""
        start, count = self._shown, len(self._lines)
        self._shown = count
        at_end = self.is_vertical_scroll_end
        if width > self._width:
            self._width = width
        self.virtual_size = Size(self._width, count)
        self.refresh_lines(start, count - start)
        if self.auto_scroll and not self.is_vertical_scrollbar_grabbed and at_end:
            self.scroll_end(animate=False, immediate=True, x_axis=False)
        else:
            self.refresh()

    def line_changed(self, index: int, width: int) -> None:
        """Line `index` of the virtual log changed (a pending call completed); `width`: the widest now."""
        if 0 <= index < len(self._lines):
            self._widen(width)
            self.refresh_lines(index)

    def replace_line(self, index: int, line: str) -> None:
        """Rewrite line `index` (a pending call completed)."""
        if not 0 <= index < len(self._lines):
            return
        self._lines[index] = line
        self._widen(self.measure(line))
        self.refresh_lines(index)
