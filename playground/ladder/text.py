"""Drawing a ladder as monospace text."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from playground.ladder.model import Ladder

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
    if times is None:
        times = width >= 100
    gutter = 11 if times else 0
    margin = max(4, min(13, (width - gutter - 10) // 3))
    left, right = gutter + margin, width - margin - 1
    state_width = margin - 2
    lines: list[str] = []

    def state_line(states: tuple[str, str], show: tuple[bool, bool], top: bool = False) -> str:
        canvas = _Canvas(width)
        if show[0]:
            canvas.put(gutter + 1, fit_cells(states[0], state_width))
        if show[1]:
            canvas.put(right + 2, fit_cells(states[1], state_width))
        canvas.put(left, "┬" if top else "│")
        canvas.put(right, "┬" if top else "│")
        return canvas.text()

    if start == 0:
        columns = ladder.columns
        for texts in ([c.name for c in columns], [c.address_text if c.label else "" for c in columns]):
            if not any(texts):
                continue
            canvas = _Canvas(width)
            first = fit_cells(texts[0], (width - gutter) // 2 - 2)
            second = fit_cells(texts[1], width - gutter - text_cells(first) - 3)
            canvas.put(gutter + 1, first)
            canvas.put(right + 2 if text_cells(second) <= state_width else width - 1 - text_cells(second), second)
            lines.append(canvas.text())
        top = state_line(ladder.initial, (True, True), top=True)
        lines.append(f"{'ms':>9}" + top[9:] if times else top)
    inner = right - left - 1
    for row in ladder.rows[start:]:
        canvas = _Canvas(width)
        if times and row.kind in ("segment", "call", "end"):
            canvas.put(0, fit_cells(f"{row.t_ms:9.3f}", gutter - 1))
        if row.kind == "segment":
            label = row.label if text_cells(row.label) + 8 <= inner else row.text
            label = fit_cells(label, inner - 8)
            fill = inner - 1 - text_cells(label) - 2
            before = fill // 2
            after = fill - before
            body = "─" * before + f" {label} " + "─" * after
            if row.side == 0:
                canvas.put(left, "├" + body + "▶│")
            else:
                canvas.put(left, "│◀" + body + "┤")
        else:
            text = row.text
            if row.kind == "kernel":
                text = f"kernel: {row.text}"
            elif row.process is not None and row.process != ladder.columns[row.side].process and row.kind == "call":
                text = f"{row.process}: {text}"
            text = fit_cells(text, inner - 3)
            canvas.put(left, "│")
            canvas.put(right, "│")
            if row.side == 0:
                canvas.put(left + 2, text)
            else:
                canvas.put(right - 1 - text_cells(text), text)
        lines.append(canvas.text())
        if any(row.changed):
            lines.append(state_line(row.states, row.changed))
    return lines
