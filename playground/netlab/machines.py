"""A host's machine: its own network namespace, held by a small process, with `eth0` cabled to the lab's namespace.

The holder process enters the lab's namespaces (its user namespace too, when the lab
runs as an ordinary user: a host's namespace must belong to it), opens a netlink
socket there, makes a new network namespace, brings its loopback up and hands
sockplay netlink sockets (route in the lab's namespace and the host's, sock_diag
in the host's) and a datagram socket in each (for ethtool ioctls). Then it waits on its channel: when
sockplay goes (even by SIGKILL) the channel closes, the holder exits, and with
its last process the namespace and its veth pair vanish. Nothing is mounted
under /var/run/netns, so nothing outlives sockplay.

Sockplay configures the links itself through those sockets with pyroute2 (the
owner of a user namespace has every capability in it).
"""

from __future__ import annotations

import array
import ipaddress
import os
import socket
import subprocess
import sys
from dataclasses import dataclass

from playground.errors import LabError

HOST_PREFIX = 24
# The three documentation ranges are one flat Ethernet: each host has its own /24 and on-link routes to the others.
HOST_RANGES = ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")
HOLDER_TIMEOUT = 10.0

_HOLDER = r"""
import ctypes, os, socket, struct, fcntl, sys, array
libc = ctypes.CDLL("libc.so.6", use_errno=True)
CLONE_NEWNET, CLONE_NEWUSER = 0x40000000, 0x10000000
ctl = socket.socket(fileno=int(sys.argv[1]))
lab, user = sys.argv[2], sys.argv[3] == "user"
def fail(what):
    ctl.sendall(("error " + what).encode())
    sys.exit(1)
def enter(kind, flag):
    try:
        fd = os.open("/proc/%s/ns/%s" % (lab, kind), os.O_RDONLY)
    except OSError as exc:
        fail("the lab's %s namespace: %s" % (kind, exc.strerror))
    if libc.setns(fd, flag) != 0:
        fail("setns %s: %s" % (kind, os.strerror(ctypes.get_errno())))
    os.close(fd)
if user:
    enter("user", CLONE_NEWUSER)
enter("net", CLONE_NEWNET)
outer = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, 0)
outer_probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
if libc.unshare(CLONE_NEWNET) != 0:
    fail("unshare: " + os.strerror(ctypes.get_errno()))
inner = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, 0)
diag = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 4)
probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
flags = struct.unpack_from("H", fcntl.ioctl(probe, 0x8913, struct.pack("16sH14x", b"lo", 0)), 16)[0]
fcntl.ioctl(probe, 0x8914, struct.pack("16sH14x", b"lo", flags | 0x1 | 0x40))
for name in ("net/ipv6/conf/default/disable_ipv6", "net/ipv6/conf/all/disable_ipv6"):
    try:
        with open("/proc/sys/" + name, "w") as f: f.write("1")
    except OSError:
        pass
fds = [outer.fileno(), inner.fileno(), probe.fileno(), outer_probe.fileno(), diag.fileno()]
ctl.sendmsg([b"ok"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
for s in (outer, inner, probe, outer_probe, diag):
    s.close()
while ctl.recv(64):
    pass
"""


def mac_for(address: str) -> str:
    """The host's fixed network card: a locally administered MAC made of its IPv4 address (the same after a boot)."""
    packed = ipaddress.IPv4Address(address).packed
    return "02:00:" + ":".join(f"{b:02x}" for b in packed)


def in_host_ranges(address: str) -> bool:
    try:
        ip = ipaddress.IPv4Address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.IPv4Network(r) for r in HOST_RANGES)


@dataclass
class Namespace:
    """A host's network namespace as sockplay holds it: the holder process and the sockets it handed over."""

    holder: subprocess.Popen
    channel: socket.socket
    outer: socket.socket  # NETLINK_ROUTE in the lab's namespace
    inner: socket.socket  # NETLINK_ROUTE in the host's namespace
    probe: socket.socket  # AF_INET datagram socket in the host's namespace (ioctls)
    outer_probe: socket.socket  # and one in the lab's namespace
    diag: socket.socket  # NETLINK_SOCK_DIAG in the host's namespace: its TCP sockets, with or without a descriptor

    @property
    def pid(self) -> int:
        return self.holder.pid

    def close(self) -> None:
        """Drop every reference sockplay holds, and end the holder: the namespace goes with its last process."""
        for sock in (self.outer, self.inner, self.probe, self.outer_probe, self.diag, self.channel):
            sock.close()
        try:
            self.holder.kill()
        except ProcessLookupError:
            pass
        self.holder.wait()


def make_namespace(lab_holder: int, user: bool) -> Namespace:
    """A new network namespace beside the lab's (owned by the lab's user namespace, if it has one)."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        holder = subprocess.Popen(
            [sys.executable, "-S", "-c", _HOLDER, str(theirs.fileno()), str(lab_holder), "user" if user else "root"],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    except OSError as exc:
        ours.close()
        raise LabError(f"cannot start a host's namespace holder: {exc.strerror}") from None
    finally:
        theirs.close()
    ours.settimeout(HOLDER_TIMEOUT)
    try:
        data, ancdata, _, _ = ours.recvmsg(4096, socket.CMSG_SPACE(5 * 4))
    except OSError as exc:
        data, ancdata = f"error {exc}".encode(), []
    ours.settimeout(None)
    fds = array.array("i")
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
    if data != b"ok" or len(fds) != 5:
        for fd in fds:
            os.close(fd)
        ours.close()
        holder.kill()
        holder.wait()
        why = data.decode(errors="replace").removeprefix("error ").strip() or "the holder exited"
        raise LabError(f"cannot make a host's network namespace: {why}")
    outer, inner, probe, outer_probe, diag = (socket.socket(fileno=fd) for fd in fds)
    return Namespace(holder, ours, outer, inner, probe, outer_probe, diag)
