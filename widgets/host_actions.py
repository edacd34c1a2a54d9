"""The actions on the network lab's hosts (a mixin for MainScreen): add one, cut or mend its cable,
crash or boot it, impair its cable with a small form.

Each writes the script line (`cut beta`) and runs it as typed. They act on the selected host, or on
the host of the selected process.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from playground.session.view import HostView, LabView

if TYPE_CHECKING:  # what the mixin finds on the screen it is mixed into
    from widgets.lab_screen import LabScreen as _Screen
else:
    _Screen = object

__all__ = ["HOST_ACTIONS", "HostActions", "next_host"]

HOST_ACTIONS = {"cut_mend", "crash_boot", "cable"}
_FIRST_ADDRESSES = ("192.0.2.1", "198.51.100.1", "203.0.113.1")
_NAMES = ("alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa")


def next_host(view: LabView) -> str:
    """A name and an address for a new host that no host has yet: `alpha 192.0.2.1`, `beta 192.0.2.2`..."""
    names = {host.name for host in view.hosts} | {proc.name for proc in view.processes}
    taken = {host.address for host in view.hosts}
    name = next((n for n in _NAMES if n not in names), None)
    if name is None:
        name = next(f"host{i}" for i in range(1, 10_000) if f"host{i}" not in names)
    for first in _FIRST_ADDRESSES:
        start = ipaddress.IPv4Address(first)
        for offset in range(254):
            address = str(start + offset)
            if address not in taken:
                return f"{name} {address}"
    return f"{name} 192.0.2.1"


class HostActions(_Screen):
    """Main-screen actions on hosts (mixed in before LabScreen)."""

    @property
    def selected_host(self) -> HostView | None:
        """The selected host, or the host the selected process runs on."""
        if self.selected and self.selected[0] == "host":
            return self.lab_view.host(self.selected[1])
        proc = self.selected_process
        return self.lab_view.host(proc.host) if proc is not None and proc.host else None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in HOST_ACTIONS:
            return self.selected_host is not None  # hidden in a lab without hosts
        if action == "add_host":
            return True if self.lab_view.ready else None
        return super().check_action(action, parameters)

    def unavailable_reason(self, action: str) -> str | None:
        if action == "add_host":
            return "the lab is still starting"
        if action not in HOST_ACTIONS:
            return super().unavailable_reason(action)
        key = self.key_names().get(action, action)
        if not self.lab_view.hosts:
            return f"{key} acts on a host, and this lab has none yet: add one with H (or type 'host alpha 192.0.2.1')"
        return f"{key} acts on a host: select a host (or a process on one) in the Lab pane first"

    def action_cut_mend(self) -> None:
        host = self.selected_host
        if host is None:
            return
        if host.state == "crashed":
            self.refuse(f"{host.name} is crashed: it has no cable until it boots (O)")
            return
        self.run_lines([f"{'mend' if host.state == 'cut' else 'cut'} {host.name}"])

    def action_crash_boot(self) -> None:
        host = self.selected_host
        if host is not None:
            self.run_lines([f"{'boot' if host.state == 'crashed' else 'crash'} {host.name}"])

    def action_cable(self) -> None:
        host = self.selected_host
        if host is not None:
            self.open_cable_form(host.name)

    def open_cable_form(self, name: str) -> None:
        from widgets.cable_form import CableForm

        host = self.lab_view.host(name)
        if host is None:
            return

        def chosen(line: str | None) -> None:
            if line:
                self.run_lines([line])

        self.app.push_screen(CableForm(host), chosen)

    def action_add_host(self) -> None:
        from widgets.prompt import PromptScreen

        def chosen(value: str | None) -> None:
            if value:
                self.run_lines([f"host {value}"])

        hint = "NAME ADDRESS, the address in 192.0.2.0/24, 198.51.100.0/24 or 203.0.113.0/24"
        self.app.push_screen(PromptScreen("a new host: its name and address", next_host(self.lab_view), hint), chosen)
