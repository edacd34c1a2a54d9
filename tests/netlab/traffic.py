"""Numbered UDP datagrams through the switch, and bounded waits on what the switch counts."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Awaitable, Callable

from playground.netlab.controller import PortCounters, Switch
from tests.netlab.world import World

PORT = 9000
SO_RCVBUFFORCE = 33  # root may go past net.core.rmem_max
CHUNK = 100  # datagrams sent before waiting for the switch to have read them (the kernel's backlog holds 1000)


async def plug_in_all(switch: Switch, world: World) -> None:
    """Every host's port plugged in, and each host's end of its cable running before the host sends:
    a veth sends nothing until the kernel has seen its carrier come up (the link watch, which a busy
    machine runs late), so a frame sent sooner is dropped by the host's own kernel."""
    from playground.netlab import links

    for host in world.hosts.values():
        assert (await switch.add_port(host.name, host.port_ifname)).running, f"{host.name}'s port did not run"
        assert world.on(host.name, lambda: links.wait_running("eth0", timeout=10.0)), (
            f"{host.name}'s eth0 is not running"
        )


async def until(condition: Callable[[], Awaitable[bool]], what: str, timeout: float = 20.0) -> None:
    """Wait (bounded) until condition() holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


def udp(world: World, host: str, port: int = 0) -> socket.socket:
    def make() -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 32 * 1024 * 1024)
        sock.bind(("0.0.0.0", port))
        return sock

    return world.on(host, make)


async def send_numbered(switch: Switch, sender: socket.socket, host: str, to: tuple[str, int], count: int) -> None:
    """`count` datagrams numbered 0.. from `host`, in chunks the switch has read before the next goes."""
    before = (await switch.counters(host)).sent
    for start in range(0, count, CHUNK):
        end = min(count, start + CHUNK)
        for number in range(start, end):
            sender.sendto(struct.pack("!I", number) + b"x" * 60, to)

        async def read(end: int = end) -> bool:
            return (await switch.counters(host)).sent >= before + end

        await until(read, f"the switch to read datagram {end}")


async def settled(switch: Switch, sender: str, receiver: str) -> tuple[PortCounters, PortCounters]:
    """Wait until every frame the sender sent has met its fate (none is left in a cable)."""

    async def done() -> bool:
        out, into = await switch.counters(sender), await switch.counters(receiver)
        return out.sent + out.duplicated + into.duplicated == into.delivered + out.dropped + into.dropped

    await until(done, "the frames in the cables to arrive or be dropped")
    return await switch.counters(sender), await switch.counters(receiver)


def receive_numbers(sock: socket.socket, count: int) -> list[int]:
    """The numbers of `count` datagrams, in the order they arrived (each wait bounded)."""
    sock.settimeout(5)
    return [struct.unpack_from("!I", sock.recv(2048))[0] for _ in range(count)]


def nothing_waiting(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        sock.recv(2048)
    except BlockingIOError:
        return True
    finally:
        sock.setblocking(True)
    return False
