"""How many packets per second the capture keeps up with, what it costs, and whether the
controller's event loop (the TUI's) stays responsive meanwhile.

Two loads on the lab's private network: (1) a UDP flood from a generator process that joins
the lab's namespace (small datagrams as fast as Python sends them); (2) a bulk TCP transfer
made by lab processes through the engine. For each: packets the kernel passed to the capture
socket, packets dropped (PACKET_STATISTICS), packets decoded per second, the controller's CPU,
and the event loop's lateness (a 10 ms timer, p50/p99).

Run: .venv/bin/python bench/capture_rate.py [--seconds S]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from playground.events import PacketsSeen  # noqa: E402
from playground.executor import run_typed_line  # noqa: E402
from playground.lab import Lab  # noqa: E402

SOL_PACKET, PACKET_STATISTICS = 263, 6

FLOOD = """
import ctypes, os, socket, sys, time
libc = ctypes.CDLL("libc.so.6", use_errno=True)
fd = os.open(f"/proc/{sys.argv[1]}/ns/net", os.O_RDONLY)
assert libc.setns(fd, 0) == 0
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
target = ("127.0.0.1", int(sys.argv[2]))
end = time.monotonic() + float(sys.argv[3])
n = 0
while time.monotonic() < end:
    for _ in range(100):
        s.sendto(b"x" * 32, target)
    n += 100
print(n)
"""


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def drops(sock: socket.socket) -> tuple[int, int]:
    packets, dropped = struct.unpack("II", sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))
    return packets, dropped


async def lateness_probe(stop: asyncio.Event, samples: list[float]) -> None:
    while not stop.is_set():
        t = time.perf_counter()
        await asyncio.sleep(0.01)
        samples.append((time.perf_counter() - t - 0.01) * 1000)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))] if ordered else float("nan")


async def measure(lab: Lab, label: str, load) -> None:
    assert lab.capture is not None and lab.network.packet_socket is not None
    seen = [0]
    unsubscribe = lab.subscribe(
        lambda e: seen.__setitem__(0, seen[0] + len(e.packets)) if isinstance(e, PacketsSeen) else None
    )
    drops(lab.network.packet_socket)  # reading the statistics resets them
    stop, late = asyncio.Event(), []
    probe = asyncio.create_task(lateness_probe(stop, late))
    cpu0, t0 = cpu_seconds(), time.perf_counter()
    await load()
    await asyncio.sleep(0.3)  # let the capture drain what is queued
    elapsed, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    stop.set()
    await probe
    unsubscribe()
    kernel_packets, dropped = drops(lab.network.packet_socket)
    print(
        f"{label}: {seen[0]} packets decoded in {elapsed:.2f} s ({seen[0] / elapsed:,.0f}/s); "
        f"kernel passed {kernel_packets} frames, dropped {dropped}; "
        f"controller CPU {100 * cpu / elapsed:.0f}%; event loop late p50 {pct(late, 0.5):.1f} ms, "
        f"p99 {pct(late, 0.99):.1f} ms"
    )


async def main(seconds: float) -> None:
    lab = await Lab.start()
    try:
        if lab.capture is None or not lab.network.private:
            print(f"no capture in a private namespace here: {lab.capture_reason}")
            return
        await run_typed_line(lab, "spawn server")
        await run_typed_line(lab, "spawn client")
        await run_typed_line(lab, "server: u = socket(udp)")
        await run_typed_line(lab, "server: bind(u, 127.0.0.1:5000)")

        async def flood() -> None:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-c", FLOOD, str(lab.network.holder_pid), "5000", str(seconds), stdout=subprocess.PIPE
            )
            out, _ = await proc.communicate()
            print(f"generator sent {int(out):,} datagrams ({int(out) / seconds:,.0f}/s)")

        await measure(lab, "UDP flood", flood)
        for line in (
            "server: l = socket(tcp)",
            "server: bind(l, 127.0.0.1:0)",
            "server: listen(l, 8)",
            "client: c = socket(tcp)",
            "client: connect(c, server.l)",
            "server: a = accept(l)",
        ):
            await run_typed_line(lab, line)

        async def bulk() -> None:
            total = 0
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                await run_typed_line(lab, 'client: write(c, "x" * 1048576)')
                result = await run_typed_line(lab, "server: recv(a, 1048576, MSG_WAITALL)")
                total += result.outcome.value  # type: ignore[union-attr, operator]
            print(f"bulk TCP moved {total / 1e6:,.0f} MB ({total / 1e6 / seconds:,.0f} MB/s)")

        await measure(lab, "bulk TCP", bulk)
    finally:
        await lab.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    asyncio.run(main(parser.parse_args().seconds))
    os._exit(0)
