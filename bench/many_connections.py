"""N connections made by a `repeat N as i` block, through `sockplay run` (issue 13's C10K figure).

The script: socket, connect and accept per connection, epoll_ctl(ADD) of each accepted one,
then a write on one connection and an epoll_wait that finds it, and a poll over the whole
family. Each process needs N + a few descriptors: the soft RLIMIT_NOFILE is raised to the
hard limit for the command (as `ulimit -n` in the shell would), and a limit below that is a
clear refusal, not a run.

Run: .venv/bin/python bench/many_connections.py [--connections N] [--runs R]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.compiled import compile_sources  # noqa: E402


def generate(connections: int) -> str:
    probe = min(7, connections - 1)
    return f"""sockplay 1
spawn server
spawn client
server: l = socket(tcp)                  = 3
server: bind(l, 127.0.0.1:0)             = 0
server: listen(l, 4096)                  = 0
server: ep = epoll_create1(0)            = 4
repeat {connections} as i
client: s[i] = socket(tcp)
client: connect(s[i], server.l)          = 0
server: c[i] = accept(l)
server: epoll_ctl(ep, EPOLL_CTL_ADD, c[i], EPOLLIN) = 0
end
client: write(s[{probe}], "x")             = 1
server: epoll_wait(ep, 64, 1000)         = 1 {{c[{probe}]: EPOLLIN}}
server: poll(c[*], POLLIN, 0)            = 1 {{c[{probe}]: POLLIN}}
"""


def run_once(script: Path) -> float:
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
        print(result.stderr[-2000:], file=sys.stderr)
        sys.exit(1)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = args.connections + 64
    if soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            sys.exit(f"RLIMIT_NOFILE's hard limit is {hard}: {args.connections} connections need {needed} descriptors")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))  # inherited by sockplay and its lab
    compile_sources()
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "many.sockplay"
        script.write_text(generate(args.connections))
        times = sorted(run_once(script) for _ in range(args.runs))
    steps = args.connections * 4 + 7
    median = times[len(times) // 2]
    print(
        f"{args.connections} connections ({steps} steps): median {median:.2f} s over {args.runs} runs "
        f"(min {times[0]:.2f}, max {times[-1]:.2f}); whole command: start, parse, run, print, shut down"
    )


if __name__ == "__main__":
    main()
