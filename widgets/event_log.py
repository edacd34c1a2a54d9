"""The Event log pane: every call, signal and death, written in batches; filter and search."""

from __future__ import annotations

import time
from collections.abc import Sequence

from rich.cells import cell_len
from rich.highlighter import Highlighter
from rich.style import Style
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.geometry import Region
from textual.strip import Strip
from textual.widgets import Input, Label

from playground.session.eventbook import KIND_OF_MARK, MARK_COLUMN, MARKS, TIME_WIDTH, EventBook, find_next
from playground.session.wire import PACKET_MARK
from widgets.fields import Field
from widgets.palette import Palette
from widgets.textual_internals import FastLog, clean_line

__all__ = ["EventLog", "EventsPane", "EventHighlighter", "FLUSH_INTERVAL", "line_cells"]

TITLE_INTERVAL = 0.5  # the line count under the log changes at most this often (a border repaint)
FLUSH_INTERVAL = 0.1  # seconds between batched writes to the log (the app's tick calls flush)


# The characters of nearly every log line, each one cell wide: checking a line against them is
# cheap, while measuring it is not (rich measures a line with a mark in it character by character).
_ONE_CELL = frozenset(map(chr, range(0x20, 0x7F))) | frozenset(
    ch for ch in "".join(MARKS.values()) + PACKET_MARK + "µ│↔…" if cell_len(ch) == 1
)


def line_cells(line: str) -> int:
    """How many cells a log line takes (as Log measures it)."""
    if _ONE_CELL.issuperset(line):
        return len(line)
    return cell_len(clean_line(line))


class EventHighlighter(Highlighter):
    """Colours a log line by the mark in its mark column, and the search term wherever it is."""

    def __init__(self, palette: Palette) -> None:
        self.palette = palette
        self.term = ""

    def highlight(self, text: Text) -> None:
        plain = text.plain
        p = self.palette
        text.stylize(p.muted, 0, TIME_WIDTH)
        text.stylize(p.primary, TIME_WIDTH + 1, MARK_COLUMN - 1)
        if len(plain) > MARK_COLUMN:
            kind = KIND_OF_MARK.get(plain[MARK_COLUMN])
            if kind is None and plain[MARK_COLUMN] == "✗":
                kind = "error"
            style = {
                "error": p.error,
                "signal": p.warning,
                "death": p.error,
                "pending": p.accent,
                "running": p.muted,
                "returned": p.success,
                "diverged": p.error,
                "notice": p.muted,
                "process": p.primary,
            }.get(kind or "")
            if style is not None:
                text.stylize(style, MARK_COLUMN)
            elif kind == "ok":
                text.stylize(p.success, MARK_COLUMN, MARK_COLUMN + 1)
            hex_at = plain.find("   │ hex ")
            if hex_at >= 0:
                text.stylize(p.muted, hex_at)
        if self.term:
            lowered = plain.lower()
            needle = self.term.lower()
            start = lowered.find(needle)
            while start >= 0:
                text.stylize(p.match, start, start + len(needle))
                start = lowered.find(needle, start + len(needle))


class EventLog(FastLog):
    """The event log: Textual's Log, made fast (FastLog), measuring lines as the event book writes them."""

    measure = staticmethod(line_cells)
    _pass_style: Style | None = None

    @property
    def rich_style(self) -> Style:
        """Computed once per render pass (Log asks for it for every line; it walks every ancestor's styles)."""
        style = self._pass_style
        return super().rich_style if style is None else style

    def render_lines(self, crop: Region) -> list[Strip]:
        """One render pass: the compositor asks for the lines in `crop`."""
        self._pass_style = None
        self._pass_style = self.rich_style
        try:
            return super().render_lines(crop)
        finally:
            self._pass_style = None


class SearchBar(Horizontal):
    BINDINGS = [
        Binding("up", "older", "older match", show=False),
        Binding("down", "newer", "newer match", show=False),
        Binding("escape", "close", "close search", show=False),
    ]

    def compose(self) -> ComposeResult:
        yield Label("search", id="search-label")
        yield Field(placeholder="text to find (↑ older, ↓ newer, Esc closes)", id="search-input", compact=True)
        yield Label("", id="search-status")

    def action_older(self) -> None:
        self.query_ancestor(EventsPane).find(backwards=True)

    def action_newer(self) -> None:
        self.query_ancestor(EventsPane).find(backwards=False)

    def action_close(self) -> None:
        self.query_ancestor(EventsPane).close_search()


