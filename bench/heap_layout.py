"""Where sockplay's PSS per held connection sits (issue 13): the C heap, pymalloc's arenas, the rest.

bench/many_held.py tells how much sockplay's PSS grows a held connection; held_memory.py how
many bytes of objects each component keeps. This one tells where the growth sits, and how much
of it holds nothing: the same two `repeat` blocks in a headless app, read before and after
(each once the app is steady, as many_held.py reads them):

- PSS by mapping (/proc/self/smaps): `[heap]` (glibc's heap: arrays, big dicts and lists, bytes),
  anonymous mappings (pymalloc's 1 MiB arenas, big mmap'd blocks), the rest (libraries' pages);
- glibc's heap (mallinfo2): bytes in use and free inside it;
- pymalloc (sys._debugmallocstats): arenas, bytes in allocated blocks, bytes in free blocks of
  used pools, bytes of unused pools: an arena is given back only when all of it is free.

    .venv/bin/python bench/heap_layout.py [--connections 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import os
import re
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.many_held import ProbedApp, allow_descriptors, ready_lab, steady  # noqa: E402
from playground.worker.libc import libc  # noqa: E402

_FIELDS = ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")


class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in _FIELDS]


def mappings() -> dict[str, int]:
    """PSS in bytes: [heap], [anon] (anonymous mappings), other (files, stacks, the rest)."""
    out = {"[heap]": 0, "[anon]": 0, "other": 0}
    where = "other"
    for line in Path("/proc/self/smaps").read_text().splitlines():
        parts = line.split()
        if parts and "-" in parts[0] and len(parts) >= 5:
            name = parts[5] if len(parts) > 5 else "[anon]"
            where = name if name in out else "other"
        elif parts and parts[0] == "Pss:":
            out[where] += int(parts[1]) * 1024
    return out


def glibc_heap() -> dict[str, int]:
    mallinfo2 = getattr(libc, "mallinfo2", None)
    if mallinfo2 is None:
        return {}
    mallinfo2.restype = MallInfo2
    info = mallinfo2()
    return {"heap in use": info.uordblks, "heap free": info.fordblks, "mmap'd blocks": info.hblkhd}


def pymalloc() -> dict[str, int]:
    """The totals sys._debugmallocstats writes to stderr (read through a temporary file)."""
    with tempfile.TemporaryFile() as out:
        saved = os.dup(2)
        try:
            os.dup2(out.fileno(), 2)
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        out.seek(0)
        text = out.read().decode(errors="replace")
    wanted = {
        "arenas": r"# arenas allocated current\s*=\s*([\d,]+)",
        "allocated blocks": r"# bytes in allocated blocks\s*=\s*([\d,]+)",
        "free blocks": r"# bytes in available blocks\s*=\s*([\d,]+)",
        "unused pools": r"\d+ unused pools \* \d+ bytes\s*=\s*([\d,]+)",
    }
    found = {}
    for name, pattern in wanted.items():
        match = re.search(pattern, text)
        if match:
            found[name] = int(match.group(1).replace(",", ""))
    return found


def reading() -> dict[str, int]:
    return {**mappings(), **glibc_heap(), **pymalloc()}


async def measure(n: int) -> tuple[dict[str, int], dict[str, int]]:
    app = ProbedApp()
    app.default_lab = False
    async with app.run_test(size=(120, 40)):
        runner, blocks = await ready_lab(app, n)
        await app.refresh_lab()
        await steady(app)
        before = reading()
        for block in blocks:
            steps = await runner.run_repeat(block, keep_last=0)
            assert not steps, "the connections were not all made"
            await steady(app)
        after = reading()
        await app.session.shutdown()
    return before, after


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=10_000)
    args = parser.parse_args()
    allow_descriptors(args.connections)
    before, after = asyncio.run(measure(args.connections))
    print(f"{'':22} {'before':>12} {'after':>12} {'a connection':>14}")
    for name in after:
        first, last = before.get(name, 0), after[name]
        grown = f"{last - first:+,} arenas" if name == "arenas" else f"{(last - first) / args.connections:.1f} B"
        print(f"{name:22} {first:>12,} {last:>12,} {grown:>14}")


if __name__ == "__main__":
    main()
