"""The event log's text store: pieces appended, compressed a block at a time, each read back as added."""

from __future__ import annotations

import random

from playground.session.text_blocks import BLOCK, TextBlocks


def log_line(i: int) -> bytes:
    return f"12:00:{i % 60:02d}.{i:06d}  b  s[{i}] = socket(tcp) = {i % 4000 + 5}  0.0{i % 97:02d} ms".encode()


def test_every_piece_reads_back_as_added_across_many_sealed_blocks_in_any_order() -> None:
    store = TextBlocks()
    pieces = [log_line(i) for i in range(20_000)] + ["数据 é \x00 ✓".encode() * 3]
    offsets = [store.add(piece) for piece in pieces]
    assert len(store) == sum(map(len, pieces))
    assert len(store) > 10 * BLOCK  # (many blocks sealed)
    order = list(range(len(pieces)))
    random.Random(7).shuffle(order)
    for i in order:
        assert store.get(offsets[i], len(pieces[i])) == pieces[i]


def test_log_text_is_kept_at_a_fraction_of_its_size() -> None:
    store = TextBlocks()
    for i in range(60_000):
        store.add(log_line(i))
    assert store.stored * 3 < len(store)


def test_a_piece_larger_than_a_block_is_kept_whole() -> None:
    store = TextBlocks()
    small = store.add(b"a")
    big = bytes(range(256)) * (BLOCK // 128)
    at = store.add(big)
    after = store.add(b"z")
    assert store.get(small, 1) == b"a"
    assert store.get(at, len(big)) == big
    assert store.get(after, 1) == b"z"
