"""What watching a program costs it: 1,000 HTTP requests to `python3 -m http.server`, three ways.

(1) plain; (2) under strace alone, writing to /dev/null, with the options sockplay uses
(-f -yy -T, ns times, only the calls the lab shows, --seccomp-bpf) and, for reference, under a
plain `strace -f -o /dev/null` (every call); (3) under sockplay's `spawn web exec --trace`, its
every line read, parsed and reported as events. The client (another process, not traced) makes
the requests one after another (HTTP/1.0: a connection each) and times them. All on the host's
loopback, so only the tracing differs. Also: how far strace's clock, moved onto the lab's, is
from the lab's own (a traced program writes its CLOCK_MONOTONIC into the call strace stamps).

Run: .venv/bin/python bench/trace_overhead.py [--requests N] [--runs R]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from playground.events import CallObserved  # noqa: E402
from playground.executor import run_typed_line  # noqa: E402
from playground.lab import Lab  # noqa: E402
from playground.outside.program import tracer_words  # noqa: E402
from playground.script.model import Spawn  # noqa: E402

CLIENT = r"""
import socket, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
times = []
for _ in range(n):
    t0 = time.perf_counter()
    c = socket.create_connection(("127.0.0.1", port))
    c.sendall(b"GET / HTTP/1.0\r\n\r\n")
    while c.recv(65536):
        pass
    c.close()
    times.append(time.perf_counter() - t0)
times.sort()
print(sum(times), times[len(times) // 2], times[len(times) * 99 // 100])
"""

STAMPER = r"""
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(int(sys.argv[1])):
    s.sendto(str(time.monotonic_ns()).encode(), ("127.0.0.1", 9))
    time.sleep(0.002)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_words(port: int) -> list[str]:
    return [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]


def wait_listening(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.02)
    raise SystemExit(f"the server on port {port} did not listen within {timeout:g} s")


def client(port: int, requests: int) -> tuple[float, float, float]:
    out = subprocess.run(
        [sys.executable, "-c", CLIENT, str(port), str(requests)], capture_output=True, text=True, check=True
    )
    total, p50, p99 = (float(x) for x in out.stdout.split())
    return total, p50, p99


def run_process(prefix: list[str], requests: int) -> tuple[float, float, float]:
    port = free_port()
    server = subprocess.Popen(
        [*prefix, *server_words(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # the server and its tracer in one group: killing strace alone leaves it running
    )
    try:
        wait_listening(port)
        return client(port, requests)
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


async def run_sockplay(requests: int) -> tuple[tuple[float, float, float], int]:
    lab = await Lab.start(host_network=True, capture=False)
    lab.lifecycle.outside.allowed = True
    seen = [0]
    lab.subscribe(lambda e: seen.__setitem__(0, seen[0] + 1) if isinstance(e, CallObserved) else None)
    port = free_port()
    try:
        await run_typed_line(lab, "spawn web exec --trace " + " ".join(server_words(port)))
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, wait_listening, port)
        figures = await loop.run_in_executor(None, client, port, requests)
        return figures, seen[0]
    finally:
        await lab.shutdown()


async def clock_skew(samples: int) -> list[int]:
    """Each: the start strace stamped on a sendto, moved onto CLOCK_MONOTONIC, minus the program's own reading."""
    lab = await Lab.start(host_network=True, capture=False)
    lab.lifecycle.outside.allowed = True
    found: list[int] = []

    def on_event(event: object) -> None:
        if isinstance(event, CallObserved) and not event.pending and event.text.startswith("sendto("):
            stamp = event.text.split('"', 2)[1]
            if stamp.isdigit():
                found.append(event.start_ns - int(stamp))

    lab.subscribe(on_event)
    try:
        await lab.lifecycle.outside.spawn(
            Spawn("stamper", command=(sys.executable, "-c", STAMPER, str(samples)), trace=True)
        )
        deadline = time.monotonic() + 30
        while len(found) < samples and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    finally:
        await lab.shutdown()
    return found


def row(name: str, figures: list[tuple[float, float, float]], plain: float | None) -> str:
    total = statistics.median(f[0] for f in figures)
    p50 = statistics.median(f[1] for f in figures) * 1e6
    p99 = statistics.median(f[2] for f in figures) * 1e6
    rate = len(figures) and REQUESTS / total
    slower = f"  {total / plain:.2f}× plain" if plain else ""
    return f"{name:<34} {rate:8.0f} req/s   p50 {p50:7.0f} µs   p99 {p99:7.0f} µs{slower}"


REQUESTS = 1000


def main() -> None:
    global REQUESTS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    REQUESTS = args.requests
    strace = shutil.which("strace")
    if strace is None:
        raise SystemExit("strace is not installed (apt-get install strace)")
    ours = [w if w != "{trace}" else os.devnull for w in tracer_words(strace)] + ["--"]
    ways: dict[str, list[tuple[float, float, float]]] = {"plain": [], "strace (sockplay's options)": []}
    ways["strace -f (every call)"] = []
    ways["sockplay exec --trace"] = []
    observed = []
    for _ in range(args.runs):  # interleaved, so a busy spell of the machine falls on all ways alike
        ways["plain"].append(run_process([], REQUESTS))
        ways["strace (sockplay's options)"].append(run_process(ours, REQUESTS))
        ways["strace -f (every call)"].append(run_process([strace, "-f", "-o", os.devnull, "--"], REQUESTS))
        figures, count = asyncio.run(run_sockplay(REQUESTS))
        ways["sockplay exec --trace"].append(figures)
        observed.append(count)
    plain = statistics.median(f[0] for f in ways["plain"])
    print(f"{REQUESTS} HTTP/1.0 requests to python3 -m http.server, median of {args.runs} runs")
    for name, figures in ways.items():
        print(row(name, figures, None if name == "plain" else plain))
    print(f"observed lines reported by sockplay per run: {observed}")
    skews = sorted(asyncio.run(clock_skew(200)))
    if skews:
        print(
            f"strace's start of a call on the lab's clock minus the program's own CLOCK_MONOTONIC just before it "
            f"({len(skews)} calls): median {statistics.median(skews) / 1e3:.1f} µs, "
            f"min {skews[0] / 1e3:.1f} µs, max {skews[-1] / 1e3:.1f} µs"
        )


if __name__ == "__main__":
    main()
