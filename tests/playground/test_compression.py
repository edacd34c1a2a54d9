"""What the lab and the session keep compressed (playground/compression.py) comes back byte for byte."""

from __future__ import annotations

import os

from playground.compression import compress, decompress


def test_blocks_come_back_as_they_went_in() -> None:
    lines = "".join(f"  12.{k:03d} b   connect(s[{k}], a.l) = 0  [fd {k + 3}]\n" for k in range(2000)).encode()
    for data in (b"", b"x", os.urandom(70_000), lines, bytearray(lines[:65_536])):
        assert decompress(compress(data)) == bytes(data)
    assert len(compress(lines)) < len(lines) // 10  # log lines, much alike: a fraction of their size
