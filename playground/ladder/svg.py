"""Drawing ladders as SVG."""

from __future__ import annotations

import html
import math
import re
from collections.abc import Sequence

from playground.ladder.model import (
    CLOSE_WAIT,
    CLOSED,
    CLOSING,
    ESTABLISHED,
    FIN_WAIT_1,
    FIN_WAIT_2,
    LAST_ACK,
    LISTEN,
    SYN_RECV,
    SYN_SENT,
    TIME_WAIT,
    Ladder,
    Row,
)
from playground.ladder.text import fit_cells, text_cells

_CHAR = 7.22  # width of a 12 px monospace character
_FLAG_COLOURS = (("RST", "#c62828"), ("SYN", "#2e7d32"), ("FIN", "#1565c0"))
_STATE_COLOURS = {
    ESTABLISHED: "#e8f5e9",
    CLOSED: "#eeeeee",
    LISTEN: "#f3e5f5",
    SYN_SENT: "#fff8e1",
    SYN_RECV: "#fff8e1",
    TIME_WAIT: "#fff3e0",
    CLOSE_WAIT: "#e3f2fd",
    LAST_ACK: "#e3f2fd",
    FIN_WAIT_1: "#e3f2fd",
    FIN_WAIT_2: "#e3f2fd",
    CLOSING: "#e3f2fd",
}


_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml(text: str) -> str:
    """Text safe in an XML 1.0 document: escaped, and characters XML cannot carry replaced by U+FFFD."""
    return _NOT_XML.sub("\ufffd", html.escape(text, quote=True))


def _colour(flags: Sequence[str], length: int) -> str:
    for flag, colour in _FLAG_COLOURS:
        if flag in flags:
            return colour
    return "#212121" if length else "#757575"


def _call_text(ladder: Ladder, row: Row) -> str:
    if row.kind == "kernel":
        return f"kernel: {row.text}"
    if row.kind == "call" and row.process is not None and row.process != ladder.columns[row.side].process:
        return f"{row.process}: {row.text}"
    return row.text


def _width(text: str) -> float:
    return text_cells(text) * _CHAR


def ladder_svg(ladders: Ladder | Sequence[Ladder], title: str | None = None) -> str:
    """A standalone SVG document of one ladder, or several stacked (no external resources)."""
    items = [ladders] if isinstance(ladders, Ladder) else list(ladders)
    gutter = 84.0
    side_width = 110.0
    middle = 320.0
    for ladder in items:
        for row in ladder.rows:
            if row.kind == "segment":
                middle = max(middle, _width(row.label) + 60)
            else:
                side_width = max(side_width, _width(_call_text(ladder, row)) + 24)
        for column in ladder.columns:
            side_width = max(side_width, _width(column.name) / 2 + 24, _width(column.address_text) / 2 + 24)
    side_width = min(side_width, 420.0)
    middle = min(middle, 640.0)
    x_left = gutter + side_width
    x_right = x_left + middle
    total_width = x_right + side_width + 16
    body: list[str] = []
    y = 24.0
    if title:
        body.append(f'<text x="12" y="{y:.1f}" class="title">{_xml(title)}</text>')
        y += 24
    if not items:
        body.append(f'<text x="12" y="{y:.1f}">no TCP connection was captured</text>')
        y += 24
    for number, ladder in enumerate(items, 1):
        y = _SvgLadder(body, ladder, gutter, (x_left, x_right), side_width).draw(number, y)
        y += 28
    height = y
    head = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total_width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {total_width:.0f} {height:.0f}" font-family="DejaVu Sans Mono, Menlo, Consolas, monospace" '
        f'font-size="12">\n'
        "<defs>\n"
        + "".join(
            f'<marker id="arrow-{name}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" '
            f'orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="{colour}"/></marker>\n'
            for name, colour in (
                ("rst", "#c62828"),
                ("syn", "#2e7d32"),
                ("fin", "#1565c0"),
                ("data", "#212121"),
                ("ack", "#757575"),
            )
        )
        + "<style>\n"
        ".title { font-weight: bold; font-size: 14px; }\n"
        ".column { font-weight: bold; }\n"
        ".address, .time { fill: #616161; font-size: 11px; }\n"
        ".call { fill: #4a148c; }\n"
        ".kernel { fill: #bf360c; font-style: italic; }\n"
        ".state { font-size: 11px; font-weight: bold; }\n"
        "</style>\n"
        "</defs>\n"
        '<rect width="100%" height="100%" fill="white"/>\n'
    )
    return head + "\n".join(body) + "\n</svg>\n"


