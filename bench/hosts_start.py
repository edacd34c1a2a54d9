"""The time to start a two-host lab: `host alpha`, `host beta` and a process spawned on each.

Measured inside one process, from before Lab.start to the second host's process answering
(the lab's namespace, the switch, two host namespaces with their veth cables, two lab
processes), and the parts: the lab itself, each `host` line, each `spawn ... on`. The
figure is the median of RUNS runs (the first run, which pays for imports, is left out).

Run: .venv/bin/python bench/hosts_start.py
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from playground.executor import run_typed_line  # noqa: E402
from playground.lab import Lab  # noqa: E402

RUNS = 10
LINES = ("host alpha 192.0.2.1", "host beta 192.0.2.2", "spawn server on alpha", "spawn client on beta")


async def once() -> list[float]:
    """Seconds for: the lab, then each line; and the whole."""
    t0 = time.perf_counter()
    lab = await Lab.start()
    marks = [time.perf_counter()]
    try:
        for line in LINES:
            await run_typed_line(lab, line)
            marks.append(time.perf_counter())
    finally:
        await lab.shutdown()
    parts = [marks[0] - t0] + [b - a for a, b in zip(marks, marks[1:], strict=False)]
    return parts + [marks[-1] - t0]


async def main() -> None:
    await once()  # imports (pyroute2 among them) and the first lab's costs
    runs = [await once() for _ in range(RUNS)]
    names = ["Lab.start (private namespace)", *LINES, "two-host lab, ready"]
    for i, name in enumerate(names):
        values = [run[i] * 1000 for run in runs]
        print(f"{name:32} median {statistics.median(values):7.1f} ms   (min {min(values):.1f}, max {max(values):.1f})")


if __name__ == "__main__":
    asyncio.run(main())
