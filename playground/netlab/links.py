"""Getting a veth end ready to be a switch port, in the calling thread's network namespace.

Veth ends offload by default: TSO/GSO hand a packet socket 64 KB frames that
no 1500-byte link takes back, and checksum offload leaves partial checksums
that are wrong once the frame is re-sent through a packet socket (the
receiver drops the segment). So both ends of every cable get their offloads
turned off with the ethtool ioctl (the legacy per-feature commands, which
every kernel since 2.6 still takes; there is no ethtool binary here and
pyroute2's ethtool support needs more than these few lines). Offload
settings stay with an interface when it moves to another namespace, so the
host's end can be done before it moves, or from inside its host.
"""

from __future__ import annotations

import ctypes
import fcntl
import socket
import struct
import time

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
SIOCETHTOOL = 0x8946
IFF_UP = 0x1
IFF_RUNNING = 0x40
ETHTOOL_GLINK = 0x0A
# ethtool set commands (linux/ethtool.h): TSO, GSO, GRO, then the checksums and scatter-gather they rest on.
_OFFLOADS = (("tso", 0x1F), ("gso", 0x24), ("gro", 0x2C), ("tx-checksum", 0x17), ("sg", 0x19), ("rx-checksum", 0x15))
_GET = {0x1F: 0x1E, 0x24: 0x23, 0x2C: 0x2B, 0x17: 0x16, 0x19: 0x18, 0x15: 0x14}


class _EthtoolValue(ctypes.Structure):
    _fields_ = [("cmd", ctypes.c_uint32), ("data", ctypes.c_uint32)]


def _ethtool(sock: socket.socket, ifname: str, cmd: int, data: int = 0) -> int:
    value = _EthtoolValue(cmd, data)
    request = struct.pack("16sP", ifname.encode(), ctypes.addressof(value)).ljust(40, b"\0")
    fcntl.ioctl(sock, SIOCETHTOOL, request)
    return int(value.data)


def disable_offloads(ifname: str) -> list[str]:
    """Turn off every offload that breaks forwarding through packet sockets; the ones still on afterwards.

    OSError (ENODEV and the like) if there is no such interface here."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _name, cmd in _OFFLOADS:
            try:
                _ethtool(sock, ifname, cmd, 0)
            except OSError as exc:
                if exc.errno == 19:  # ENODEV: say so; anything else is a feature this device lacks
                    raise
        still_on = []
        for name, cmd in _OFFLOADS:
            try:
                if _ethtool(sock, ifname, _GET[cmd]):
                    still_on.append(name)
            except OSError:
                pass
        return still_on


def offloads_on(ifname: str) -> list[str]:
    """The offloads (of those disable_offloads turns off) that are on."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        on = []
        for name, cmd in _OFFLOADS:
            try:
                if _ethtool(sock, ifname, _GET[cmd]):
                    on.append(name)
            except OSError:
                pass
        return on


def bring_up(ifname: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        raw = fcntl.ioctl(sock, SIOCGIFFLAGS, struct.pack("16sH14x", ifname.encode(), 0))
        flags = struct.unpack_from("H", raw, 16)[0]
        if not flags & IFF_UP:
            fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sH14x", ifname.encode(), flags | IFF_UP))


def quiet_ipv6(ifname: str) -> None:
    """No IPv6 on a switch port: the lab's namespace would send its own router and neighbour solicitations."""
    try:
        with open(f"/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6", "w") as f:
            f.write("1")
    except OSError:
        pass  # no IPv6 at all, or not ours to change: the frames it sends are only noise


def running(ifname: str) -> bool:
    """Whether the kernel passes frames on ifname: up, with a carrier, and its queue started.

    IFF_RUNNING is the operational state, which the kernel's link watcher sets in the same pass as it
    starts the interface's queue; until then what is sent on it is dropped. Just after an interface
    comes up it can still say running from before, so the carrier (ETHTOOL_GLINK, at once: a veth has
    one when both its ends are up) must agree."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        raw = fcntl.ioctl(sock, SIOCGIFFLAGS, struct.pack("16sH14x", ifname.encode(), 0))
        if not struct.unpack_from("H", raw, 16)[0] & IFF_RUNNING:
            return False
        return bool(_ethtool(sock, ifname, ETHTOOL_GLINK))


def wait_running(ifname: str, timeout: float = 1.0) -> bool:
    """Wait (at most timeout) for ifname to be running; whether it is. A veth runs once both its ends are up."""
    deadline = time.monotonic() + timeout
    while not running(ifname):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.001)
    return True
