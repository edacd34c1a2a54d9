"""Steps per second for a generated 10,000-step script, through `sockplay run`.

Run: .venv/bin/python bench/steps_per_second.py [--steps N]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.compiled import compile_sources  # noqa: E402


def generate(steps: int) -> str:
    lines = [
        "sockplay 1",
        "spawn server",
        "spawn client",
        "server: l = socket(tcp) = 3",
        "server: bind(l, 127.0.0.1:0) = 0",
        "server: listen(l, 8) = 0",
        "client: c = socket(tcp) = 3",
        "client: connect(c, server.l) = 0",
        "server: a = accept(l) = 4",
    ]
    body = [
        'client: write(c, "ping") = 4',
        'server: read(a, 4) = 4 "ping"',
        "server: setsockopt(a, TCP_NODELAY, 1) = 0",
        "server: getsockopt(a, TCP_NODELAY) = 1",
        "client: poll(c, POLLOUT, 0) = 1 POLLOUT",
    ]
    while len(lines) - 9 < steps:
        lines.append(body[(len(lines) - 9) % len(body)])
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=10_000)
    args = parser.parse_args()
    compile_sources()
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "generated.sockplay"
        script.write_text(generate(args.steps))
        start = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-m", "playground.cli", "run", str(script)],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        elapsed = time.perf_counter() - start
    if result.returncode != 0:
        print(result.stderr, file=sys.stderr)
        sys.exit(1)
    total = args.steps + 8
    print(f"{total} lines in {elapsed:.2f} s (whole command: start, parse, run, print, shut down)")
    print(f"{total / elapsed:.0f} steps/s")


if __name__ == "__main__":
    main()
