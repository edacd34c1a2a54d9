"""The Inspector's view of a host: its address and card, its state, its cable's settings and counters."""

from __future__ import annotations

from rich.text import Text

from playground.session.view import HostView, RemoteHostView
from widgets.palette import Palette

__all__ = ["host_text", "remote_host_text"]


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


def remote_host_text(host: RemoteHostView, palette: Palette) -> Text:
    """A real machine reached with ssh: where, how far, what it runs."""
    text = Text()
    text.append(f"remote host {host.name}", palette.strong)
    state = "connected" if host.connected else ("disconnected" if host.kernel else "not connected yet")
    text.append(f"  {state}\n", palette.success if host.connected else palette.warning)
    text.append(f"ssh {host.destination}\n", palette.muted)
    if host.address:
        text.append(f"address {host.address} (what a wildcard bind there resolves to)\n", palette.muted)
    if host.rtt_ms is not None:
        text.append("\nround trip  ", palette.strong)
        text.append(f"{host.rtt_ms:.2f} ms (ssh, measured when it connected)\n", palette.accent)
    if host.kernel:
        text.append("kernel      ", palette.strong)
        text.append(f"{host.kernel}\n", palette.muted)
    if host.python:
        text.append("python      ", palette.strong)
        text.append(f"{host.python}\n", palette.muted)
    text.append("\nA real machine: cut, crash, boot and cable are the network lab's.", palette.muted)
    return text
