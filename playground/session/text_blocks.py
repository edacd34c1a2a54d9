"""Append-only UTF-8 text, kept compressed in blocks: the event log's lines at a fifth of their size.

A session holding 10,000 connections logs some 60,000 lines, 2.7 MB of text, none of which is
read again unless it is scrolled to or searched. Text is appended to an open block; once that
holds BLOCK bytes it is compressed (playground.compression: log lines shrink about fifteenfold)
and a new one opens. A piece of text never straddles two blocks. Reading a sealed block
decompresses it whole; the few read last stay plain, so a screen of lines or a search (which
reads in order) decompresses each block once.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections import OrderedDict

from playground.compression import compress, decompress

__all__ = ["BLOCK", "TextBlocks"]

BLOCK = 64 * 1024  # bytes of text in a block before it is compressed
READ_KEPT = 4  # sealed blocks kept plain after a read (a screen may straddle two)


class TextBlocks:
    """Pieces of text, each appended once and read back by the offset `add` gave it."""

    __slots__ = ("_sealed", "_starts", "_open", "_open_start", "_plain")

    def __init__(self) -> None:
        self._sealed: list[bytes] = []
        self._starts = array("q")  # where each sealed block starts, in the offsets `add` gives
        self._open = bytearray()
        self._open_start = 0
        self._plain: OrderedDict[int, bytes] = OrderedDict()  # sealed blocks read lately, decompressed

    def __len__(self) -> int:
        """Bytes of text held (the offset the next piece gets)."""
        return self._open_start + len(self._open)

    @property
    def stored(self) -> int:
        """Bytes the text takes as kept (compressed blocks and the open one)."""
        return sum(len(block) for block in self._sealed) + len(self._open)

    def add(self, raw: bytes) -> int:
        """Append `raw`; its offset."""
        if len(self._open) + len(raw) > BLOCK and self._open:
            self._seal()
        at = len(self)
        self._open += raw
        return at

    def get(self, at: int, length: int) -> bytes:
        """The `length` bytes added at offset `at`."""
        if at >= self._open_start:
            start = at - self._open_start
            return bytes(self._open[start : start + length])
        index = bisect_right(self._starts, at) - 1
        block = self._plain.get(index)
        if block is None:
            block = self._plain[index] = decompress(self._sealed[index])
            if len(self._plain) > READ_KEPT:
                self._plain.popitem(last=False)
        else:
            self._plain.move_to_end(index)
        start = at - self._starts[index]
        return block[start : start + length]

    def _seal(self) -> None:
        self._starts.append(self._open_start)
        self._sealed.append(compress(self._open))  # (LZMA: half of zlib's level 6, 1 ms a block)
        self._open_start += len(self._open)
        self._open = bytearray()
