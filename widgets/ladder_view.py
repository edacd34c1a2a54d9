"""The ladder screen: one TCP connection drawn as a ladder diagram, following it live; SVG export.

The model is playground.ladder's (a LadderRecorder attached to the app's lab); this screen
only draws `ladder_text` lines, appending what changed at each tick.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from rich.segment import Segment
from rich.style import Style
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.screen import Screen
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Footer, Static

from playground.ladder import ladder_svg, ladder_text
from playground.session.wire import ladder_for
from widgets.palette import Palette

if TYPE_CHECKING:
    from playground.ladder import Ladder, LadderRecorder

__all__ = ["LadderLines", "LadderScreen", "LadderSaved", "export_path"]

TICK = 0.1  # seconds between looks at the ladder for new rows
MIN_WIDTH = 24


def export_path(directory: Path, stem: str, suffix: str) -> Path:
    """A new file name in `directory`: sockplay-STEM-YYYYmmdd-HHMMSS[-N].suffix."""
    base = f"sockplay-{stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    path = directory / f"{base}{suffix}"
    count = 1
    while path.exists():
        count += 1
        path = directory / f"{base}-{count}{suffix}"
    return path


class LadderSaved(Message):
    """An export finished: where it was written, or why it was not."""

    def __init__(self, path: str, what: str, error: str | None = None) -> None:
        super().__init__()
        self.path = path
        self.what = what
        self.error = error


class LadderLines(ScrollView, can_focus=True):
    """The ladder's monospace lines, virtual (only the visible ones are drawn); follows the end."""

    BINDINGS = [
        Binding("up", "scroll_up", "up", show=False),
        Binding("down", "scroll_down", "down", show=False),
        Binding("pageup", "page_up", "page up", show=False),
        Binding("pagedown", "page_down", "page down", show=False),
        Binding("home", "scroll_home", "top", show=False),
        Binding("end", "scroll_end", "end", show=False),
    ]

    def __init__(self, palette: Palette, **kwargs) -> None:
        super().__init__(**kwargs)
        self.palette = palette
        self.lines: list[tuple[str, Style | None]] = []
        self.following = True

    def set_lines(self, lines: list[tuple[str, Style | None]], keep_from: int | None = None) -> None:
        """Replace the lines from `keep_from` on (None: all of them)."""
        self.following = self.scroll_y >= self.max_scroll_y - 0.5
        if keep_from is None:
            self.lines = list(lines)
        else:
            del self.lines[keep_from:]
            self.lines.extend(lines)
        width = max((len(text) for text, _ in self.lines), default=0)
        self.virtual_size = Size(width, len(self.lines))
        if self.following:
            self.scroll_end(animate=False, immediate=True, x_axis=False)
        self.refresh()

    @property
    def plain(self) -> str:
        return "\n".join(text for text, _ in self.lines)

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        index = scroll_y + y
        width = self.scrollable_content_region.width
        if index >= len(self.lines):
            return Strip.blank(width, self.rich_style)
        text, style = self.lines[index]
        strip = Strip([Segment(text, style)] if style is not None else [Segment(text)])
        return strip.crop_extend(scroll_x, scroll_x + width, self.rich_style)


