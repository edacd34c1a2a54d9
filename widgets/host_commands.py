"""The palette's network lab commands: add a host; cut, mend, crash and boot each host; its cable.

They write the script line (`cut beta`) and run it as typed, so it shows in the log and the recording.
Only what applies is offered: `mend` for a cut host, `boot` for a crashed one.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

from playground.session.view import HostView

__all__ = ["HostCommands", "host_lines"]

_WHAT = {
    "cut": "the cable is cut in the middle: nothing passes, and neither side is told",
    "mend": "the cut is over: the next retransmission passes",
    "crash": "the host loses power: its processes and sockets vanish, nothing is sent",
    "boot": "the host is up again: same address and card, no connections, nothing running",
    "cable": "the cable's delay, jitter, loss... are removed",
}


def host_lines(host: HostView) -> list[tuple[str, str]]:
    """(line, what it does) for each fault that applies to the host now."""
    if host.state == "crashed":
        return [(f"boot {host.name}", _WHAT["boot"])]
    out = [(f"mend {host.name}", _WHAT["mend"])] if host.state == "cut" else [(f"cut {host.name}", _WHAT["cut"])]
    out.append((f"crash {host.name}", _WHAT["crash"]))
    if host.cable:
        out.append((f"cable {host.name} clear", _WHAT["cable"]))
    return out


class HostCommands(Provider):
    """`host: cut beta` and the like, for every host of the lab."""

    def _commands(self) -> list[tuple[str, Callable[[], object], str]]:
        screen = self.screen
        view = getattr(screen, "lab_view", None)
        run_lines = getattr(screen, "run_lines", None)
        if view is None or run_lines is None:
            return []
        commands: list[tuple[str, Callable[[], object], str]] = [
            (f"host: {line}", partial(run_lines, [line]), f"{what} · {host.address}")
            for host in view.hosts
            for line, what in host_lines(host)
        ]
        cable_form = getattr(screen, "open_cable_form", None)
        if cable_form is not None:
            commands += [
                (f"host: cable {host.name}…", partial(cable_form, host.name), "delay, jitter, loss, ... in a form")
                for host in view.hosts
                if host.state != "crashed"
            ]
        add_host = getattr(screen, "action_add_host", None)
        if add_host is not None and view.ready:
            commands.append(("host: add a host…", add_host, "a new machine of the network lab, cabled to the switch"))
        return commands

    async def discover(self) -> Hits:
        for title, callback, help_text in self._commands():
            yield DiscoveryHit(title, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, callback, help_text in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, text=title, help=help_text)
