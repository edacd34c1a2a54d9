"""How the lab and the session compress what they keep (the log's text, packets, call notes): LZMA, raw.

Blocks of a few to 64 KB, written once and read seldom. LZMA2 at its fastest preset, without
the .xz container, keeps them at 45-65% of what zlib's level 6 did (10,000 connections held,
issue 13: text 34 -> 16 bytes a connection, call notes 74 -> 46, packets 72 -> 58), at 0.2-1 ms
a block; reading one back takes 0.02-0.25 ms. lzma is imported with the first block (not before
the TUI's first frame); a Python built without it uses zlib.
"""

from __future__ import annotations

import zlib
from functools import cache
from typing import Any

__all__ = ["compress", "decompress"]


@cache
def _lzma() -> tuple[Any, dict] | None:
    """(lzma, its arguments), or None where this Python has no lzma."""
    try:
        import lzma
    except ImportError:  # pragma: no cover (CPython without liblzma)
        return None
    return lzma, {"format": lzma.FORMAT_RAW, "filters": [{"id": lzma.FILTER_LZMA2, "preset": 0}]}


def compress(data: bytes | bytearray) -> bytes:
    found = _lzma()
    if found is None:  # pragma: no cover
        return zlib.compress(data, 6)
    return found[0].compress(data, **found[1])


def decompress(data: bytes) -> bytes:
    found = _lzma()
    if found is None:  # pragma: no cover
        return zlib.decompress(data)
    return found[0].decompress(data, **found[1])
