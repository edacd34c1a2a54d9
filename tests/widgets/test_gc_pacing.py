"""CollectorPacing: frozen while events stream, collected once they stop (on a fake clock)."""

from __future__ import annotations

import gc
import weakref

import pytest

from playground.session.gc_pacing import CollectorPacing


@pytest.fixture
def pacing():
    pacing = CollectorPacing(freeze_every=1.0, quiet=1.0, longest_freeze=30.0)
    yield pacing
    pacing.release()


def test_frozen_while_busy_and_collected_once_quiet(pacing):
    pacing.tick(busy=True, now=100.0)
    assert pacing.frozen and gc.get_freeze_count() > 0
    pacing.tick(busy=False, now=100.5)  # a quiet tick or two: still frozen
    assert pacing.frozen
    pacing.tick(busy=False, now=101.1)
    assert not pacing.frozen and gc.get_freeze_count() == 0


def test_nothing_frozen_in_a_quiet_lab(pacing):
    for t in range(10):
        pacing.tick(busy=False, now=float(t))
    assert not pacing.frozen and gc.get_freeze_count() == 0


def test_a_long_stream_is_collected_now_and_then(pacing):
    pacing.tick(busy=True, now=0.0)
    started = pacing.frozen_since
    t = 0.0
    while t < 31.0:
        t += 0.1
        pacing.tick(busy=True, now=t)
    assert pacing.frozen and pacing.frozen_since is not None and pacing.frozen_since > started


def test_cyclic_garbage_frozen_while_busy_is_collected_after(pacing):
    class Node:
        pass

    collected = []
    node = Node()
    node.self = node  # a reference cycle: only the collector frees it
    gc.collect()
    pacing.tick(busy=True, now=0.0)
    ref = weakref.ref(node, lambda _: collected.append(True))
    del node
    gc.collect()
    assert ref() is not None  # frozen: not even a full collection looks at it
    pacing.tick(busy=False, now=2.0)
    assert ref() is None and collected


async def test_the_app_turns_the_collector_back_on_after_its_first_frame():
    """`sockplay` loads the TUI with the collector off (nothing it makes then is garbage)."""
    from tests.widgets.helpers import ready
    from widgets.app import SockplayApp

    gc.disable()
    try:
        app = SockplayApp(record=False)
        async with app.run_test(size=(80, 24)) as pilot:
            await ready(pilot)
            assert gc.isenabled()
    finally:
        gc.enable()
