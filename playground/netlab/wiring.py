"""A host's links, set up with pyroute2 over the netlink sockets its namespace holder handed over.

Inside the host: `eth0`, its fixed MAC, its address /24, on-link routes to the other
documentation ranges (one flat Ethernet), lo up already. Its other end lives in the
lab's namespace, named after the host and its boot (a crashed host's old end may
still be on its way out while the new one is made).

Every function here blocks on netlink: the lab calls them from its hosts' thread.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import socket
import struct

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from playground.errors import LabError
from playground.netlab.machines import HOST_PREFIX, HOST_RANGES, Namespace, mac_for

INSIDE = "eth0"
# eth0's interface number. Left to the kernel it would be 2 (after lo), as its other end's may be in the lab's
# namespace; a veth whose peer has its own number counts as an ordinary link for the kernel's link watcher, which
# then starts its queue up to a second late (what is sent meanwhile is dropped).
INSIDE_INDEX = 1_000_000
RT_SCOPE_LINK = 253

# ethtool ioctls: frames at the wire's size with full checksums, so that a switch that forwards them from
# user space (a packet socket) sends what the host's stack would have put on a real wire.
_SIOCETHTOOL = 0x8946
_ETHTOOL_OFF = (
    0x17,  # ETHTOOL_STXCSUM: checksums computed by the stack, not left partial
    0x19,  # ETHTOOL_SSG
    0x1F,  # ETHTOOL_STSO
    0x24,  # ETHTOOL_SGSO
    0x2C,  # ETHTOOL_SGRO
)


def outside_name(index: int, generation: int) -> str:
    """The lab-side end of host number `index`'s cable, at its `generation`-th boot (an interface name, <= 15)."""
    return f"host{index}b{generation}"


def cable(ns: Namespace, lab_netns_fd: int, address: str, outside: str) -> None:
    """Make the host's veth pair, address it and bring both ends up."""
    try:
        with IPRoute(use_socket=dup(ns.inner)) as inner, IPRoute(use_socket=dup(ns.outer)) as outer:
            inner.link(
                "add",
                ifname=INSIDE,
                index=INSIDE_INDEX,
                kind="veth",
                address=mac_for(address),
                peer={"ifname": outside, "net_ns_fd": lab_netns_fd},
            )
            index = inner.link_lookup(ifname=INSIDE)[0]
            inner.addr("add", index=index, address=address, prefixlen=HOST_PREFIX)
            plain_frames(ns.probe, INSIDE)
            inner.link("set", index=index, state="up")
            for network in HOST_RANGES:
                if not _same_range(address, network):
                    inner.route("add", dst=network, oif=index, scope=RT_SCOPE_LINK)  # all on the one Ethernet
            # Both ends plain before the cable runs: a change of offloads on a running veth restarts its
            # carrier, and the kernel's link watcher may then take up to a second to start its queue again.
            plain_frames(ns.outer_probe, outside)
            outer.link("set", index=outer.link_lookup(ifname=outside)[0], state="up")
    except (OSError, NetlinkError) as exc:
        raise LabError(f"cannot cable the host {address}: {exc.strerror or exc}") from None


def _same_range(address: str, network: str) -> bool:
    return address.rsplit(".", 1)[0] == network.split("/")[0].rsplit(".", 1)[0]


def dup(sock: socket.socket) -> socket.socket:
    """pyroute2 closes the socket it is given: give it a copy, and keep ours for the next time."""
    return socket.socket(fileno=os.dup(sock.fileno()))


def plain_frames(probe: socket.socket, ifname: str) -> None:
    """Turn off the interface's offloads (TSO, GSO, GRO, checksum): each frame as the wire would carry it."""
    for command in _ETHTOOL_OFF:
        value = ctypes.create_string_buffer(struct.pack("II", command, 0), 8)
        ifreq = struct.pack("16sP", ifname.encode(), ctypes.addressof(value))
        try:
            fcntl.ioctl(probe.fileno(), _SIOCETHTOOL, ifreq)
        except OSError:
            pass  # an offload this driver does not have or cannot turn off: there is nothing to undo
