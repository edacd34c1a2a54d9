"""A remote host as the session shows it: a module of its own, light, for the TUI's first frame
(the hosts' machinery, ssh and the capture's packets, is imported only when a lab starts)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RemoteHostView"]


@dataclass(frozen=True)
class RemoteHostView:
    """A remote host as a lab tree or a recording's header shows it."""

    name: str
    destination: str
    connected: bool
    rtt_ms: float | None
    kernel: str | None
    python: str | None
    address: str | None
