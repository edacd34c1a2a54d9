"""The kernel's bridge as the lab's switch, where the user-space switch is not used: cut and mend, no impairments.

Each host's lab-side veth end is a port of one bridge in the lab's namespace. A cut
sets the port's state to disabled: the bridge drops every frame from it and sends it
none, and neither host is told (both links stay up, no ICMP, nothing to the neighbour
tables). The bridge lives in the lab's namespace and goes with it.
"""

from __future__ import annotations

import os
import socket
import struct

from pyroute2 import IPRoute

from playground.errors import LabError

NAME = "labswitch"
_DISABLED, _FORWARDING = 0, 3  # BR_STATE_*


class KernelBridge:
    """One bridge in the lab's namespace, driven over a NETLINK_ROUTE socket opened there."""

    def __init__(self, route: socket.socket) -> None:
        self._route = route
        self._ports: dict[str, str] = {}  # host -> its lab-side interface
        with self._ipr() as ipr:
            ipr.link("add", ifname=NAME, kind="bridge")
            index = ipr.link_lookup(ifname=NAME)[0]
            ipr.link("set", index=index, state="up")

    def _ipr(self) -> IPRoute:
        return IPRoute(use_socket=socket.socket(fileno=os.dup(self._route.fileno())))

    def add_port(self, host: str, ifname: str, cut: bool = False) -> None:
        with self._ipr() as ipr:
            bridge = ipr.link_lookup(ifname=NAME)[0]
            index = ipr.link_lookup(ifname=ifname)[0]
            ipr.link("set", index=index, master=bridge)
            ipr.link("set", index=index, state="up")  # not with master: pyroute2 then leaves it down
        set_port_state(self._route, index, _DISABLED if cut else _FORWARDING)
        self._ports[host] = ifname

    def remove_port(self, host: str) -> None:
        """Forget a port whose interface is gone (a crashed host's), or take it off the bridge."""
        ifname = self._ports.pop(host, None)
        if ifname is None:
            return
        with self._ipr() as ipr:
            found = ipr.link_lookup(ifname=ifname)
            if found:
                try:
                    ipr.link("set", index=found[0], master=0)
                except OSError:
                    pass  # it is on its way out with its namespace

    def cut(self, host: str) -> None:
        self._set_state(host, _DISABLED)

    def mend(self, host: str) -> None:
        self._set_state(host, _FORWARDING)

    def _set_state(self, host: str, state: int) -> None:
        ifname = self._ports.get(host)
        if ifname is None:
            raise LabError(f"{host} has no port on the switch")
        with self._ipr() as ipr:
            index = ipr.link_lookup(ifname=ifname)[0]
        set_port_state(self._route, index, state)

    def close(self) -> None:
        self._route.close()


_RTM_SETLINK, _IFLA_PROTINFO, _IFLA_BRPORT_STATE, _NLA_F_NESTED = 19, 12, 1, 0x8000
_NLM_F_REQUEST_ACK = 0x1 | 0x4


def set_port_state(route: socket.socket, index: int, state: int) -> None:
    """`bridge link set dev X state N`, as one RTM_SETLINK (pyroute2's brport takes `state` for the link's up/down
    and brings the port down instead)."""
    attr = struct.pack("HHB3x", 5, _IFLA_BRPORT_STATE, state)
    nested = struct.pack("HH", 4 + len(attr), _IFLA_PROTINFO | _NLA_F_NESTED) + attr
    body = struct.pack("BxHiII", socket.AF_BRIDGE, 0, index, 0, 0) + nested
    route.send(struct.pack("IHHII", 16 + len(body), _RTM_SETLINK, _NLM_F_REQUEST_ACK, 1, 0) + body)
    reply = route.recv(4096)
    error = struct.unpack_from("i", reply, 16)[0] if len(reply) >= 20 else 0
    if error:
        raise OSError(-error, os.strerror(-error))