def _marker(flags: Sequence[str], length: int) -> str:
    for flag in ("RST", "SYN", "FIN"):
        if flag in flags:
            return flag.lower()
    return "data" if length else "ack"


HELD_SHOWN_NS = 1_000_000  # a segment the cable held longer than this is drawn arriving later, lower down


class _SvgLadder:
    """One ladder drawn into `body` (SVG elements), top to bottom."""

    def __init__(
        self, body: list[str], ladder: Ladder, gutter: float, xs: tuple[float, float], side_width: float
    ) -> None:
        self.body = body
        self.ladder = ladder
        self.gutter = gutter
        self.xs = xs
        self.side_width = side_width
        self.held: list[tuple[int, Row, float, int]] = []  # (place in body, row, top, arrived ns)

    def draw(self, number: int, y: float) -> float:
        body, ladder, xs = self.body, self.ladder, self.xs
        columns = ladder.columns
        title = f"{number}. {ladder.title}   {columns[0].address_text} ⇄ {columns[1].address_text}"
        body.append(f'<g class="ladder" id="ladder-{number}">')
        body.append(f'<text x="12" y="{y:.1f}" class="title">{_xml(title)}</text>')
        y += 26
        for x, column in zip(xs, columns, strict=True):
            body.append(f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="middle" class="column">{_xml(column.name)}</text>')
            if column.label:
                body.append(
                    f'<text x="{x:.1f}" y="{y + 14:.1f}" text-anchor="middle" class="address">'
                    f"{_xml(column.address_text)}</text>"
                )
        y += 24
        top = y
        lines_at = len(body)
        y = self.states(ladder.initial, (True, True), y + 8)
        placed: list[tuple[int, float]] = []  # each row's time and where it went, for the held arrows
        for row in ladder.rows:
            placed.append((row.t_ns, y))
            y = self.segment(row, y) if row.kind == "segment" else self.note(row, y)
            if any(row.changed):
                y = self.states(row.states, row.changed, y + 6)
        self.draw_held(placed, y)
        body.insert(
            lines_at,
            "".join(
                f'<line x1="{x:.1f}" y1="{top - 4:.1f}" x2="{x:.1f}" y2="{y:.1f}" stroke="#424242" stroke-width="2"/>'
                for x in xs
            ),
        )
        body.append("</g>")
        return y

    def states(self, values: tuple[str, str], show: tuple[bool, bool], y: float) -> float:
        for side, (value, shown) in enumerate(zip(values, show, strict=True)):
            if not shown:
                continue
            w = _width(value) * 11 / 12 + 10
            x = self.xs[side] - 8 - w if side == 0 else self.xs[side] + 8
            fill = _STATE_COLOURS.get(value, "#ffffff")
            self.body.append(
                f'<rect x="{x:.1f}" y="{y - 11:.1f}" width="{w:.1f}" height="16" rx="3" fill="{fill}" '
                f'stroke="#9e9e9e"/>'
            )
            self.body.append(
                f'<text x="{x + w / 2:.1f}" y="{y + 1:.1f}" text-anchor="middle" class="state">{_xml(value)}</text>'
            )
        return y + 22

    def segment(self, row: Row, y: float) -> float:
        """An arrow from one column to the other, labelled along it, with its time in the gutter.

        One the network lab's cable held (a delay) is drawn once every row is placed: it ends at the
        first row that came after it arrived, further down the receiver's column."""
        body = self.body
        packet = row.packet
        if packet is not None and packet.delivered_ns is not None and packet.delivered_ns - row.t_ns > HELD_SHOWN_NS:
            self.held.append((len(body), row, y, packet.delivered_ns))
            body.append("")
        else:
            body.append(self.arrow(row, y, y + 18))
        body.append(
            f'<text x="{self.gutter - 12:.1f}" y="{y + 4:.1f}" text-anchor="end" class="time">{row.t_ms:.3f} ms</text>'
        )
        return y + 32

    def arrow(self, row: Row, y1: float, y2: float) -> str:
        columns = self.ladder.columns
        x1, x2 = self.xs[row.side], self.xs[1 - row.side]
        colour = _colour(row.flags, row.length)
        dx, dy = x2 - x1, y2 - y1
        angle = math.degrees(math.atan2(dy, abs(dx))) * (1 if dx > 0 else -1)
        mx, my = (x1 + x2) / 2, (y1 + y2) / 2
        tip = f"{row.t_ms:.3f} ms  {columns[row.side].name} > {columns[1 - row.side].name}  {row.label}"
        tip += f"  win {row.window}"
        packet = row.packet
        if packet is not None and packet.delivered_ns is not None and packet.delivered_ns - row.t_ns > HELD_SHOWN_NS:
            tip += f"  (the cable held it {(packet.delivered_ns - row.t_ns) / 1e6:.3f} ms)"
        parts = [f'<g class="segment"><title>{_xml(tip)}</title>']
        if row.lost:  # dashed, stopping three quarters of the way with a cross where the cable dropped it
            ex, ey = x1 + 0.75 * dx, y1 + 0.75 * dy
            parts.append(
                f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{ex:.1f}" y2="{ey:.1f}" stroke="{colour}" '
                f'stroke-width="1.5" stroke-dasharray="5 3"/>'
            )
            parts.append(
                f'<path d="M{ex - 5:.1f},{ey - 5:.1f} L{ex + 5:.1f},{ey + 5:.1f} M{ex - 5:.1f},{ey + 5:.1f} '
                f'L{ex + 5:.1f},{ey - 5:.1f}" stroke="#c62828" stroke-width="2"/>'
            )
        else:
            parts.append(
                f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{colour}" '
                f'stroke-width="1.5" marker-end="url(#arrow-{_marker(row.flags, row.length)})"/>'
            )
        label = fit_cells(row.label, int((abs(dx) - 40) / _CHAR))
        parts.append(
            f'<text x="{mx:.1f}" y="{my - 5:.1f}" text-anchor="middle" fill="{colour}" '
            f'transform="rotate({angle:.2f} {mx:.1f} {my:.1f})">{_xml(label)}</text>'
        )
        return "\n".join(parts) + "\n</g>"

    def draw_held(self, placed: list[tuple[int, float]], end: float) -> None:
        """The held arrows, each from its row down to where the first row after its arrival was placed."""
        for index, row, y1, delivered_ns in self.held:
            y2 = next((y for t_ns, y in placed if t_ns >= delivered_ns and y > y1), end)
            self.body[index] = self.arrow(row, y1, max(y2, y1 + 18))
        self.held.clear()

    def note(self, row: Row, y: float) -> float:
        """A call (or a kernel sample) beside its column, with its time in the gutter."""
        body = self.body
        full = _call_text(self.ladder, row)
        text = fit_cells(full, int((self.side_width - 16) / _CHAR))
        x = self.xs[row.side]
        css = "kernel" if row.kind == "kernel" else "call"
        anchor, tx = ("end", x - 10) if row.side == 0 else ("start", x + 10)
        body.append(f'<g class="{css}"><title>{_xml(f"{row.t_ms:.3f} ms  {full}")}</title>')
        body.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="#4a148c"/>')
        body.append(f'<text x="{tx:.1f}" y="{y + 4:.1f}" text-anchor="{anchor}" class="{css}">{_xml(text)}</text>')
        body.append("</g>")
        if row.kind != "kernel":
            body.append(
                f'<text x="{self.gutter - 12:.1f}" y="{y + 4:.1f}" text-anchor="end" class="time">'
                f"{row.t_ms:.3f} ms</text>"
            )
        return y + 20