class EventsPane(Vertical):
    """The log and its search bar; writes what the EventBook has new every FLUSH_INTERVAL."""

    def __init__(self, book: EventBook, palette: Palette, **kwargs) -> None:
        super().__init__(**kwargs)
        self.book = book
        book.measure = line_cells
        self.highlighter = EventHighlighter(palette)
        self.match_index: int | None = None
        self._matches: tuple[str, int, Sequence[int]] = ("", -1, ())  # a term, the book's revision, its matches
        self._titled = 0.0
        self._title_stale = False

    def compose(self) -> ComposeResult:
        log = EventLog(highlight=True, id="event-log")
        log.highlighter = self.highlighter
        log.can_focus = True
        yield log
        bar = SearchBar(id="search-bar")
        bar.display = False
        yield bar

    def on_mount(self) -> None:
        self.border_title = "Events"
        self.log_widget.show_lines(self.book.lines, self.book.widest)
        self._update_title()

    @property
    def log_widget(self) -> EventLog:
        return self.query_one(EventLog)

    def set_palette(self, palette: Palette) -> None:
        self.highlighter.palette = palette
        self.log_widget.clear_line_cache()
        self.log_widget.refresh()

    def flush(self) -> None:
        """Write the lines the book has new, and rewrite those that changed."""
        log = self.log_widget
        lines = self.book.take_unwritten()
        if lines:
            log.lines_added(self.book.widest)
        for index, _ in self.book.take_changed():
            log.line_changed(index, self.book.widest)
        if lines:
            self._title_stale = True
        if self._title_stale and (self.book.deterministic or time.monotonic() - self._titled > TITLE_INTERVAL):
            self._update_title()

    def relist(self) -> None:
        self.log_widget.show_lines(self.book.relist(), self.book.widest)
        self._update_title()

    def set_filter(self, process: str | None, fd: int | None = None) -> None:
        self.log_widget.show_lines(self.book.set_filter(process, fd), self.book.widest)
        self._update_title()

    def toggle_hex(self) -> None:
        self.book.hex = not self.book.hex
        self.relist()

    def _update_title(self) -> None:
        self._titled = time.monotonic()
        self._title_stale = False
        shown = len(self.book.shown)
        total = len(self.book.entries)
        what = "all" if self.book.filter is None else f"only {self.book.filter_label}"
        hex_note = " · hex" if self.book.hex else ""
        wire = getattr(self.book, "wire_note", "")  # calls or packets only (playground.session.wire.WireBook)
        subtitle = f"{what}{wire} · {shown}/{total} lines{hex_note}"
        if self.border_subtitle != subtitle:  # setting it repaints the whole pane, even to the same text
            self.border_subtitle = subtitle

    # Search.

    def open_search(self) -> None:
        bar = self.query_one(SearchBar)
        bar.display = True
        self.query_one("#search-input", Input).focus()

    def close_search(self) -> None:
        self.query_one(SearchBar).display = False
        self.highlighter.term = ""
        self.match_index = None
        self._matches = ("", -1, ())
        self.log_widget.clear_line_cache()
        self.log_widget.refresh()
        self.log_widget.focus()

    @on(Input.Changed, "#search-input")
    def _term_changed(self, event: Input.Changed) -> None:
        self.highlighter.term = event.value
        self.match_index = None
        self.log_widget.clear_line_cache()
        self.log_widget.refresh()
        self.find(backwards=True)

    @on(Input.Submitted, "#search-input")
    def _term_submitted(self, event: Input.Submitted) -> None:
        self.find(backwards=True)

    def find(self, backwards: bool = True) -> int | None:
        log = self.log_widget
        term = self.highlighter.term
        count = len(self.book.shown)
        start = self.match_index if self.match_index is not None else count
        matches = self._matching(term)
        found = find_next(matches, start, count, backwards)
        status = self.query_one("#search-status", Label)
        if found is None:
            status.update("no match" if term else "")
            return None
        self.match_index = found
        status.update(f"line {found + 1} · {len(matches)} matching")
        log.scroll_to(y=max(0, found - log.size.height // 2), animate=False)
        return found

    def _matching(self, term: str) -> Sequence[int]:
        """The shown lines with `term`: every line is rendered to look, so kept until the lines change."""
        kept_term, revision, matches = self._matches
        if term != kept_term or revision != self.book.revision:
            # A longer term (typed on) is found only where the shorter one was.
            narrower = revision == self.book.revision and kept_term and kept_term.lower() in term.lower()
            matches = self.book.matches(term, matches if narrower else None)
            self._matches = (term, self.book.revision, matches)
        return matches
