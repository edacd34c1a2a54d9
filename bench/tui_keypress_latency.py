"""Key press to screen update in the sockplay TUI while 100,000 engine events stream in.

The app runs headless at 120x40 on the real engine. A task makes real calls (getsockopt,
write, read on a connected pair) as fast as the engine takes them, so CallStarted/CallDone
events pour in; meanwhile keys are sent at intervals through the driver, as a terminal
would, and each key's latency is the time from sending it to the first frame drawn after
the app reacted (the frame is also encoded for the terminal, as a real one would be).

Two keys are measured: moving the Lab pane's cursor between two sockets (the Inspector
follows) and typing a character in the command line. Afterwards the bench checks that no call
was dropped: each has its entry in the event book, the log widget holds every line, and the
session's recording (written to a temporary file) has a line for each call.

    .venv/bin/python bench/tui_keypress_latency.py [--events 100000] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from textual import events  # noqa: E402
from textual._compositor import CompositorUpdate  # noqa: E402
from textual.pilot import Pilot  # noqa: E402

from playground.events import CallDone, CallStarted  # noqa: E402
from playground.script.parser import parse_line  # noqa: E402
from widgets.app import SockplayApp  # noqa: E402
from widgets.command_line import CommandLine  # noqa: E402
from widgets.event_log import EventLog  # noqa: E402
from widgets.lab_tree import LabTree  # noqa: E402

INFLIGHT = 100  # calls in flight at once (the engine's channel refuses far more)
KEY_INTERVAL = 0.1  # seconds between measured key presses
PROBE_TIMEOUT = 2.0  # a key whose effect is not drawn by then counts as this late


class ProbedApp(SockplayApp):
    """Notes when each frame is drawn, and encodes it as the terminal driver would."""

    def __init__(self, record_path: Path | None = None) -> None:
        super().__init__(keymap={}, record=record_path is not None, record_path=record_path)
        self.frames = 0
        self.probe = None  # (condition, sent_at, results list)
        self.encoded_bytes = 0

    def _display(self, screen, renderable) -> None:
        super()._display(screen, renderable)
        if renderable is None:
            return
        if isinstance(renderable, CompositorUpdate):
            self.encoded_bytes += len(renderable.render_segments(self.console))
        self.frames += 1
        probe = self.probe
        if probe is not None and probe[0]():
            probe[2].append(time.perf_counter() - probe[1])
            self.probe = None


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


async def stream(app: ProbedApp, target_events: int, counter: list[int], rate: float = 0.0) -> None:
    lab = app.session.lab
    lines = [
        "client: getsockopt(c, SO_RCVBUF)",
        'client: write(c, "ping")',
        "server: read(a, 4)",
    ]
    nodes = [parse_line(text, lab.scope()) for text in lines]
    i = 0
    start = time.perf_counter()
    while counter[0] < target_events:
        batch = []
        for _ in range(INFLIGHT):
            batch.append(lab.submit(nodes[i % len(nodes)]))
            i += 1
        await asyncio.gather(*(h.future for h in batch))
        if rate:  # hold the stream to `rate` events a second
            ahead = counter[0] / rate - (time.perf_counter() - start)
            if ahead > 0:
                await asyncio.sleep(ahead)


# A step line of a recording (not a comment, a directive or a blocked call's `... = ` line).
_RECORDED_STEP = re.compile(r"^(?:\+[0-9.]+\s+)?[a-z][a-z0-9_-]*: (?!\.\.\. =)")


def recorded_steps(path: Path) -> int:
    return sum(1 for line in path.read_text().splitlines() if _RECORDED_STEP.match(line))


async def measure(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory(prefix="sockplay-bench-") as directory:
        record_path = Path(directory) / "bench.sockplay"
        result = await _measure(args, record_path)
        # Every call the app started is a step line of the recording (closed when the app ended).
        result["calls_recorded"] = recorded_steps(record_path)
    return result


async def connect_pair(app: ProbedApp, pilot: Pilot) -> LabTree:
    """F2 (a connected pair), then the server's listener selected in the Lab pane."""
    await pilot.press("f2")
    tree = app.screen.query_one(LabTree)
    deadline = time.monotonic() + 20
    while app.lab_view.socket("server", 4) is None or app.lab_view.socket("client", 3) is None:
        if time.monotonic() > deadline:
            raise SystemExit("the pair did not connect")
        await asyncio.sleep(0.01)
    tree.select_key(("socket", "server", 3))
    return tree


