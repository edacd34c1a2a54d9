"""Drawing a ladder as monospace text."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from playground.ladder.model import Ladder, Row

# Where East Asian wide characters may be (box drawing and the arrows' triangles are not among them).
_MAYBE_WIDE = re.compile(
    "[\u1100-\u115f\u231a-\u23ff\u25fd-\u27bf\u2b1b-\u2b55\u2e80-\ua4cf\ua960-\ua97f\uac00-\ud7a3"
    "\uf900-\ufaff\ufe10-\ufe6f\uff00-\uff60\uffe0-\uffe6\U0001f000-\U0001faff\U00020000-\U0003fffd]"
)


def text_cells(text: str) -> int:
    """Terminal cells the text takes (East Asian wide characters take two)."""
    if text.isascii() or not _MAYBE_WIDE.search(text):
        return len(text)
    return sum(_char_cells(ch) for ch in text)


@lru_cache(maxsize=4096)
def _char_cells(ch: str) -> int:
    return 2 if unicodedata.east_asian_width(ch) in "WF" else 1


def fit_cells(text: str, width: int) -> str:
    """The text cut to `width` terminal cells, with … where it was cut."""
    if width <= 0:
        return ""
    if text_cells(text) <= width:
        return text
    out, used = [], 0
    for ch in text:
        w = text_cells(ch)
        if used + w > width - 1:
            break
        out.append(ch)
        used += w
    return "".join(out) + "…"


class _Canvas:
    def __init__(self, width: int) -> None:
        self.cells = [" "] * width

    def put(self, x: int, text: str) -> None:
        if text_cells(text) == len(text):  # one cell a character: copy it in at once
            start, end = max(x, 0), min(x + len(text), len(self.cells))
            if start < end:
                self.cells[start:end] = text[start - x : end - x]
            return
        for ch in text:
            if 0 <= x < len(self.cells):
                self.cells[x] = ch
                if text_cells(ch) == 2 and x + 1 < len(self.cells):
                    self.cells[x + 1] = ""
                x += text_cells(ch)

    def text(self) -> str:
        return "".join(self.cells).rstrip()


MIN_TEXT_WIDTH = 24


def ladder_text(ladder: Ladder, width: int = 80, times: bool | None = None, start: int = 0) -> list[str]:
    """The ladder in monospace lines no wider than `width` (at least 24) cells.

    States are written outside the two column lines (left of the left one, right of the right
    one), arrows and calls between them. `times` (by default when width >= 100) adds each row's
    time in ms since the lab's t0 at the left. With `start`, only the lines of rows from that
    index on (no header), for a view that appends as the ladder grows.
    """
    if width < MIN_TEXT_WIDTH:
        raise ValueError(f"a ladder needs at least {MIN_TEXT_WIDTH} columns")
    layout = _Layout(width, width >= 100 if times is None else times)
    lines = layout.header(ladder) if start == 0 else []
    for row in ladder.rows[start:]:
        lines.append(layout.row(ladder, row))
        if any(row.changed):
            lines.append(layout.state_line(row.states, row.changed))
    return lines


class _Layout:
    """Where a ladder's parts go across `width` cells: times, states, the two columns, arrows between."""

    def __init__(self, width: int, times: bool) -> None:
        self.width = width
        self.times = times
        self.gutter = 11 if times else 0
        margin = max(4, min(13, (width - self.gutter - 10) // 3))
        self.left, self.right = self.gutter + margin, width - margin - 1
        self.state_width = margin - 2
        self.inner = self.right - self.left - 1

    def state_line(self, states: tuple[str, str], show: tuple[bool, bool], top: bool = False) -> str:
        canvas = _Canvas(self.width)
        if show[0]:
            canvas.put(self.gutter + 1, fit_cells(states[0], self.state_width))
        if show[1]:
            canvas.put(self.right + 2, fit_cells(states[1], self.state_width))
        canvas.put(self.left, "┬" if top else "│")
        canvas.put(self.right, "┬" if top else "│")
        return canvas.text()

    def header(self, ladder: Ladder) -> list[str]:
        """The columns' names and addresses, then the initial states."""
        width, gutter = self.width, self.gutter
        lines = []
        columns = ladder.columns
        for texts in ([c.name for c in columns], [c.address_text if c.label else "" for c in columns]):
            if not any(texts):
                continue
            canvas = _Canvas(width)
            first = fit_cells(texts[0], (width - gutter) // 2 - 2)
            second = fit_cells(texts[1], width - gutter - text_cells(first) - 3)
            canvas.put(gutter + 1, first)
            fits = text_cells(second) <= self.state_width
            canvas.put(self.right + 2 if fits else width - 1 - text_cells(second), second)
            lines.append(canvas.text())
        top = self.state_line(ladder.initial, (True, True), top=True)
        lines.append(f"{'ms':>9}" + top[9:] if self.times else top)
        return lines

    def row(self, ladder: Ladder, row: Row) -> str:
        canvas = _Canvas(self.width)
        if self.times and row.kind in ("segment", "call", "end"):
            canvas.put(0, fit_cells(f"{row.t_ms:9.3f}", self.gutter - 1))
        if row.kind == "segment":
            self._arrow(canvas, row)
        else:
            self._note(canvas, ladder, row)
        return canvas.text()

    def _arrow(self, canvas: _Canvas, row: Row) -> None:
        inner = self.inner
        label = row.label if text_cells(row.label) + 8 <= inner else row.text
        label = fit_cells(label, inner - 8)
        fill = inner - 1 - text_cells(label) - 2
        before = fill // 2
        after = fill - before
        body = "─" * before + f" {label} " + "─" * after
        if row.lost:  # it stops short of the receiver, crossed out
            canvas.put(self.left, "├" + body[:-2] + "✕  │" if row.side == 0 else "│  ✕" + body[2:] + "┤")
        elif row.side == 0:
            canvas.put(self.left, "├" + body + "▶│")
        else:
            canvas.put(self.left, "│◀" + body + "┤")

    def _note(self, canvas: _Canvas, ladder: Ladder, row: Row) -> None:
        """A call, a kernel sample or an end, written beside its column."""
        text = row.text
        if row.kind == "kernel":
            text = f"kernel: {row.text}"
        elif row.process is not None and row.process != ladder.columns[row.side].process and row.kind == "call":
            text = f"{row.process}: {text}"
        text = fit_cells(text, self.inner - 3)
        canvas.put(self.left, "│")
        canvas.put(self.right, "│")
        if row.side == 0:
            canvas.put(self.left + 2, text)
        else:
            canvas.put(self.right - 1 - text_cells(text), text)
