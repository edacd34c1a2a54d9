"""How exactly the lab's switch impairs its cables, and how many frames per second it forwards.

Two hosts (namespaces) cabled to the switch in a lab namespace, as tests/netlab makes them:
  1. added delay: ICMP echoes alpha -> beta -> alpha (beta's kernel answers), the median with
     `cable alpha out delay D` minus the median with no delay, for several D; and the switch's
     own view (the feed: delivered minus entered).
  2. loss, duplicate, reorder over N numbered datagrams each (default 10,000): the share the
     receiver saw against the share asked.
  3. throughput: a flood of small datagrams from a process on alpha for S seconds, frames the
     switch delivered per second, with a clear cable and with an impaired one.

Run (as root): .venv/bin/python bench/switch_accuracy.py [--packets N] [--seconds S]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from playground.netlab.channel import FrameFate  # noqa: E402
from playground.netlab.controller import Switch  # noqa: E402
from playground.netlab.impairments import parse_cable  # noqa: E402
from tests.netlab.traffic import receive_numbers, send_numbered, settled, udp  # noqa: E402
from tests.netlab.world import World, make_world  # noqa: E402

BETA = ("192.0.2.2", 9000)
FLOOD = """
import ctypes, os, socket, sys, time
libc = ctypes.CDLL(None, use_errno=True)
fd = os.open(f"/proc/{sys.argv[1]}/ns/net", os.O_RDONLY)
assert libc.setns(fd, 0x40000000) == 0
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
end = time.monotonic() + float(sys.argv[2])
n = 0
while time.monotonic() < end:
    for _ in range(50):
        try:
            s.sendto(b"x" * 32, ("192.0.2.2", 9001))
            n += 1
        except OSError:
            pass
print(n)
"""


PING = """
import ctypes, os, socket, struct, sys, time
libc = ctypes.CDLL(None, use_errno=True)
fd = os.open(f"/proc/{sys.argv[1]}/ns/net", os.O_RDONLY)
assert libc.setns(fd, 0x40000000) == 0
def checksum(data):
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    return ~(total + (total >> 16)) & 0xFFFF
sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
sock.settimeout(5)
for number in range(int(sys.argv[3])):
    body = struct.pack("!BBHHH", 8, 0, 0, 0x5350, number) + b"sockplay"
    packet = body[:2] + struct.pack("!H", checksum(body)) + body[4:]
    started = time.monotonic_ns()
    sock.sendto(packet, (sys.argv[2], 0))
    while time.monotonic_ns() < started + 5_000_000_000:
        reply = sock.recv(2048)
        ihl = (reply[0] & 0x0F) * 4
        kind, _, _, ident, seq = struct.unpack_from("!BBHHH", reply, ihl)
        if kind == 0 and ident == 0x5350 and seq == number:
            print((time.monotonic_ns() - started) / 1e6)
            break
