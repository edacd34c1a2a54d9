"""Addresses on the network lab: HOST:PORT, and a wildcard bind seen from another host."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from playground.errors import LabError
from playground.script.model import Address

if TYPE_CHECKING:
    from playground.lab_process import Process
    from playground.netlab.hosts import LabHosts


def host_address(hosts: LabHosts, owner: Process | None, address: Address) -> Address:
    """The address a call reaches: HOST:PORT is that host's address; a socket bound to the wildcard on a host
    (`connect(c, server.l)` after `bind(l, 0.0.0.0:7000)`) is reached at its host's address."""
    if address.host[:1].isalpha():
        return Address(hosts.get(address.host).address, address.port)
    if owner is not None and owner.host is not None and _unspecified(address.host):
        return Address(hosts.get(owner.host).address, address.port)
    return address


def host_addresses(hosts: LabHosts | None) -> dict[str, str]:
    """Each host's name and address, for parsing a typed line (`cut alpha`, `connect(c, alpha:80)`)."""
    return {h.name: h.address for h in hosts.hosts.values()} if hosts is not None else {}


def _unspecified(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError as exc:
        raise LabError(f"{host} is not an address") from exc
