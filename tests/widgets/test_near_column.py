"""The log's line numbers kept near their positions (playground/session/near_column.py): read back as written."""

from __future__ import annotations

import random
from array import array

import pytest

from playground.session.near_column import MISSING, NearColumn


def test_numbers_read_back_as_written_near_or_far_from_their_positions() -> None:
    rng = random.Random(5)
    for far in (10, 40_000, 3 * 10**9):  # within 16 bits, past them, past 32
        column, model = NearColumn(), []
        for _ in range(2000):
            if rng.random() < 0.6 or not model:
                value = rng.choice((MISSING, len(model), len(model) + rng.randrange(far), rng.randrange(far)))
                column.append(value)
                model.append(value)
            else:
                at = rng.randrange(len(model))
                value = rng.choice((MISSING, at, rng.randrange(far)))
                column[at] = value
                model[at] = value
        assert list(column) == model and [column[i] for i in range(len(model))] == model
        assert column[-1] == model[-1] and column[-3:] == model[-3:]
        if MISSING not in model:
            assert list(NearColumn.of(model)) == model  # the same, made at once
        shown = sorted(set(rng.sample(range(4000), 300)))
        at = NearColumn.positions(NearColumn.of(shown), 4000)  # where each entry is among the shown
        assert [at[i] for i in range(4000)] == [shown.index(i) if i in shown else MISSING for i in range(4000)]
    assert list(NearColumn(range(5))) == [0, 1, 2, 3, 4] and list(NearColumn.of(array("I", [0, 2, 7]))) == [0, 2, 7]
    assert list(NearColumn.positions(NearColumn(), 2)) == [MISSING, MISSING]
    lowest = [*range(32_768), 0]  # the last one's difference is 16 bits' lowest (what MISSING is kept as)
    assert list(NearColumn.of(lowest)) == lowest and list(NearColumn(lowest)) == lowest
    with pytest.raises(IndexError):
        NearColumn()[0] = 1
    with pytest.raises(IndexError):
        NearColumn(range(3))[-4]  # (as an array: not wrapped twice)
    wide = NearColumn([0])
    with pytest.raises(OverflowError):
        wide.append(1 << 70)
    assert list(wide) == [0]  # (nothing half added)


def test_the_log_unfiltered_takes_two_bytes_a_line() -> None:
    column = NearColumn(range(60_000))
    assert column._deltas.itemsize == 2 and column[59_999] == 59_999
