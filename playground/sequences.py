"""What the engine's and the session's made-on-demand sequences share: an index read as a list reads it."""

from __future__ import annotations

__all__ = ["list_index"]


def list_index(index: int, count: int, message: str | None = None) -> int:
    """`index` into `count` items as a list takes it (negative: from the end); IndexError past either end."""
    if index < 0:
        index += count
    if not 0 <= index < count:
        raise IndexError(index if message is None else message)
    return index
