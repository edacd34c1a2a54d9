"""The TUI while a lab holds N connections (issue 13): refresh cost, key latency, memory per connection.

A headless SockplayApp (120x40) runs a `repeat N as i` block (socket, connect, accept) in its
own lab; then, while the connections are held:

- refresh: the periodic inspection as the app takes it now (each process re-reads only what
  may have changed, the view is rebuilt only where it changed) against a whole reading as
  before (every socket read with getsockopt, every SocketView made anew);
- keys: down/up in the Lab pane (the Inspector follows), key sent to the first frame drawn
  after the cursor moved, p50/p99 (the periodic refresh runs meanwhile);
- the log's view switched (calls and packets, calls only, packets only) 6 times, each to the
  first frame drawn after it (every line is listed anew);
- memory: RSS and PSS (/proc/PID/smaps_rollup) of sockplay and of the lab processes, before
  the block, after its first half and after it (once the collector has let go of the stream's
  garbage), per held connection (the kernel's socket memory is in neither): over all N, and
  over the second half alone (what one more connection costs once the bounded caches (rendered
  lines, styles, the last step's packets) have filled in the first).

    .venv/bin/python bench/many_held.py [--connections 10000] [--keys 200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from textual import events  # noqa: E402

from bench.tui_keypress_latency import ProbedApp, percentile  # noqa: E402
from playground.runner import Runner  # noqa: E402
from playground.script.model import Line  # noqa: E402
from playground.script.parser import parse_script  # noqa: E402
from playground.session.view import ViewCache, build_view  # noqa: E402
from widgets.lab_tree import LabTree  # noqa: E402


def script(n: int) -> str:
    return f"""sockplay 1
