"""CPU an idle lab costs: four lab processes spawned, then nothing asked of them for 5 s.

Run: .venv/bin/python bench/idle_cost.py
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from playground.executor import run_typed_line  # noqa: E402
from playground.lab import Lab  # noqa: E402

PROCESSES = ("a", "b", "c", "d")
WINDOW = 5.0  # seconds measured
SETTLE = 0.5  # seconds after the last spawn before measuring (the processes go idle)


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


async def main() -> None:
    lab = await Lab.start()
    try:
        for name in PROCESSES:
            await run_typed_line(lab, f"spawn {name}")
        await asyncio.sleep(SETTLE)
        pids = [proc.pid for proc in lab.processes.values()]
        before, start = sum(map(cpu_ticks, pids)), time.monotonic()
        await asyncio.sleep(WINDOW)
        used = (sum(map(cpu_ticks, pids)) - before) / os.sysconf("SC_CLK_TCK")
        elapsed = time.monotonic() - start
    finally:
        await lab.shutdown()
    print(f"{len(pids)} idle lab processes for {elapsed:.1f} s: {used / elapsed * 100:.1f}% of one core in all")


if __name__ == "__main__":
    asyncio.run(main())