async def _measure(args: argparse.Namespace, record_path: Path) -> dict:
    app = ProbedApp(record_path)  # recorded, as every session is (to a temporary file)
    counter = [0]
    calls = [0]  # every call started, the bench's and F2's
    result: dict = {}
    async with app.run_test(size=(120, 40)) as pilot:
        await asyncio.wait_for(app.lab_ready.wait(), 20)
        app.session.lab.subscribe(
            lambda e: counter.__setitem__(0, counter[0] + 1) if isinstance(e, (CallStarted, CallDone)) else None
        )
        app.session.lab.subscribe(lambda e: calls.__setitem__(0, calls[0] + 1) if isinstance(e, CallStarted) else None)
        tree = await connect_pair(app, pilot)
        await pilot.pause(0.2)
        counter[0] = 0
        start = time.perf_counter()
        streamer = asyncio.ensure_future(stream(app, args.events, counter, args.rate))
        cursor_latencies: list[float] = []
        typing_latencies: list[float] = []
        driver = app._driver
        command = app.screen.query_one(CommandLine)
        down = True
        tree.focus()
        while not streamer.done():
            await asyncio.sleep(KEY_INTERVAL)
            if app.probe is not None:
                if time.perf_counter() - app.probe[1] < PROBE_TIMEOUT:
                    continue  # the previous key has not been drawn yet
                app.probe[2].append(PROBE_TIMEOUT)
                app.probe = None
            if counter[0] < args.events // 2:
                # First half: move the Lab pane's cursor between server's two sockets.
                before = tree.cursor_line
                key = "down" if down else "up"
                down = not down
                app.probe = (lambda b=before: tree.cursor_line != b, time.perf_counter(), cursor_latencies)
                driver.send_message(events.Key(key, None))
            else:
                # Second half: type in the command line.
                field = command.input
                if not field.has_focus:
                    field.focus()
                    continue
                if len(field.value) > 40:
                    field.value = ""
                    continue
                size = len(field.value)
                app.probe = (lambda s=size, f=field: len(f.value) > s, time.perf_counter(), typing_latencies)
                driver.send_message(events.Key("x", "x"))
        await streamer
        elapsed = time.perf_counter() - start
        # Let the last batch reach the log, then check the log holds every call.
        book = app.session.book
        log = app.screen.query_one(EventLog)
        deadline = time.monotonic() + 5
        while (book.unwritten or book.changed) and time.monotonic() < deadline:
            await pilot.pause(0.05)
        result = {
            "events": counter[0],
            "rate_asked": args.rate or "max",
            "stream_seconds": round(elapsed, 2),
            "events_per_second": round(counter[0] / elapsed),
            "log_lines": len(book.shown),
            "log_widget_lines": log.line_count,
            "calls_started": calls[0],
            "calls_in_log": sum(1 for entry in book.entries if entry.call_id is not None),
            "frames": app.frames,
            "cursor_move": summary(cursor_latencies),
            "typing": summary(typing_latencies),
            "all_keys": summary(cursor_latencies + typing_latencies),
        }
        await app.session.shutdown()
    return result


def summary(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    ms = [v * 1000 for v in values]
    return {
        "n": len(ms),
        "p50_ms": round(statistics.median(ms), 1),
        "p99_ms": round(percentile(ms, 99), 1),
        "max_ms": round(max(ms), 1),
    }


def dropped(result: dict) -> int:
    """Calls missing from the event log or the recording, and lines missing from the log widget."""
    started = result["calls_started"]
    return (
        max(0, started - result["calls_in_log"])
        + max(0, started - result["calls_recorded"])
        + max(0, result["log_lines"] - result["log_widget_lines"])
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=0.0, help="events a second (default: as fast as the engine goes)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = asyncio.run(measure(args))
    if args.json:
        print(json.dumps(result))
        return
    print(
        f"events streamed: {result['events']} in {result['stream_seconds']} s "
        f"({result['events_per_second']}/s); log lines: {result['log_lines']}; frames: {result['frames']}"
    )
    print(
        f"calls started: {result['calls_started']}; in the event log: {result['calls_in_log']}; "
        f"recorded: {result['calls_recorded']}; log widget lines: {result['log_widget_lines']} "
        f"({'none dropped' if dropped(result) == 0 else f'{dropped(result)} DROPPED'})"
    )
    for name in ("cursor_move", "typing", "all_keys"):
        s = result[name]
        if s["n"]:
            print(
                f"{name:12} n={s['n']:4}  p50 {s['p50_ms']:6.1f} ms  p99 {s['p99_ms']:6.1f} ms  "
                f"max {s['max_ms']:6.1f} ms"
            )
    p99 = result["all_keys"].get("p99_ms")
    print(f"target p99 < 100 ms: {'met' if p99 is not None and p99 < 100 else 'NOT met'}")


if __name__ == "__main__":
    main()
