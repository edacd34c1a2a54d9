"""The network lab's directives carried out on a lab: `host`, `cut`, `mend`, `crash`, `boot`, `cable`."""

from __future__ import annotations

import asyncio
import functools
import time
from typing import TYPE_CHECKING

from playground.errors import LabError
from playground.events import DirectiveDone
from playground.lab_lifecycle import kill_quietly
from playground.netlab.addressing import host_address
from playground.netlab.capture_feed import SwitchCapture
from playground.script.format import format_node
from playground.script.model import Cable, Fault, Host

if TYPE_CHECKING:
    from playground.lab import Lab
    from playground.netlab.hosts import LabHosts

CRASH_KILL_WAIT = 5.0


def hosts_of(lab: Lab) -> LabHosts:
    if lab.network.hosts is None:
        raise LabError("this lab has no hosts yet: add one with 'host alpha 192.0.2.1'")
    return lab.network.hosts


async def carry_out(lab: Lab, node: Host | Fault | Cable) -> None:
    """One line of the network lab, then its DirectiveDone event."""
    if isinstance(node, Host):
        if lab.network.hosts is None:
            from playground.netlab.hosts import LabHosts  # pyroute2 takes 0.15 s to import: only host labs need it

            lab.network.hosts = LabHosts(lab.network)
            lab.labels.reached = functools.partial(host_address, lab.network.hosts)
        first = lab.network.hosts.switch is None
        await lab.network.hosts.add(node.name, node.address)
        if first and lab.network.hosts.switch is not None and lab.labels.capture is not None:
            await watch_the_wire(lab, lab.network.hosts)
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


async def watch_the_wire(lab: Lab, hosts: LabHosts) -> None:
    """With hosts, the lab's wire is the switch: its frames are the lab's packets (labelled, logged, in the pcap),
    and a flush of the lab's capture waits for them too."""
    assert hosts.switch is not None
    feed = SwitchCapture(hosts.switch, lab.labels.on_packets, lab.labels.switch_drained)
    await feed.start()
    hosts.feeds.append(feed)
    lab.labels.switch_feed = feed


async def crash(lab: Lab, hosts: LabHosts, name: str) -> None:
    """The host loses power: its port is cut first (nothing it sends while dying leaves it), then every process
    on it is killed, then its namespace goes with every socket it had."""
    await hosts.isolate(name)
    victims = [p for p in lab.processes.values() if p.host == name and (p.death is None or p.zombie)]
    for proc in victims:
        kill_quietly(proc)
    await asyncio.gather(*(lab.wait_dead(p, CRASH_KILL_WAIT) for p in victims))
    await hosts.power_off(name)