spawn a
spawn b
a: l = socket(tcp)
a: bind(l, 127.0.0.1:0)            = 0
a: listen(l, 4096)                 = 0
{block(n // 2)}{block(n - n // 2, "t", "d")}"""


def block(n: int, client: str = "s", server: str = "c") -> str:
    return f"""repeat {n} as i
b: {client}[i] = socket(tcp)
b: connect({client}[i], a.l)              = 0
a: {server}[i] = accept(l)
end
"""


def allow_descriptors(connections: int) -> None:
    """Raise the soft RLIMIT_NOFILE for `connections` held (as `ulimit -n` would), or exit saying why not."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = connections + 200
    if soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            sys.exit(f"RLIMIT_NOFILE's hard limit is {hard}: {connections} connections need {needed} descriptors")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


async def ready_lab(app: ProbedApp, n: int) -> tuple[Runner, list[Line]]:
    """The app's lab with its processes and the listener made, and the two blocks of script(n) not yet run."""
    await asyncio.wait_for(app.lab_ready.wait(), 30)
    parsed = parse_script(script(n))
    runner = app.session.new_runner()
    for line in parsed.lines[:-2]:
        await runner.run_line(line)
    return runner, parsed.lines[-2:]


def memory(pid: int) -> tuple[int, int]:
    """(RSS, PSS) in KiB."""
    rss = pss = 0
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Rss:"):
            rss = int(line.split()[1])
        elif line.startswith("Pss:"):
            pss = int(line.split()[1])
    return rss, pss


def all_memory(app: ProbedApp) -> dict[str, tuple[int, int]]:
    out = {"sockplay": memory(os.getpid())}
    for name, proc in app.session.lab.processes.items():
        out[name] = memory(proc.pid)
    return out


async def steady(app: ProbedApp) -> None:
    """The app as it stays while it holds what was made: the lab's view read again, the stream's
    garbage collected (settled), then a moment idle (its periodic refresh runs) and settled again."""
    await app.refresh_lab()
    await settled(app)
    await asyncio.sleep(1.0)
    await settled(app)


async def settled(app: ProbedApp, limit: float = 10.0) -> None:
    """Wait (at most `limit` s) until the stream is over for the collector too: while events stream,
    the app freezes the collector's objects (widgets/gc_pacing), so garbage in cycles stays until
    it lets go and collects, a second after the last event. Memory is read after that."""
    deadline = time.perf_counter() + limit
    while app.collector_pacing.frozen and time.perf_counter() < deadline:
        await asyncio.sleep(0.1)


async def timed(coro_fn, runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        await coro_fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


async def refresh_costs(app: ProbedApp) -> dict:
    session = app.session
    lab = session.lab

    async def now() -> None:
        await session.refresh()
        session.view()

    async def before() -> None:  # a whole reading and every SocketView made anew, as before issue 13
        snapshot = await lab.inspect()
        build_view(lab, snapshot, session.tracked_names, {}, None, ViewCache())

    return {"refresh_ms": round(await timed(now) * 1000, 1), "whole_reading_ms": round(await timed(before) * 1000, 1)}


async def keys(app: ProbedApp, count: int) -> list[float]:
    tree = app.screen.query_one(LabTree)
    tree.select_key(("family", "a", "c"))
    tree.focus()
    latencies: list[float] = []
    down = True
    driver = app._driver
    for _ in range(count):
        await asyncio.sleep(0.05)
        deadline = time.perf_counter() + 2
        while app.probe is not None and time.perf_counter() < deadline:
            await asyncio.sleep(0.01)
        if app.probe is not None:
            latencies.append(2.0)
            app.probe = None
        before = tree.cursor_line
        app.probe = (lambda b=before: tree.cursor_line != b, time.perf_counter(), latencies)
        driver.send_message(events.Key("down" if down else "up", None))
        down = not down
    return latencies


async def measure(n: int, key_count: int) -> dict:
    app = ProbedApp()
    app.default_lab = False
    async with app.run_test(size=(120, 40)):
        runner, blocks = await ready_lab(app, n)
        await app.refresh_lab()
        empty = all_memory(app)
        made = 0.0
        measured = []
        for half in blocks:
            start = time.perf_counter()
            # keep_last=0: what the TUI keeps of a block's runs (lesson_mode): the bad ones only
            steps = await runner.run_repeat(half, keep_last=0)
            made += time.perf_counter() - start
            assert not steps, "the connections were not all made"
            await steady(app)
            measured.append(all_memory(app))
        half, full = measured
        costs = await refresh_costs(app)
        latencies = [v * 1000 for v in await keys(app, key_count)]
        switches = [v * 1000 for v in await view_switches(app)]
        lines = len(app.session.book.entries)
        await app.session.shutdown()
    growth = {
        name: ((full[name][0] - empty[name][0]) * 1024 / n, (full[name][1] - empty[name][1]) * 1024 / n)
        for name in full
    }
    more = n - n // 2
    marginal = {name: (full[name][1] - half[name][1]) * 1024 / more for name in full}
    return {
        "connections": n,
        "made_s": round(made, 1),
        **costs,
        "keys": {
            "n": len(latencies),
            "p50_ms": round(statistics.median(latencies), 1),
            "p99_ms": round(percentile(latencies, 99), 1),
        },
        "view_switch": {"lines": lines, "ms": [round(v) for v in switches]},
        "bytes_per_connection": {name: {"rss": round(r), "pss": round(p)} for name, (r, p) in growth.items()},
        "total_pss_per_connection": round(sum(p for _, p in growth.values())),
        "second_half_pss_per_connection": {name: round(p) for name, p in marginal.items()},
        "second_half_total_pss_per_connection": round(sum(marginal.values())),
    }


async def view_switches(app: ProbedApp, count: int = 6) -> list[float]:
    """The log's view switched (both, calls only, packets only: every line listed anew) to the next frame drawn."""
    screen = app.screen
    latencies: list[float] = []
    for _ in range(count):
        await asyncio.sleep(0.3)
        app.probe = (lambda: True, time.perf_counter(), latencies)
        screen.action_wire_show()
        deadline = time.perf_counter() + 5
        while app.probe is not None and time.perf_counter() < deadline:
            await asyncio.sleep(0.005)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--keys", type=int, default=200)
    args = parser.parse_args()
    allow_descriptors(args.connections)
    result = asyncio.run(measure(args.connections, args.keys))
    print(result)


if __name__ == "__main__":
    main()