"""


async def round_trips(world: World, count: int) -> list[float]:
    """ICMP echoes alpha -> beta from a process of its own (beta's kernel answers): no thread of the bench's,
    its GIL or its event loop, is between the switch and the figure."""
    ping = await asyncio.create_subprocess_exec(
        sys.executable, "-S", "-c", PING, str(world.hosts["alpha"].pid), BETA[0], str(count), stdout=subprocess.PIPE
    )
    out, _ = await ping.communicate()
    return [float(line) for line in out.split()]


async def delay_accuracy(world: World, switch: Switch, count: int) -> None:
    feed: list[FrameFate] = []
    await switch.subscribe(feed.extend)
    base = statistics.median(await round_trips(world, count))
    print(f"round trip through the switch, no impairment: median {base:.3f} ms over {count}")
    print("| asked (alpha out) | added round trip, median | error | switch's own hold, median | p99 |")
    print("| --- | --- | --- | --- | --- |")
    for delay in ("1ms", "10ms", "50ms"):
        await switch.impair("alpha", parse_cable(["out", "delay", delay]))
        feed.clear()
        median = statistics.median(await round_trips(world, count))
        asked = float(delay.removesuffix("ms"))
        held = sorted((r.delivered_ns - r.entered_ns) / 1e6 for r in feed if r.port_in == "alpha" and r.delivered_ns)
        print(
            f"| {delay} | {median - base:.3f} ms | {median - base - asked:+.3f} ms "
            f"| {statistics.median(held):.3f} ms | {held[int(len(held) * 0.99)]:.3f} ms |"
        )
        await switch.clear("alpha")


async def shares(world: World, switch: Switch, count: int) -> None:
    print(f"\n| asked | measured over {count} datagrams | error |")
    print("| --- | --- | --- |")
    for words, what in (
        (["out", "loss", "5%"], "loss"),
        (["out", "loss", "30%"], "loss"),
        (["in", "duplicate", "1%"], "duplicate"),
        (["in", "duplicate", "20%"], "duplicate"),
        (["out", "delay", "10ms", "reorder", "25%"], "reorder"),
    ):
        host = "alpha" if words[0] == "out" else "beta"
        for name in ("alpha", "beta"):  # fresh counters for each row
            await switch.remove_port(name)
            await switch.add_port(name, world.hosts[name].port_ifname)
        receiver, sender = udp(world, "beta", BETA[1]), udp(world, "alpha")
        await switch.impair(host, parse_cable(words))
        await send_numbered(switch, sender, "alpha", BETA, count)
        _, beta = await settled(switch, "alpha", "beta")
        numbers = receive_numbers(receiver, beta.delivered)
        if what == "loss":
            measured = 100 * (count - len(set(numbers))) / count
        elif what == "duplicate":
            measured = 100 * (len(numbers) - len(set(numbers))) / count
        else:
            early, lowest = 0, 1 << 32
            for number in reversed(numbers):
                early += number > lowest
                lowest = min(lowest, number)
            measured = 100 * early / count
        asked = float(words[-1].removesuffix("%"))
        print(f"| {' '.join(words[1:])} | {measured:.2f}% | {measured - asked:+.2f} points |")
        await switch.clear(host)
        receiver.close()
        sender.close()


async def throughput(world: World, switch: Switch, seconds: float) -> None:
    print("\n| cable | offered (datagrams/s) | forwarded (frames/s) | lost before the switch read them |")
    print("| --- | --- | --- | --- |")
    for words in (["clear"], ["out", "delay", "10ms", "jitter", "1ms", "loss", "1%", "duplicate", "1%"]):
        await switch.impair("alpha", parse_cable(words))
        before = (await switch.counters("beta")).delivered
        seen = (await switch.counters("alpha")).sent
        flood = await asyncio.create_subprocess_exec(
            sys.executable, "-S", "-c", FLOOD, str(world.hosts["alpha"].pid), str(seconds), stdout=subprocess.PIPE
        )
        started = time.monotonic()
        out, _ = await flood.communicate()
        await asyncio.sleep(0.1)  # the last delayed frames
        spent = time.monotonic() - started
        offered = int(out)
        delivered = (await switch.counters("beta")).delivered - before
        read = (await switch.counters("alpha")).sent - seen
        print(
            f"| {' '.join(words)} | {offered / spent:,.0f} | {delivered / spent:,.0f} "
            f"| {100 * (offered - read) / max(offered, 1):.1f}% |"
        )


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--packets", type=int, default=10_000)
    parser.add_argument("--pings", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    try:
        world = make_world("alpha", "beta")
    except (OSError, ImportError) as exc:
        print(f"switch_accuracy: cannot make the hosts' namespaces and cables here ({exc}); run it as root")
        return
    try:
        world.neighbours()
        started = time.perf_counter()
        switch = await Switch.start(world.netns, seed="bench")
        try:
            for host in world.hosts.values():
                await switch.add_port(host.name, host.port_ifname)
            print(f"switch started and two ports plugged in: {1000 * (time.perf_counter() - started):.0f} ms\n")
            await delay_accuracy(world, switch, args.pings)
            await shares(world, switch, args.packets)
            await throughput(world, switch, args.seconds)
        finally:
            await switch.close()
    finally:
        world.close()


if __name__ == "__main__":
    asyncio.run(main())
