"""Sequences made on demand read an index as a list does: from the end when negative, IndexError past either end."""

from __future__ import annotations

import random

import pytest

from playground.packet_log import PacketLog
from playground.sequences import item_or_slice, list_index
from playground.session.entrystore import Rows
from tests.playground.test_packet_log import _made


def test_an_index_is_read_as_a_list_reads_it() -> None:
    items = list(range(5))
    for index in range(-5, 5):
        assert items[list_index(index, 5)] == items[index]
    for index in (5, -6):
        with pytest.raises(IndexError):
            list_index(index, 5)
    for part in (slice(None), slice(1, -1), slice(None, None, -2), slice(7, 9), slice(-9, 2)):
        assert item_or_slice(part, 5, items.__getitem__) == items[part]
    assert item_or_slice(-2, 5, items.__getitem__) == 3
    with pytest.raises(IndexError, match="no such item"):
        item_or_slice(5, 5, items.__getitem__, "no such item")


def test_the_log_and_the_packets_index_as_lists_do() -> None:
    rows = Rows(lambda: 3, lambda i: f"row {i}")
    assert rows[-1] == "row 2" and rows[0] == "row 0" and rows[1:] == ["row 1", "row 2"]
    with pytest.raises(IndexError):
        rows[3]
    log = PacketLog(10)
    rnd = random.Random(5)
    for i in range(4):
        log.add(_made(rnd, i))
    assert log[-1].serial == 3 and log[-4].serial == 0
    with pytest.raises(IndexError, match="packet index out of range"):
        log[4]
    with pytest.raises(IndexError):
        log[-5]
