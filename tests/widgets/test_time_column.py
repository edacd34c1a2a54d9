"""The log's times (playground/session/time_column.py): every time reads back as written, whatever its gaps."""

from __future__ import annotations

import random
import tracemalloc

import pytest

from playground.session.time_column import TimeColumn


def test_times_read_back_as_written_through_gaps_rewrites_and_times_before_their_run() -> None:
    rng = random.Random(11)
    column, model = TimeColumn(), []
    t = 10**15
    for _ in range(5000):
        roll = rng.random()
        if roll < 0.7:
            t += rng.randrange(0, 2_000_000)  # a stream: within microseconds
        elif roll < 0.8:
            t += rng.randrange(3 * 10**9, 10**12)  # a pause past a 32-bit offset
        elif roll < 0.9:
            earlier = t - rng.randrange(0, 3 * 10**9)  # a packet captured before the call was logged
            column.append(earlier)
            model.append(earlier)
            continue
        if model and rng.random() < 0.1:
            at = rng.randrange(len(model))
            model[at] = column[at] = model[at] + rng.choice((-1, 1)) * rng.randrange(0, 5 * 10**9)
        column.append(t)
        model.append(t)
    assert len(column) == len(model)
    assert [column[i] for i in range(len(model))] == model
    assert column[-1] == model[-1]
    column[-1] = model[-1] = model[-1] + 7  # (from the end, as an array)
    assert column[len(model) - 1] == model[-1]
    with pytest.raises(IndexError):
        column[len(model)]


def test_a_stream_of_times_takes_four_bytes_each() -> None:
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        column = TimeColumn()
        for k in range(60_000):
            column.append(10**15 + k * 500_000)  # 60,000 entries in 30 s
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert held < 60_000 * 5, held
    assert column[59_999] == 10**15 + 59_999 * 500_000
