"""A small cabled network for the switch's tests: namespaces held by processes, veth cables made with pyroute2.

The lab's namespace (where the switch and the switch-side cable ends live) is
the one playground.netns makes, as in a real lab; each host is a namespace of
its own with `eth0` (192.0.2.N/24, IPv6 off so no neighbour discovery adds
frames). Every namespace is held by a process: killing those processes ends
the namespaces and the cables with them, whatever happened to the test.
Sockets made inside `World.on(host, ...)` belong to that host's stack.
"""

from __future__ import annotations

import ctypes
import os
import select
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from playground.netlab import links
from playground.netns import LabNetwork, _start_holder, make_network

T = TypeVar("T")
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)
_HOLD = (
    "import ctypes, sys\n"
    "if ctypes.CDLL(None, use_errno=True).unshare(0x40000000) != 0: sys.exit(1)\n"
    "print('ok', flush=True)\n"
    "sys.stdin.read()\n"
)


def in_namespace(pid: int, work: Callable[[], T]) -> T:
    """Run `work` in a thread that has entered pid's network namespace (sockets it makes stay there)."""
    result: list[T] = []
    errors: list[BaseException] = []

    def run() -> None:
        fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
        try:
            if _libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns")
            result.append(work())
        except BaseException as exc:  # handed to the caller's thread
            errors.append(exc)
        finally:
            os.close(fd)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    if errors:
        raise errors[0]
    if not result:
        raise TimeoutError("namespace work did not finish in 30 s")
    return result[0]


def hold_namespace() -> subprocess.Popen[bytes]:
    holder = subprocess.Popen([sys.executable, "-S", "-c", _HOLD], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert holder.stdout is not None
    ready, _, _ = select.select([holder.stdout], [], [], 10)
    if not ready or holder.stdout.readline() != b"ok\n":
        holder.kill()
        holder.wait()
        raise OSError("no network namespace could be made")
    return holder


@dataclass
class Host:
    name: str
    address: str
    holder: subprocess.Popen[bytes]
    mac: str
    port_ifname: str  # the cable's end in the lab's namespace

    @property
    def pid(self) -> int:
        return self.holder.pid


@dataclass
class World:
    lab: LabNetwork
    hosts: dict[str, Host] = field(default_factory=dict)

    @property
    def netns(self) -> str:
        return self.lab.worker_args()[0].removeprefix("--netns=")

    def add_host(self, name: str, number: int) -> Host:
        from pyroute2 import IPRoute

        holder = hold_namespace()
        host = Host(name, f"192.0.2.{number}", holder, f"02:00:00:00:00:{number:02x}", f"sw-{name}")

        def cable() -> None:
            with IPRoute() as ip:
                ip.link("add", ifname=host.port_ifname, kind="veth", peer={"ifname": f"h-{name}"})
                links.disable_offloads(f"h-{name}")  # offloads stay with the interface when it moves
                (index,) = ip.link_lookup(ifname=f"h-{name}")
                ip.link("set", index=index, net_ns_pid=host.pid)

        def configure() -> None:
            with IPRoute() as ip:
                (index,) = ip.link_lookup(ifname=f"h-{name}")
                ip.link("set", index=index, ifname="eth0", address=host.mac)
                with open("/proc/sys/net/ipv6/conf/eth0/disable_ipv6", "w") as f:
                    f.write("1")
                ip.addr("add", index=index, address=host.address, prefixlen=24)
                ip.link("set", index=index, state="up")
                (lo,) = ip.link_lookup(ifname="lo")
                ip.link("set", index=lo, state="up")

        in_namespace(self.lab_pid, cable)
        in_namespace(host.pid, configure)
        self.hosts[name] = host
        return host

    @property
    def lab_pid(self) -> int:
        assert self.lab.holder_pid is not None
        return self.lab.holder_pid

    def on(self, host: str, work: Callable[[], T]) -> T:
        return in_namespace(self.hosts[host].pid, work)

    def neighbours(self) -> None:
        """Every host knows every other's MAC: no ARP, so the only frames are the test's own."""
        from pyroute2 import IPRoute

        for host in self.hosts.values():
            others = [other for other in self.hosts.values() if other is not host]

            def fill(others: list[Host] = others) -> None:
                with IPRoute() as ip:
                    (index,) = ip.link_lookup(ifname="eth0")
                    for other in others:
                        ip.neigh("add", dst=other.address, lladdr=other.mac, ifindex=index, state=0x80)

            self.on(host.name, fill)

    def close(self) -> None:
        for host in self.hosts.values():
            host.holder.kill()
            host.holder.wait()
        self.lab.close()


def make_world(*names: str, user: bool = False) -> World:
    """A lab namespace with hosts `names` (192.0.2.1, .2, ...), each cabled but not yet plugged in.

    `user`: the lab's namespace is owned by a user namespace of its own, as an ordinary user's lab is."""
    if os.geteuid() != 0:
        raise OSError("needs root to make the hosts' namespaces and cables")
    if user:
        lab, why = _start_holder("user")
        if lab is None:
            raise OSError(f"no user namespace: {why}")
    else:
        lab = make_network()
    if not lab.private or lab.user_namespace != user:
        lab.close()
        raise OSError(f"no private namespace: {lab.reason}")
    world = World(lab)
    try:
        for number, name in enumerate(names, start=1):
            world.add_host(name, number)
    except BaseException:
        world.close()
        raise
    return world
