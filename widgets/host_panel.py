"""The Inspector's view of a host: its address and card, its state, its cable's settings and counters."""

from __future__ import annotations

from rich.text import Text

from playground.session.view import HostView
from widgets.palette import Palette

__all__ = ["host_text"]


def host_text(host: HostView, palette: Palette) -> Text:
    text = Text()
    text.append(f"host {host.name}", palette.strong)
    style = palette.success if host.state == "up" else palette.error if host.state == "crashed" else palette.warning
    text.append(f"  {host.state}\n", style)
    text.append(f"address {host.address} · card {host.mac} · eth0\n\n", palette.muted)
    text.append("cable  ", palette.strong)
    text.append("; ".join(f"{direction}: {settings}" for direction, settings in host.cable) or "plain", palette.accent)
    text.append("\n")
    if host.counters:
        text.append("\n" + "  ".join(f"{name} {count}" for name, count in host.counters), palette.muted)
    elif host.state == "crashed":
        text.append("\nno cable until it boots", palette.muted)
    text.append("\n\nT cut/mend · O crash/boot · I cable… · H add a host (also in ctrl+p)", palette.muted)
    return text
