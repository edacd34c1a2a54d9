"""The engine's overhead per step, against the same syscall made directly, in the same run.

A step goes from the controller to the lab process and back; its overhead is
the round trip minus what the syscall itself costs when Python makes it
directly. Run: .venv/bin/python bench/engine_overhead.py [--steps N]
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from playground.executor import (
    Executor,  # noqa: E402
    run_typed_line,  # noqa: E402
)
from playground.lab import Lab  # noqa: E402
from playground.script.model import Step  # noqa: E402
from playground.script.parser import parse_line  # noqa: E402

CASES = {
    "getsockopt": ("a: getsockopt(s, SO_RCVBUF)", lambda s: s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)),
    "poll": ("a: poll(s, POLLOUT, 0)", None),
}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def direct_times(steps: int) -> dict[str, list[float]]:
    import select

    s = socket.socket()
    poller = select.poll()
    poller.register(s.fileno(), select.POLLOUT)
    out: dict[str, list[float]] = {"getsockopt": [], "poll": []}
    for _ in range(steps):
        t = time.perf_counter_ns()
        s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        out["getsockopt"].append((time.perf_counter_ns() - t) / 1000)
        t = time.perf_counter_ns()
        poller.poll(0)
        out["poll"].append((time.perf_counter_ns() - t) / 1000)
    s.close()
    return out


async def call(executor: Executor, node: Step) -> None:
    handle = await executor.send(node)
    if not handle.future.done():
        await handle.future


async def engine_times(steps: int) -> dict[str, list[float]]:
    lab = await Lab.start()
    try:
        await run_typed_line(lab, "spawn a")
        await run_typed_line(lab, "a: s = socket(tcp)")
        # A script's next line is this process's again: it polls for it (see Lab.submit).
        executor = Executor(lab, watch=False)
        executor.following = ("a",)
        out: dict[str, list[float]] = {}
        for name, (line, _) in CASES.items():
            node = parse_line(line, lab.scope())
            assert isinstance(node, Step)
            for _ in range(200):  # warm up
                await call(executor, node)
            times = []
            for _ in range(steps):
                t = time.perf_counter_ns()
                await call(executor, node)
                times.append((time.perf_counter_ns() - t) / 1000)
            out[name] = times
        return out
    finally:
        await lab.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=5000)
    args = parser.parse_args()
    direct = direct_times(args.steps)
    engine = asyncio.run(engine_times(args.steps))
    print(f"{args.steps} steps each; times in microseconds")
    print(f"{'call':<12}{'direct p50':>12}{'engine p50':>12}{'engine p99':>12}{'overhead p50':>14}{'overhead p99':>14}")
    for name in CASES:
        d50 = statistics.median(direct[name])
        e50 = statistics.median(engine[name])
        e99 = percentile(engine[name], 0.99)
        print(f"{name:<12}{d50:>12.1f}{e50:>12.1f}{e99:>12.1f}{e50 - d50:>14.1f}{e99 - d50:>14.1f}")


if __name__ == "__main__":
    main()
