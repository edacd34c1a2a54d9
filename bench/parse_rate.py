"""How fast the parser reads, and what it holds: MB/s and peak memory per MB of script.

Cases: an ordinary script of usual steps (20 MB: the fast path and the general one,
with errno messages, escapes and comments mixed in), and single hostile lines
of 200 KB and 400 KB (errno messages inside a string, unclosed parentheses,
juxtaposed strings): a line twice as long must take about twice the time.
Each case runs in a fresh interpreter, so its peak RSS is its own.

Run: .venv/bin/python bench/parse_rate.py
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

HEAD = "sockplay 1\nspawn server\nspawn client\nserver: l = socket(AF_INET, SOCK_STREAM, 0) = 3\n"
HEAD += "server: bind(l, 127.0.0.1:9000) = 0\nserver: listen(l, 8) = 0\nclient: c = socket(tcp) = 3\n"
HEAD += "client: connect(c, server.l) = 0\nserver: a = accept(l) = 4\n"
ROUND = (
    'client: write(c, "ping") = 4\n'
    'server: read(a, 100) = 4 "ping"\n'
    "server: recv(a, 10, MSG_DONTWAIT) = -1 EAGAIN (Resource temporarily unavailable)\n"
    'client: write(c, "a\\tb\\n" * 3)   # escapes take the general path\n'
    "server: poll(a, POLLIN, 0) = 1 POLLIN\n"
    'server: read(a, 100) = 12 "a\\tb\\n" * 3\n'
)
STEP = "a: s = socket(AF_INET, SOCK_STREAM, 0) = 3\n"


def ordinary(megabytes: float) -> str:
    rounds = int(megabytes * 1e6) // len(ROUND)
    return HEAD + ROUND * rounds


def hostile(kind: str, size: int) -> str:
    head = "sockplay 1\nspawn a\n" + STEP
    if kind == "errno in a string":
        return head + 'a: write(s, "' + "= -1 EA (x)" * (size // 11) + '")\n'
    if kind == "unclosed parentheses":
        return head + 'a: write(s, "x")' + " = -1 EA (x" * (size // 11) + "\n"
    return head + "a: write(s, " + '"a" ' * (size // 4) + ")\n"  # juxtaposed strings


def measure(text: str) -> dict[str, float]:
    from playground.script.errors import ScriptError
    from playground.script.parser import parse_script

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    try:
        parse_script(text)
    except ScriptError:
        pass  # a hostile line may be an error: what counts is how soon it is found
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    return {"seconds": seconds, "peak_mb": peak / 1024}


def child(case: str, size: float) -> dict[str, float]:
    result = subprocess.run(
        [sys.executable, __file__, "--one", case, str(size)], capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout)


def main() -> None:
    if sys.argv[1:2] == ["--one"]:
        case, size = sys.argv[2], float(sys.argv[3])
        text = ordinary(size) if case == "ordinary" else hostile(case, int(size))
        print(json.dumps(measure(text)))
        return
    mb = 20.0
    got = child("ordinary", mb)
    rate = mb / got["seconds"]
    print(f"ordinary script, {mb:.0f} MB: {got['seconds']:.2f} s, {rate:.1f} MB/s, {got['peak_mb'] / mb:.0f} MB per MB")
    for kind in ("errno in a string", "unclosed parentheses", "juxtaposed strings"):
        short, long = child(kind, 200_000), child(kind, 400_000)
        ratio = long["seconds"] / max(short["seconds"], 1e-9)
        print(
            f"hostile line ({kind}): 200 KB {short['seconds'] * 1000:.0f} ms, "
            f"400 KB {long['seconds'] * 1000:.0f} ms (x{ratio:.1f} for twice the length)"
        )


if __name__ == "__main__":
    main()
