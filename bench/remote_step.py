"""A step's overhead on a remote host, against the ssh connection's own round trip.

Starts the test suite's throw-away sshd on loopback (tests/sshd.py; needs root
and openssh-server), puts one lab process on a remote host there, and times
getsockopt steps end to end. The round trip is the agent's ping over the same
connection; the overhead is a step's time minus that round trip (what the relay,
the agent and the lab process add). Also: the time to open the connection (ssh,
login, code sent, first process). Run: .venv/bin/python bench/remote_step.py [--steps N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from playground.executor import Executor  # noqa: E402
from playground.lab import Lab  # noqa: E402
from playground.script.model import Step  # noqa: E402
from playground.script.parser import parse_line, parse_script  # noqa: E402
from tests.sshd import CONFIG_ENV, sshd_reason, start_sshd  # noqa: E402


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


async def measure(steps: int) -> dict[str, float]:
    lab = await Lab.start(allow_network=True)
    try:
        executor = Executor(lab)
        t0 = time.perf_counter()
        for line in parse_script("sockplay 1\nhost far ssh remote\nspawn a on far\nspawn b\n").lines:
            await executor.directive(line.node)
        opened = time.perf_counter() - t0
        link = lab.lifecycle.remote_hosts.links["far"]
        for actor in ("a", "b"):
            await lab.call(_step(lab, f"{actor}: s = socket(tcp)"))
        times: dict[str, list[float]] = {"a": [], "b": [], "ping": []}
        for _ in range(steps):
            for actor in ("a", "b"):
                node = _step(lab, f"{actor}: getsockopt(s, SO_RCVBUF)")
                t = time.perf_counter_ns()
                await lab.call(node)
                times[actor].append((time.perf_counter_ns() - t) / 1000)
        for _ in range(min(steps, 500)):
            t = time.perf_counter_ns()
            await link.ping()
            times["ping"].append((time.perf_counter_ns() - t) / 1000)
        ping = statistics.median(times["ping"])
        return {
            "open_s": opened,
            "remote_p50_us": statistics.median(times["a"]),
            "remote_p99_us": percentile(times["a"], 0.99),
            "local_p50_us": statistics.median(times["b"]),
            "ssh_rtt_p50_us": ping,
            "overhead_p50_us": statistics.median(times["a"]) - ping,
        }
    finally:
        await lab.shutdown()


def _step(lab: Lab, text: str) -> Step:
    node = parse_line(text, lab.scope())
    assert isinstance(node, Step)
    return node


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    args = parser.parse_args()
    reason = sshd_reason()
    if reason:
        sys.exit(f"remote_step: {reason}")
    server, info = start_sshd(Path(tempfile.mkdtemp(prefix="sockplay-bench-")) / "ssh")
    os.environ[CONFIG_ENV] = str(info.config)
    try:
        figures = asyncio.run(measure(args.steps))
    finally:
        server.terminate()
        server.wait()
    print(
        f"remote host over ssh on loopback, {args.steps} getsockopt steps: "
        f"step p50 {figures['remote_p50_us']:.0f} µs (p99 {figures['remote_p99_us']:.0f}), "
        f"ssh round trip p50 {figures['ssh_rtt_p50_us']:.0f} µs, "
        f"overhead beyond it {figures['overhead_p50_us']:.0f} µs; "
        f"the same step locally p50 {figures['local_p50_us']:.0f} µs; "
        f"connection opened (ssh, login, code sent, first process) in {figures['open_s']:.2f} s"
    )


if __name__ == "__main__":
    main()
