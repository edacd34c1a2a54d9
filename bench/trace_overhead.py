"""What watching a program costs it: 1,000 HTTP requests to `python3 -m http.server`, several ways.

(1) plain; (2) under strace alone, writing to /dev/null, with exactly the options sockplay uses
(-D -f -y -T, ns times, only the calls the lab shows, --seccomp-bpf) and, for reference, under a
plain `strace -f -o /dev/null` (every call); (3) under sockplay's `spawn web exec --trace`, its
every line read, parsed and reported as events, with the lab's packet capture off and (4) on
(the host's loopback: other programs' packets too). The client (another process, in a session
of its own, as any other program: not in the scheduler's group of the bench) makes the requests
one after another (HTTP/1.0: a connection each) and times them. All on the host's loopback, so
only the tracing differs. The ways run interleaved, run by run, so a busy spell of the machine
falls on all alike.

Besides the rate: the CPU time the traced side (the server and its strace) spent per request,
which no other work on the machine changes, and sockplay's own (reading, parsing, reporting).
On a machine whose other core is busy, sockplay's own CPU time comes out of the program's.

Also: how far strace's clock, moved onto the lab's, is from the lab's own (a traced program
writes its CLOCK_MONOTONIC into the call strace stamps).

Run: .venv/bin/python bench/trace_overhead.py [--requests N] [--runs R]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

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


class Figures(NamedTuple):
    total: float  # seconds, all requests
    p50: float
    p99: float
    traced_cpu: float  # seconds of CPU: the server and its strace, during the requests
    own_cpu: float = 0.0  # seconds of CPU: sockplay (this process), during the requests


def session_cpu(session: int, leave_out: int = 0) -> float:
    """CPU seconds of every process in a session (the server, its threads ended or not, its strace)."""
    ticks = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == leave_out:
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                raw = f.read()
        except OSError:
            continue
        fields = raw[raw.rfind(b")") + 2 :].split()
        if int(fields[3]) == session:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def client(port: int, requests: int, session: int, leave_out: int = 0) -> Figures:
    traced, own = session_cpu(session, leave_out), own_cpu()
    out = subprocess.run(
        [sys.executable, "-c", CLIENT, str(port), str(requests)],
        capture_output=True,
        text=True,
        check=True,
        start_new_session=True,
    )
    traced, own = session_cpu(session, leave_out) - traced, own_cpu() - own
    total, p50, p99 = (float(x) for x in out.stdout.split())
    return Figures(total, p50, p99, traced, own)


def run_process(prefix: list[str], requests: int) -> Figures:
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
        return client(port, requests, server.pid)._replace(own_cpu=0.0)
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


async def run_sockplay(requests: int, capture: bool) -> tuple[Figures, int]:
    lab = await Lab.start(host_network=True, capture=capture)
    if capture and lab.capture is None:
        raise SystemExit(f"no capture: {lab.capture_reason}")
    lab.lifecycle.outside.allowed = True
    seen = [0]
    lab.subscribe(lambda e: seen.__setitem__(0, seen[0] + 1) if isinstance(e, CallObserved) else None)
    port = free_port()
    try:
        await run_typed_line(lab, "spawn web exec --trace " + " ".join(server_words(port)))
        supervisor = lab.lifecycle.outside.pids()[0]  # a session of its own: the server, strace and itself
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, wait_listening, port)
        figures = await loop.run_in_executor(None, client, port, requests, supervisor, supervisor)
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


def row(name: str, figures: list[Figures], plain: float | None, alone: float | None) -> str:
    total = statistics.median(f.total for f in figures)
    p50 = statistics.median(f.p50 for f in figures) * 1e6
    traced = statistics.median(f.traced_cpu for f in figures) / REQUESTS * 1e6
    own = statistics.median(f.own_cpu for f in figures) / REQUESTS * 1e6
    slower = f"  {total / plain:4.2f}× plain" if plain else " " * 13
    slower += f"  {total / alone:4.2f}× strace alone" if alone else ""
    cpu = f"  CPU/request: traced {traced:4.0f} µs" + (f", sockplay {own:3.0f} µs" if own else "")
    return f"{name:<32} {REQUESTS / total:6.0f} req/s  p50 {p50:6.0f} µs{cpu}{slower}"


REQUESTS = 1000
ALONE = "strace alone (sockplay's options)"


def main() -> None:
    global REQUESTS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    REQUESTS = args.requests
    strace = shutil.which("strace")
    if strace is None:
        raise SystemExit("strace is not installed (apt-get install strace)")
    ours = [w if w != "{trace}" else os.devnull for w in tracer_words(strace)] + ["--"]
    every = [strace, "-f", "-o", os.devnull, "--"]
    ways: dict[str, Callable[[], Figures]] = {
        "plain": lambda: run_process([], REQUESTS),
        ALONE: lambda: run_process(ours, REQUESTS),
        "sockplay exec --trace": lambda: sockplay(False),
        "sockplay exec --trace, capture on": lambda: sockplay(True),
        "strace -f (every call)": lambda: run_process(every, REQUESTS),
    }
    observed: list[int] = []

    def sockplay(capture: bool) -> Figures:
        figures, count = asyncio.run(run_sockplay(REQUESTS, capture))
        observed.append(count)
        return figures

    found: dict[str, list[Figures]] = {name: [] for name in ways}
    loads = []
    for run in range(args.runs):  # interleaved, so a busy spell of the machine falls on all ways alike
        loads.append(os.getloadavg()[0])
        order = list(ways.items())
        for name, way in order if run % 2 == 0 else reversed(order):  # and each way first as often as last
            found[name].append(way())
    plain = statistics.median(f.total for f in found["plain"])
    alone = statistics.median(f.total for f in found[ALONE])
    print(
        f"{REQUESTS} HTTP/1.0 requests to python3 -m http.server, median of {args.runs} runs "
        f"(load {min(loads):.1f}–{max(loads):.1f})"
    )
    for name, figures in found.items():
        print(row(name, figures, None if name == "plain" else plain, None if name in ("plain", ALONE) else alone))
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