class LadderScreen(Screen):
    """A connection's ladder, live; `[`/`]` walk through the session's connections."""

    CSS_PATH = str(Path(__file__).with_name("wire.tcss"))
    BINDINGS = [
        Binding("escape,d", "app.pop_screen", "back", id="sockplay.ladder.back", tooltip="back to the lab"),
        Binding(
            "left_square_bracket",
            "older",
            "older",
            id="sockplay.ladder.older",
            tooltip="the connection before this one",
        ),
        Binding(
            "right_square_bracket",
            "newer",
            "newer",
            id="sockplay.ladder.newer",
            tooltip="the connection after this one",
        ),
        Binding("s", "save_svg", "save SVG", id="sockplay.ladder.save_svg", tooltip="write this ladder to an SVG file"),
    ]

    def __init__(
        self, recorder: LadderRecorder, palette: Palette, ends: tuple | None = None, export_dir: Path | None = None
    ) -> None:
        super().__init__(id="ladder-screen")
        self.recorder = recorder
        self.palette = palette
        self.ends = ends
        self.export_dir = export_dir or Path.cwd()
        self.index: int | None = None
        self.pinned = ends is not None  # follow the newest connection unless one was chosen
        self.width = 0
        self.row_starts: list[int] = []  # the line each drawn row begins at
        self.last_written: str | None = None

    def compose(self) -> ComposeResult:
        yield Static("", id="ladder-title")
        yield LadderLines(self.palette, id="ladder-lines")
        yield Footer()

    def on_mount(self) -> None:
        ladders = self.recorder.ladders
        self.index = ladder_for(ladders, self.ends)
        self.query_one(LadderLines).focus()
        self.set_interval(TICK, self.follow)
        self.call_after_refresh(self.redraw)

    @property
    def ladder(self) -> Ladder | None:
        ladders = self.recorder.set.ladders
        if self.index is None or not 0 <= self.index < len(ladders):
            return None
        return ladders[self.index]

    def _style(self, line: str, ladder_row=None) -> Style | None:
        p = self.palette
        if ladder_row is None:
            return None
        if ladder_row.kind == "segment":
            flags = set(ladder_row.flags)
            if "RST" in flags:
                return p.error
            if "SYN" in flags:
                return p.success
            if "FIN" in flags:
                return p.accent
            return p.strong if ladder_row.length else None
        if ladder_row.kind == "kernel":
            return p.warning
        return p.muted

    def _lines_from(self, ladder: Ladder, start: int, line: int = 0) -> list[tuple[str, Style | None]]:
        """Styled lines of rows `start` on (0: with the header); row_starts is kept in step."""
        width = self.width
        texts = ladder_text(ladder, width, start=start)
        header = len(texts) - sum(1 + any(row.changed) for row in ladder.rows[start:])
        out: list[tuple[str, Style | None]] = [(text, self.palette.strong) for text in texts[:header]]
        line += header
        del self.row_starts[start:]
        position = header
        for row in ladder.rows[start:]:
            self.row_starts.append(line)
            out.append((texts[position], self._style(texts[position], row)))
            position += 1
            line += 1
            if any(row.changed):
                out.append((texts[position], self.palette.primary))
                position += 1
                line += 1
        return out

    def redraw(self) -> None:
        """Draw the whole ladder again (another connection, another width)."""
        view = self.query_one(LadderLines)
        self.width = max(MIN_WIDTH, view.scrollable_content_region.width - 1)
        ladder = self.ladder
        self._title()
        if ladder is None:
            # The ladder opens only with a capture running (WireActions checks first).
            view.set_lines([("no TCP connection seen yet", self.palette.muted)])
            self.row_starts = []
            return
        ladder.take_changes()
        self.row_starts = []
        view.set_lines(self._lines_from(ladder, 0))

    def follow(self) -> None:
        """Append what the ladder gained since the last tick; move to a new connection if following."""
        ladders = self.recorder.set.ladders
        if not self.pinned and ladders and self.index != len(ladders) - 1:
            self.index = len(ladders) - 1
            self.redraw()
            return
        ladder = self.ladder
        if ladder is None:
            if ladders:
                self.index = len(ladders) - 1
                self.redraw()
            return
        view = self.query_one(LadderLines)
        if max(MIN_WIDTH, view.scrollable_content_region.width - 1) != self.width:
            self.redraw()
            return
        first = ladder.take_changes()
        if first is None:
            return
        if first == 0 or first > len(self.row_starts):
            ladder.changed_from = 0
            self.redraw()
            return
        keep = self.row_starts[first] if first < len(self.row_starts) else len(view.lines)
        view.set_lines(self._lines_from(ladder, first, keep), keep_from=keep)
        self._title()

    def _title(self) -> None:
        ladder, index = self.ladder, self.index
        count = len(self.recorder.set.ladders)
        if ladder is None or index is None:  # (no ladder without an index)
            text = "Ladder · no connection"
        else:
            states = " / ".join(ladder.states)
            text = f"Ladder {index + 1}/{count} · {ladder.title} · {states}"
            if self.last_written:
                text += f" · saved {self.last_written}"
        self.query_one("#ladder-title", Static).update(text)

    def on_resize(self) -> None:
        if self.is_mounted:
            self.call_after_refresh(self.redraw)

    def action_older(self) -> None:
        if self.index is not None and self.index > 0:
            self.index -= 1
            self.pinned = True
            self.redraw()

    def action_newer(self) -> None:
        count = len(self.recorder.set.ladders)
        if self.index is not None and self.index < count - 1:
            self.index += 1
            self.pinned = self.index < count - 1
            self.redraw()

    def action_save_svg(self) -> None:
        ladder = self.ladder
        if ladder is None:
            self.notify("no ladder to save yet", severity="warning")
            return
        self.write_svg(ladder_svg(ladder), export_path(self.export_dir, "ladder", ".svg"))

    @work(thread=True, exit_on_error=False, group="export")
    def write_svg(self, document: str, path: Path) -> None:
        try:
            path.write_text(document, encoding="utf-8")
        except OSError as exc:
            self.post_message(LadderSaved(str(path), "ladder", exc.strerror or str(exc)))
            return
        self.post_message(LadderSaved(str(path), "ladder"))

    @on(LadderSaved)
    def _saved(self, event: LadderSaved) -> None:
        if event.error:
            self.notify(f"{event.path}: {event.error}", title="ladder not saved", severity="error")
            return
        self.last_written = event.path
        self._title()
        self.notify(event.path, title="ladder written (SVG)")
        book = getattr(self.app, "session", None)
        if book is not None:
            book.book.note(f"ladder written to {event.path}", time.monotonic_ns())
