"""A 19 MB write through `sockplay run`: wall time and peak memory of the whole command.

`write(c, "network programming" * 1000000)` (a 19-byte unit) and, for comparison,
`"ab" * 9500000` (the same size, a 2-byte unit), each read whole by a MSG_WAITALL
recv in another process. The figure is the median of RUNS runs; peak RSS is the
largest of sockplay and its lab processes (wait4's rusage of each run).

Run: .venv/bin/python bench/big_write.py
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RUNS = 3

SCRIPT = """sockplay 1
spawn server
spawn client
server: l = socket(AF_INET, SOCK_STREAM, 0) = 3
server: bind(l, 127.0.0.1:0) = 0
server: listen(l, 5) = 0
client: c = socket(AF_INET, SOCK_STREAM, 0) = 3
client: connect(c, server.l) = 0
server: s = accept(l) = 4
client: write(c, {data}) ...
server: recv(s, 19000000, MSG_WAITALL) = 19000000
client: ... = 19000000
"""


def run_once(path: Path) -> tuple[float, int, int]:
    """(seconds, peak RSS in KiB, longest output line) of one `sockplay run`."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.monotonic()
        child = subprocess.Popen(
            [sys.executable, "-m", "playground.cli", "run", str(path)], cwd=REPO, stdout=out, stderr=err
        )
        _, status, usage = os.wait4(child.pid, 0)  # this run's own peak, its reaped lab processes included
        elapsed = time.monotonic() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if child.returncode != 0:
            raise SystemExit(f"sockplay run failed ({child.returncode}): {err.read().strip()}")
        return elapsed, usage.ru_maxrss, max(len(line) for line in out.read().splitlines())


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        for label, data in (
            ('"network programming" * 1000000', '"network programming" * 1000000'),
            ('"ab" * 9500000', '"ab" * 9500000'),
        ):
            path = Path(scratch) / "big.sockplay"
            path.write_text(SCRIPT.format(data=data))
            runs = [run_once(path) for _ in range(RUNS)]
            wall = statistics.median(r[0] for r in runs)
            peak = max(r[1] for r in runs)
            line = max(r[2] for r in runs)
            print(f"19 MB write of {label}: {wall:.2f} s, peak RSS {peak / 1024:.0f} MB, longest line {line} chars")


if __name__ == "__main__":
    main()
