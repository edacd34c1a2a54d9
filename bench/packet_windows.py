"""Packets inside the calls that caused them: connects and closes, the kernel's stamps against the calls' windows.

For each of N connections: the SYN, SYN|ACK and ACK must lie inside the connect's
[start, start + duration] (CLOCK_MONOTONIC in the lab process), the FIN at or after the
close's start. Half the rounds let the client doze first (as an idle process does), the
case where the TUI used to stamp a call when its request was sent.

Run: .venv/bin/python bench/packet_windows.py [N]
"""

from __future__ import annotations

import asyncio
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from playground.capture import Packet  # noqa: E402
from playground.events import PacketsSeen  # noqa: E402
from playground.executor import run_typed_line  # noqa: E402
from playground.lab import Lab  # noqa: E402
from playground.worker.main import DOZE_AFTER_NS  # noqa: E402


async def main(rounds: int) -> None:
    lab = await Lab.start()
    packets: list[Packet] = []
    lab.subscribe(lambda e: packets.extend(e.packets) if isinstance(e, PacketsSeen) else None)
    inside = outside = 0
    margins_us: list[float] = []
    late_fin = 0
    try:
        for line in ("spawn server", "spawn client", "server: l = socket(tcp)", "server: bind(l, 127.0.0.1:0)"):
            await run_typed_line(lab, line)
        await run_typed_line(lab, "server: listen(l, 4096)")
        for i in range(rounds):
            await run_typed_line(lab, f"client: c{i} = socket(tcp)")
            if i % 2:
                await asyncio.sleep(DOZE_AFTER_NS / 1e9 * 1.5)
            connect = await run_typed_line(lab, f"client: connect(c{i}, server.l)")
            close = await run_typed_line(lab, f"client: close(c{i})")
            await lab.capture_flush()
            label = f"client.c{i}"
            mine = [p for p in packets if label in (p.src_label, p.dst_label)]
            handshake = [p for p in mine if "SYN" in p.flags or (p.flags == ("ACK",) and p.relative_seq == 1)][:3]
            start, end = connect.start_ns, connect.start_ns + connect.duration_ns
            for p in handshake:
                if start <= p.t_ns <= end:
                    inside += 1
                    margins_us.append((end - p.t_ns) / 1e3)
                else:
                    outside += 1
            fin = next((p for p in mine if "FIN" in p.flags and p.src_label == label), None)
            if fin is not None and fin.t_ns < close.start_ns:
                late_fin += 1
    finally:
        await lab.shutdown()
    print(f"{rounds} connects: {inside} handshake packets inside their connect, {outside} outside")
    print(f"FIN before its close: {late_fin}")
    if margins_us:
        print(f"packet to connect's return: median {statistics.median(margins_us):.1f} µs, min {min(margins_us):.1f}")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 100))
