"""What the engine's and the session's made-on-demand sequences share: an index read as a list reads it."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

__all__ = ["item_or_slice", "list_index"]

T = TypeVar("T")


def list_index(index: int, count: int, message: str | None = None) -> int:
    """`index` into `count` items as a list takes it (negative: from the end); IndexError past either end."""
    if index < 0:
        index += count
    if not 0 <= index < count:
        raise IndexError(index if message is None else message)
    return index


def item_or_slice(index: int | slice, count: int, item: Callable[[int], T], message: str | None = None) -> T | list[T]:
    """What `list[index]` gives of `count` items each made by `item(i)` when asked for: one, or a list of them."""
    if isinstance(index, slice):
        return [item(i) for i in range(*index.indices(count))]
    return item(list_index(index, count, message))
