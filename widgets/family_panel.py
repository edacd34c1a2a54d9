"""The Inspector's view of a family of sockets (NAME[0], NAME[1], ... of one process): what they add up to."""

from __future__ import annotations

from rich.text import Text

from playground.session.view import FamilyView, format_bytes
from widgets.palette import Palette

__all__ = ["family_text"]

_EXAMPLES = 3  # members named by index in the busiest / by-state lines


def family_text(family: FamilyView, palette: Palette) -> Text:
    """Title, the index range, counts by state and kind, and the queues' totals."""
    text = Text()
    text.append(f"{family.process} · {family.range_text}", palette.strong)
    text.append(f"  {family.count:,} sockets\n", palette.muted)
    span = f"indices {family.first}..{family.last}"
    text.append(
        span + (f", {family.missing:,} missing" if family.missing else ", none missing") + "\n\n", palette.muted
    )
    text.append("by state\n", palette.strong)
    for state, count in family.states:
        text.append(f"  {state:<12}", palette.primary)
        text.append(f"{count:>8,}", palette.strong)
        if len(family.states) > 1:  # the first few members in that state (not all 10,000 at each key press)
            examples = [f"{family.name}[{i}]" for i in family.in_state(state, _EXAMPLES + 1)]
            more = "…" if len(examples) > _EXAMPLES else ""
            text.append(f"   {', '.join(examples[:_EXAMPLES])}{more}", palette.muted)
        text.append("\n")
    text.append("by kind   ", palette.strong)
    text.append(" · ".join(f"{count:,} {kind}" for kind, count in family.kinds) + "\n\n", palette.muted)
    text.append("queues    ", palette.strong)
    text.append(f"in {format_bytes(family.inq)}  out {format_bytes(family.outq)}", palette.accent)
    text.append(f"  ({family.busy:,} with bytes queued)\n", palette.muted)
    if family.busy:
        for index, inq, outq in family.busiest(_EXAMPLES):
            text.append(f"  {family.name}[{index}]  in {format_bytes(inq)} out {format_bytes(outq)}\n", palette.muted)
    text.append("\nOpen the family in the Lab pane (space or enter) to select one socket.", palette.muted)
    return text
