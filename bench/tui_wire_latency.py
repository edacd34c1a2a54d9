"""Key press to screen update in the sockplay TUI while captured packets stream into the log.

The app runs headless at 120x40 on the real engine with packet capture on. A task makes real
calls on a connected pair (client writes, server reads) as fast as the engine takes them, so
data segments and ACKs pour into the event log beside the calls; meanwhile keys are sent at
intervals through the driver and each key's latency is the time from sending it to the first
frame drawn after the app reacted (see bench/tui_keypress_latency.py, whose probe this uses).

Two keys are measured: moving the Lab pane's cursor (the Inspector follows) and `t`, which
cycles the log between calls and packets, calls only and packets only (a relist of the log).

    .venv/bin/python bench/tui_wire_latency.py [--calls 20000] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from textual import events  # noqa: E402
from tui_keypress_latency import (  # noqa: E402
    INFLIGHT,
    KEY_INTERVAL,
    PROBE_TIMEOUT,
    ProbedApp,
    connect_pair,
    summary,
)

from playground.events import PacketsSeen  # noqa: E402
from playground.script.parser import parse_line  # noqa: E402
from widgets.event_log import EventsPane  # noqa: E402


async def stream(app: ProbedApp, calls: int) -> None:
    lab = app.session.lab
    nodes = [parse_line(text, lab.scope()) for text in ('client: write(c, "ping")', "server: read(a, 4)")]
    done = 0
    while done < calls:
        batch = [lab.submit(nodes[i % 2]) for i in range(INFLIGHT)]
        await asyncio.gather(*(h.future for h in batch))
        done += len(batch)


async def measure(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory(prefix="sockplay-bench-") as directory:
        return await _measure(args, Path(directory) / "bench.sockplay")


async def _measure(args: argparse.Namespace, record_path: Path) -> dict:
    app = ProbedApp(record_path)  # recorded, as every session is (to a file removed afterwards)
    packets = [0]
    async with app.run_test(size=(120, 40)) as pilot:
        await asyncio.wait_for(app.lab_ready.wait(), 20)
        if app.session.lab.capture is None:
            raise SystemExit(f"no packet capture: {app.session.lab.capture_reason}")
        app.session.lab.subscribe(
            lambda e: packets.__setitem__(0, packets[0] + len(e.packets)) if isinstance(e, PacketsSeen) else None
        )
        tree = await connect_pair(app, pilot)
        tree.focus()
        await pilot.pause(0.2)
        packets[0] = 0
        pane = app.screen.query_one(EventsPane)
        start = time.perf_counter()
        streamer = asyncio.ensure_future(stream(app, args.calls))
        cursor: list[float] = []
        toggle: list[float] = []
        driver = app._driver
        down = True
        n = 0
        while not streamer.done():
            await asyncio.sleep(KEY_INTERVAL)
            if app.probe is not None:
                if time.perf_counter() - app.probe[1] < PROBE_TIMEOUT:
                    continue
                app.probe[2].append(PROBE_TIMEOUT)
                app.probe = None
            n += 1
            if n % 4:
                before = tree.cursor_line
                key = "down" if down else "up"
                down = not down
                app.probe = (lambda b=before: tree.cursor_line != b, time.perf_counter(), cursor)
                driver.send_message(events.Key(key, None))
            else:
                shown = pane.book.show
                app.probe = (lambda s=shown: pane.book.show != s, time.perf_counter(), toggle)
                driver.send_message(events.Key("t", "t"))
        await streamer
        elapsed = time.perf_counter() - start
        await pilot.pause(0.3)
        result = {
            "calls": args.calls,
            "packets": packets[0],
            "stream_seconds": round(elapsed, 2),
            "packets_per_second": round(packets[0] / elapsed),
            "log_entries": len(app.session.book.entries),
            "frames": app.frames,
            "cursor_move": summary(cursor),
            "toggle_calls_packets": summary(toggle),
        }
        await app.session.shutdown()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = asyncio.run(measure(args))
    if args.json:
        print(json.dumps(result))
        return
    print(
        f"calls: {result['calls']}, packets captured: {result['packets']} in {result['stream_seconds']} s "
        f"({result['packets_per_second']}/s); log entries: {result['log_entries']}; frames: {result['frames']}"
    )
    for name in ("cursor_move", "toggle_calls_packets"):
        s = result[name]
        if s["n"]:
            print(
                f"{name:21} n={s['n']:4}  p50 {s['p50_ms']:6.1f} ms  p99 {s['p99_ms']:6.1f} ms  "
                f"max {s['max_ms']:6.1f} ms"
            )


if __name__ == "__main__":
    main()
