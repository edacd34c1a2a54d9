"""Where sockplay's memory per held connection goes (issue 13): bytes per connection, by component.

A headless SockplayApp holds N connections (the two `repeat` blocks of bench/many_held.py);
then each component's objects are sized deeply (sys.getsizeof, every object reached counted
once, in the order below, after everything reachable from the loaded modules), and divided by N.
What is shared between components counts for the first that holds it. Python's allocator
keeps more than this (free blocks inside its arenas): PSS, as many_held.py reads it, is higher.

    .venv/bin/python bench/held_memory.py [--connections 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import types
from collections import deque
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.many_held import ProbedApp, allow_descriptors, ready_lab, settled  # noqa: E402
from widgets.event_log import EventLog  # noqa: E402

_SKIP = (type, types.ModuleType, types.FunctionType, types.MethodType)


def deep_size(obj: object, seen: set[int]) -> int:
    total = 0
    stack = [obj]
    while stack:
        o = stack.pop()
        if id(o) in seen or isinstance(o, _SKIP):
            continue
        seen.add(id(o))
        total += sys.getsizeof(o)
        if isinstance(o, dict):
            stack.extend(o.keys())
            stack.extend(o.values())
        elif isinstance(o, (list, tuple, set, frozenset, deque)):
            stack.extend(o)
        else:
            attributes = getattr(o, "__dict__", None)
            if attributes is not None:
                stack.append(attributes)
            for cls in type(o).__mro__:
                for slot in getattr(cls, "__slots__", ()):
                    if hasattr(o, slot):
                        stack.append(getattr(o, slot))
    return total


async def measure(n: int) -> list[tuple[str, float]]:
    app = ProbedApp()
    app.default_lab = False
    async with app.run_test(size=(120, 40)):
        runner, blocks = await ready_lab(app, n)
        for made in blocks:  # the two halves' blocks
            assert not await runner.run_repeat(made, keep_last=0), "the connections were not all made"
        await app.refresh_lab()
        await settled(app)
        await app.refresh_lab()
        gc.collect()
        session, lab = app.session, app.session.lab
        book = session.book
        seen: set[int] = set()
        deep_size(sys.modules, seen)  # what every session has: not charged to a component
        parts = [
            ("calls kept for the ladders (WireState._history)", session.wire._history),
            ("the last sock_diag dump (WireState.kernel)", session.wire.kernel),
            # The names table (lab.labels.names) the packets, owners and port index share counts here.
            ("captured packets (lab.packets)", lab.packets),
            ("event book indexes (shown, unwritten, by_call)", (book.shown, book.unwritten, book.by_call)),
            ("event book entries (columns, texts, packet references, line cache)", book),
            ("the log widget's lines (beyond the book's)", app.screen.query_one(EventLog).lines),
            ("periodic inspection entries (lab.inspector.followed)", lab.inspector.followed),
            ("view cache (SocketViews)", session.view_cache.__dict__),
            ("tracked names", session.tracked_names),
            ("packet labels (owners, ports)", (lab.labels.owners, lab.labels._by_port, lab.labels.lab_ports)),
            ("capture's first sequence numbers", lab.labels.capture._isn if lab.labels.capture else None),
            ("lab processes' bookkeeping (names, addresses...)", {k: v.__dict__ for k, v in lab.processes.items()}),
        ]
        out = [(name, deep_size(obj, seen) / n) for name, obj in parts]
        await session.shutdown()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=2000)
    args = parser.parse_args()
    allow_descriptors(args.connections)
    rows = asyncio.run(measure(args.connections))
    for name, size in rows:
        print(f"{size:8.0f} B  {name}")
    print(f"{sum(size for _, size in rows):8.0f} B  in all, per held connection")


if __name__ == "__main__":
    main()
