"""The lab's hosts: each a machine of its own (a network namespace) cabled to the lab's switch.

    hosts = LabHosts(network)            # the lab's private network (netns.LabNetwork)
    await hosts.add("alpha", "192.0.2.1")
    hosts.worker_args("alpha")           # what a lab process is started with to run there
    await hosts.cut("alpha"); await hosts.mend("alpha")
    await hosts.crash("alpha")           # cut, then the namespace goes (the lab kills its processes first)
    await hosts.boot("alpha")            # a fresh namespace: same address, same MAC, nothing running
    hosts.close()

Netlink work blocks, and pyroute2's synchronous API runs an event loop of its own:
it is done on one thread of the hosts' own, never on the lab's loop.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

from playground.errors import LabError
from playground.netlab import wiring
from playground.netlab.capture_feed import SwitchCapture
from playground.netlab.controller import PortCounters, Switch
from playground.netlab.impairments import Impairment, parse_cable
from playground.netlab.machines import Namespace, in_host_ranges, mac_for, make_namespace
from playground.netns import LabNetwork

UP, CUT, CRASHED = "up", "cut", "crashed"
MAX_HOSTS = 64
SWITCH_SEED = "sockplay"  # the cables' random numbers are the same on every run of a script

T = TypeVar("T")


@dataclass
class Host:
    """One host: its name, address and state; its namespace while it is up (or cut)."""

    name: str
    address: str
    index: int
    state: str = UP
    generation: int = 0
    namespace: Namespace | None = None
    impairments: dict[str, Impairment] = field(default_factory=dict)  # "in", "out" -> the cable's settings

    @property
    def mac(self) -> str:
        return mac_for(self.address)

    @property
    def outside(self) -> str:
        return wiring.outside_name(self.index, self.generation)


class LabHosts:
    """The hosts of one lab and the switch they are cabled to."""

    def __init__(self, network: LabNetwork) -> None:
        if not network.private or network.holder_pid is None:
            raise LabError(
                f"hosts need network namespaces, and this lab has none ({network.reason}); "
                "run sockplay as root or where unprivileged user namespaces are allowed"
            )
        self.network = network
        self.hosts: dict[str, Host] = {}
        self.switch: Switch | None = None
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="sockplay-hosts")
        self._lab_netns: int | None = None
        self.feeds: list[SwitchCapture] = []  # the switch's frames as the lab's packets

    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    # Looking hosts up.

    def get(self, name: str) -> Host:
        host = self.hosts.get(name)
        if host is None:
            known = ", ".join(self.hosts) or "none"
            raise LabError(f"no host named {name!r} (known: {known})")
        return host

    def by_address(self, address: str) -> Host | None:
        return next((h for h in self.hosts.values() if h.address == address), None)

    def worker_args(self, name: str) -> list[str]:
        """Arguments telling a new lab process to join this host's namespaces."""
        host = self.get(name)
        if host.namespace is None:
            raise LabError(f"{name} is crashed: nothing runs on it until `boot {name}`")
        return [f"--netns={host.namespace.pid}" + (",user" if self.network.user_namespace else "")]

    def diag_sockets(self) -> list[socket.socket]:
        """A sock_diag socket in each running host's namespace (the kernel's view of its TCP sockets)."""
        return [h.namespace.diag for h in self.hosts.values() if h.namespace is not None]

    def holder_pids(self) -> list[int]:
        """The processes the hosts' network needs: each host's namespace holder and the switch."""
        pids = [h.namespace.pid for h in self.hosts.values() if h.namespace is not None]
        return pids + ([self.switch.pid] if self.switch is not None else [])

    # The directives.

    async def add(self, name: str, address: str) -> Host:
        if name in self.hosts:
            raise LabError(f"a host named {name!r} already exists")
        if not in_host_ranges(address):
            raise LabError(f"{address} is not in the lab's ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24)")
        other = self.by_address(address)
        if other is not None:
            raise LabError(f"{address} is {other.name}'s address already")
        if len(self.hosts) >= MAX_HOSTS:
            raise LabError(f"a lab has at most {MAX_HOSTS} hosts")
        host = Host(name, address, len(self.hosts))
        if self.switch is None:
            assert self.network.holder_pid is not None
            spec = f"{self.network.holder_pid}" + (",user" if self.network.user_namespace else "")
            self.switch = await Switch.start(netns=spec, seed=SWITCH_SEED)
        await self._power_on(host)
        self.hosts[name] = host
        return host

    async def _power_on(self, host: Host) -> None:
        """A fresh namespace for the host, cabled and plugged into the switch."""
        namespace = await self._run(self._cabled_namespace, host)
        try:
            assert self.switch is not None
            await self.switch.add_port(host.name, host.outside)
        except LabError:
            await self._run(namespace.close)
            raise
        host.namespace = namespace
        host.impairments = self.switch.impairments(host.name)

    def _cabled_namespace(self, host: Host) -> Namespace:
        assert self.network.holder_pid is not None
        namespace = make_namespace(self.network.holder_pid, self.network.user_namespace)
        try:
            if self._lab_netns is None:
                self._lab_netns = os.open(f"/proc/{self.network.holder_pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            wiring.cable(namespace, self._lab_netns, host.address, host.outside)
        except (LabError, OSError) as exc:
            namespace.close()
            if isinstance(exc, LabError):
                raise
            raise LabError(f"cannot start the host {host.name}: {exc.strerror or exc}") from None
        return namespace

    async def cut(self, name: str) -> None:
        host = self._running(name, "cut")
        if host.state == CUT:
            raise LabError(f"{name}'s cable is cut already")
        assert self.switch is not None
        await self.switch.cut(name)
        host.state = CUT

    async def mend(self, name: str) -> None:
        host = self._running(name, "mend")
        if host.state != CUT:
            raise LabError(f"{name}'s cable is not cut")
        assert self.switch is not None
        await self.switch.mend(name)
        host.state = UP

    def _running(self, name: str, what: str) -> Host:
        host = self.get(name)
        if host.state == CRASHED:
            raise LabError(f"{name} is crashed: there is no cable to {what} until `boot {name}`")
        return host

    async def isolate(self, name: str) -> None:
        """The first step of a crash: the port goes dark, so that nothing the dying host sends leaves it, nor shows
        on the wire (a host losing power sends nothing: no FIN, no RST)."""
        host = self._running(name, "crash")
        assert self.switch is not None
        await self.switch.go_dark(name)
        host.state = CUT

    async def power_off(self, name: str) -> None:
        """The last step of a crash, once its processes are gone: its namespace goes, its port with it."""
        host = self.get(name)
        namespace, host.namespace = host.namespace, None
        host.state = CRASHED
        if namespace is not None:
            await self._run(namespace.close)
        if self.switch is not None:
            await self.switch.remove_port(name)

    async def boot(self, name: str) -> None:
        host = self.get(name)
        if host.state != CRASHED:
            raise LabError(f"{name} is up: only a crashed host boots (`crash {name}` first)")
        host.generation += 1
        await self._power_on(host)
        host.state = UP

    async def cable(self, name: str, words: list[str]) -> None:
        """A `cable` line's settings (the words after the host) laid over the host's cable."""
        self._running(name, "impair")
        assert self.switch is not None
        self.get(name).impairments = await self.switch.impair(name, parse_cable(words))

    async def all_counters(self) -> dict[str, PortCounters]:
        """What each running host's cable carried since its last boot."""
        out = {}
        for name in self.hosts:
            counters = await self.counters(name)
            if counters is not None:
                out[name] = counters
        return out

    async def counters(self, name: str) -> PortCounters | None:
        """What the host's cable carried since its last boot (None while it is crashed)."""
        host = self.get(name)
        if host.state == CRASHED or self.switch is None:
            return None
        return await self.switch.counters(name)

    async def shutdown(self) -> None:
        """End the switch (waiting for it), then every host's namespace."""
        for feed in self.feeds:
            feed.stop()
        if self.switch is not None:
            await self.switch.close()
        self.close()

    def close(self) -> None:
        """End every host's namespace (synchronous: for shutdown, signal handlers and atexit)."""
        for host in self.hosts.values():
            if host.namespace is not None:
                host.namespace.close()
                host.namespace = None
        if self.switch is not None:
            self.switch.kill()
            self.switch = None
        if self._lab_netns is not None:
            os.close(self._lab_netns)
            self._lab_netns = None
        self._pool.shutdown(wait=False)
