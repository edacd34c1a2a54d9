"""The network lab's directives carried out on a lab: `host`, `cut`, `mend`, `crash`, `boot`, `cable`."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from playground.errors import LabError
from playground.events import DirectiveDone
from playground.script.format import format_node
from playground.script.model import Cable, Fault, Host

if TYPE_CHECKING:
    from playground.lab import Lab
    from playground.netlab.hosts import LabHosts

CRASH_KILL_WAIT = 5.0


def hosts_of(lab: Lab) -> LabHosts:
    if lab.hosts is None:
        raise LabError("this lab has no hosts yet: add one with 'host alpha 192.0.2.1'")
    return lab.hosts


async def carry_out(lab: Lab, node: Host | Fault | Cable) -> None:
    """One line of the network lab, then its DirectiveDone event."""
    if isinstance(node, Host):
        if lab.hosts is None:
            from playground.netlab.hosts import LabHosts  # pyroute2 takes 0.15 s to import: only host labs need it

            lab.hosts = LabHosts(lab.network)
        await lab.hosts.add(node.name, node.address)
    elif isinstance(node, Fault):
        hosts = hosts_of(lab)
        if node.kind == "cut":
            await hosts.cut(node.host)
        elif node.kind == "mend":
            await hosts.mend(node.host)
        elif node.kind == "crash":
            await crash(lab, hosts, node.host)
        else:
            await hosts.boot(node.host)
    else:
        await hosts_of(lab).cable(node.host, ([node.direction] if node.direction else []) + list(node.settings))
    lab._emit(DirectiveDone(node, format_node(node), time.monotonic_ns()))


async def crash(lab: Lab, hosts: LabHosts, name: str) -> None:
    """The host loses power: its port is cut first (nothing it sends while dying leaves it), then every process
    on it is killed, then its namespace goes with every socket it had."""
    await hosts.isolate(name)
    victims = [p for p in lab.processes.values() if p.host == name and (p.death is None or p.zombie)]
    for proc in victims:
        lab.lifecycle.kill_now(proc)
    await asyncio.gather(*(lab.wait_dead(p, CRASH_KILL_WAIT) for p in victims))
    await hosts.power_off(name)
