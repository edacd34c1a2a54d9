"""The lab's remote hosts: declared by `host NAME ssh DESTINATION`, connected at their first spawn."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Callable

from playground.capture import Packet
from playground.errors import LabError
from playground.events import DirectiveDone, Event, RemoteHostConnected
from playground.remote.link import RemoteLink, RemoteProcess
from playground.remote.view import RemoteHostView
from playground.script.model import Address, RemoteHost


def needs_network(node: RemoteHost) -> str:
    return (
        f"host {node.name} is a real machine ({node.destination}), reached with ssh: "
        "remote hosts need --allow-network (the lab then reaches beyond this machine)"
    )


class RemoteHosts:
    """Every remote host of a lab, and the one ssh connection each has once a process runs there."""

    def __init__(
        self,
        allow_network: Callable[[], bool],
        say: Callable[[str, str], None],
        emit: Callable[[Event], None],
        on_packets: Callable[[list[Packet]], None],
    ) -> None:
        self._allow_network = allow_network
        self._say = say
        self._emit = emit
        self._on_packets = on_packets
        self.declared: dict[str, RemoteHost] = {}
        self.links: dict[str, RemoteLink] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def declare(self, node: RemoteHost, text: str) -> None:
        """A `host NAME ssh DEST` line: the host is known (and connected to at its first spawn)."""
        if not self._allow_network():
            raise LabError(needs_network(node))
        if node.name in self.declared:
            raise LabError(f"a host named {node.name!r} exists already")
        self.declared[node.name] = node
        self._locks[node.name] = asyncio.Lock()
        self._emit(DirectiveDone(node, text, time.monotonic_ns()))

    def kinds(self) -> dict[str, str]:
        """Each remote host's name, for a typed line's scope (the network lab's hosts name their address)."""
        return dict.fromkeys(self.declared, "ssh")

    async def spawn(self, name: str) -> tuple[int, socket.socket, RemoteProcess]:
        """Start a lab process on a remote host, connecting to it first if this is its first."""
        node = self.declared.get(name)
        if node is None:
            known = ", ".join(sorted(self.declared)) or "none"
            raise LabError(f"no remote host named {name!r} (known: {known})")
        async with self._locks[name]:
            link = self.links.get(name)
            if link is None or link.dropped:
                link = RemoteLink(node, self._say, self._on_packets)
                await link.open()
                self.links[name] = link
                self._connected(link)
        return await link.spawn()

    def _connected(self, link: RemoteLink) -> None:
        info = link.info
        kernel, python = str(info.get("kernel", "?")), str(info.get("python", "?"))
        self._emit(
            RemoteHostConnected(
                link.host.name, link.host.destination, kernel, python, link.rtt_ms or 0.0, time.monotonic_ns()
            )
        )
        self._say(
            f"{link.host.name}: connected to {link.host.destination} ({info.get('kernel', '?')}, "
            f"python {info.get('python', '?')}), round trip {link.rtt_ms or 0:.2f} ms",
            "info",
        )
        if info.get("no_capture"):
            self._say(f"{link.host.name}: its packets are not captured: {info['no_capture']}", "warning")

    def address_of(self, name: str) -> str | None:
        """Where the other side reaches a remote host: the address given, or the one ssh reached it at."""
        node = self.declared.get(name)
        if node is None:
            return None
        if node.address:
            return node.address
        link = self.links.get(name)
        parts = link.info.get("ssh", "").split() if link is not None else []
        return parts[2] if len(parts) == 4 else None

    def named(self, address: Address) -> Address:
        """`far:7000` as an address: where the remote host is reached (unchanged for any other)."""
        if address.host not in self.declared:
            return address
        where = self.address_of(address.host)
        if where is None:
            raise LabError(
                f"{address.host}'s address is not known before its first spawn (or give it one: address A.B.C.D)"
            )
        return Address(where, address.port)

    def our_address_seen_from(self, name: str) -> str | None:
        """This machine's address as a remote host sees it (where its processes reach ours)."""
        link = self.links.get(name)
        parts = link.info.get("ssh", "").split() if link is not None else []
        return parts[0] if len(parts) == 4 else None

    def view(self, caller: str | None, owner: str | None, address: Address) -> Address:
        """The address a process on host `caller` must use for a socket of host `owner` bound to `address`.

        A wildcard or loopback bind means the owner's own machine: seen from another one, that is the
        owner's address as that side reaches it. None stands for this machine.
        """
        if caller == owner:
            return address
        try:
            ip = ipaddress.ip_address(address.host)
        except ValueError:
            return address
        if not (ip.is_unspecified or ip.is_loopback):
            return address
        seen = self.address_of(owner) if owner is not None else self.our_address_seen_from(caller or "")
        if seen is None:
            return address
        return Address(seen, address.port)

    def views(self) -> list[RemoteHostView]:
        out = []
        for name, node in self.declared.items():
            link = self.links.get(name)
            connected = link is not None and not link.dropped and not link.closed
            info = link.info if link is not None else {}
            out.append(
                RemoteHostView(
                    name,
                    node.destination,
                    connected,
                    link.rtt_ms if link is not None else None,
                    info.get("kernel"),
                    info.get("python"),
                    self.address_of(name),
                )
            )
        return out

    async def close(self) -> None:
        await asyncio.gather(*(link.close() for link in self.links.values()))

    def kill_now(self) -> None:
        """Synchronous last resort: end every ssh (each agent then ends its host's processes)."""
        for link in self.links.values():
            link.abort()
