"""Time from start to first screen: `sockplay` against a minimal Textual app, in the same run.

Each program runs in a real pseudo-terminal (120x40, xterm-256color), as a user would
start it; the clock runs from just before the process is started until its output shows
a known text of its first screen. For sockplay two moments are taken: the first frame
(the panes drawn) and the lab ready (server and client shown running). Runs alternate
between the programs; medians are reported, and the ratio first-frame / minimal app.

    .venv/bin/python bench/tui_startup.py [--runs 7] [--json]
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import re
import select
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.compiled import compile_sources  # noqa: E402

MINIMAL_APP = """
from textual.app import App
from textual.widgets import Static

class Minimal(App):
    def compose(self):
        yield Static("minimal app ready")

Minimal().run()
"""
_ESCAPES = re.compile(rb"\x1b\[[0-9;?<>=]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)|\x1b[()][0-9A-Za-z]|\x1b[=>78]")


def _sockplay_command() -> list[str]:
    found = shutil.which("sockplay") or str(Path(sys.executable).with_name("sockplay"))
    return [found]


def run_once(command: list[str], markers: list[bytes], timeout: float = 30.0) -> list[float]:
    """Seconds from start until each marker is on screen (in order), then quit the program."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    env = dict(os.environ, TERM="xterm-256color", COLUMNS="120", LINES="40")
    start = time.perf_counter()
    proc = subprocess.Popen(
        command, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True, start_new_session=True, cwd=ROOT
    )
    os.close(slave)
    seen = b""
    times: list[float] = []
    deadline = time.monotonic() + timeout
    try:
        while len(times) < len(markers):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{command[0]}: no {markers[len(times)]!r} within {timeout} s")
            ready, _, _ = select.select([master], [], [], 0.05)
            if not ready:
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            now = time.perf_counter()
            seen += chunk
            plain = _ESCAPES.sub(b"", seen)
            while len(times) < len(markers) and all(m in plain for m in markers[len(times)].split(b"|")):
                times.append(now - start)
        os.write(master, b"\x11")  # ctrl+q
        end = time.monotonic() + 10
        while proc.poll() is None and time.monotonic() < end:
            ready, _, _ = select.select([master], [], [], 0.05)
            if ready:
                try:
                    os.read(master, 65536)
                except OSError:
                    break
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(5)
        os.close(master)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    compile_sources()
    # sockplay records each session, as it does for a user; the recordings go to a scratch directory.
    state = tempfile.TemporaryDirectory(prefix="sockplay-bench-")
    os.environ["XDG_STATE_HOME"] = state.name
    minimal_cmd = [sys.executable, "-c", MINIMAL_APP]
    sockplay_cmd = _sockplay_command()
    minimal, first_frame, lab_ready = [], [], []
    run_once(minimal_cmd, [b"minimal app ready"])  # warm the file cache for both
    run_once(sockplay_cmd, [b"Inspector"])
    for _ in range(args.runs):
        minimal += run_once(minimal_cmd, [b"minimal app ready"])
        frame, ready = run_once(sockplay_cmd, [b"Inspector|Events", b"server  pid|client  pid|running"])
        first_frame.append(frame)
        lab_ready.append(ready)
    result = {
        "runs": args.runs,
        "minimal_app_ms": round(statistics.median(minimal) * 1000),
        "sockplay_first_frame_ms": round(statistics.median(first_frame) * 1000),
        "sockplay_lab_ready_ms": round(statistics.median(lab_ready) * 1000),
    }
    result["first_frame_ratio"] = round(result["sockplay_first_frame_ms"] / result["minimal_app_ms"], 2)
    if args.json:
        print(json.dumps(result))
        return
    print(f"median of {args.runs} runs, 120x40 pty:")
    print(f"  minimal Textual app, first screen: {result['minimal_app_ms']} ms")
    print(
        f"  sockplay, first frame:             {result['sockplay_first_frame_ms']} ms "
        f"({result['first_frame_ratio']}x the minimal app; target 1.5x: "
        f"{'met' if result['first_frame_ratio'] <= 1.5 else 'NOT met'})"
    )
    print(f"  sockplay, server and client shown: {result['sockplay_lab_ready_ms']} ms")


if __name__ == "__main__":
    main()
