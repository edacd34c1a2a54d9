"""How the wire looks: a packet line's spans and a hidden socket's tree label, in the theme's colours."""

from __future__ import annotations

from rich.style import StyleType
from rich.text import Text

from playground.session.eventbook import MARK_COLUMN
from playground.session.view import format_address
from playground.session.wire import HiddenSocketView, timer_text
from widgets.palette import Palette


def packet_styles(plain: str, palette: Palette) -> list[tuple[int, int, StyleType]]:
    """(start, end, style) spans for a packet line of the log: its flags stand out."""
    spans: list[tuple[int, int, StyleType]] = [(MARK_COLUMN, len(plain), palette.muted)]
    body = MARK_COLUMN + 2
    gt = plain.find(" > ", body)
    if gt < 0:
        return spans
    spans.append((body, gt, palette.primary))
    dst_end = plain.find(" ", gt + 3)
    if dst_end < 0:
        return spans
    spans.append((gt + 3, dst_end, palette.primary))
    word_end = plain.find(" ", dst_end + 1)
    word_end = len(plain) if word_end < 0 else word_end
    word = plain[dst_end + 1 : word_end]
    if word in ("ICMP", "ICMPv6"):
        spans.append((dst_end + 1, len(plain), palette.warning))
        return spans
    if word == "UDP":
        spans.append((dst_end + 1, word_end, palette.accent))
        return spans
    offset = dst_end + 1
    for flag in word.split("|"):
        style = {"SYN": palette.success, "FIN": palette.accent, "RST": palette.error}.get(flag, palette.strong)
        spans.append((offset, offset + len(flag), style))
        offset += len(flag) + 1
    return spans


def hidden_label(sock: HiddenSocketView, palette: Palette, deterministic: bool = False) -> Text:
    text = Text()
    text.append(sock.name, palette.muted)
    text.append(" no fd tcp ", palette.muted)
    text.append(sock.state, palette.warning)
    text.append(
        f" {format_address(sock.local, deterministic)} ↔ {format_address(sock.peer, deterministic)}", palette.muted
    )
    text.append(f"  ⏲ {timer_text(sock.timer, sock.expires_ms, deterministic)}", palette.accent)
    return text
