"""What a session keeps of its calls for the ladders until one is asked for, compressed.

A session holding 10,000 connections made 30,000 calls: as CallNote objects (a text, a tuple
of names, two address tuples, numbers) they cost some 500 bytes each. The notes are written
once and read once (when the first ladder is asked for), so they are kept as marshalled tuples,
a block of them compressed at a time: a few dozen bytes a note, calls being much alike.
`NoteLog` holds the newest `maxlen` items, oldest first, as a deque of them would: CallNotes
(made again when read) and the few other events the ladders need (kept as they are).
"""

from __future__ import annotations

import dataclasses
import io
import marshal
from collections.abc import Iterator
from typing import TYPE_CHECKING

from playground.compression import compress, decompress

if TYPE_CHECKING:
    pass

BLOCK = 32_768  # bytes of marshalled notes compressed together (LZMA: 46 bytes a note of 117)
_EVENT = None  # in the stream, where an item kept as it is (in `events`) goes


class NoteLog:
    """CallNotes compressed in blocks; anything else (a process's start or end, an outside program's call) as it is."""

    def __init__(self, maxlen: int) -> None:
        self.maxlen = maxlen
        self._blocks: list[tuple[int, bytes]] = []  # (items, their marshalled tuples compressed)
        self._pending = bytearray()  # the items after the last block, marshalled
        self._pending_items = 0
        self._first = 0  # the serial number of the first item of the first block (or of the pending ones)
        self._skip = 0  # items at the start past the newest maxlen
        self._next = 0  # the next item's serial number
        self.events: dict[int, object] = {}  # serial number -> an item kept as it is

    def __len__(self) -> int:
        return self._next - self._first - self._skip

    def __bool__(self) -> bool:
        return len(self) > 0

    def append(self, item: object) -> None:
        from playground.ladder.model import CallNote

        record = None
        if type(item) is CallNote:
            try:
                record = marshal.dumps(tuple(getattr(item, name) for name in _fields()))
            except ValueError:  # something marshal does not write: kept as it is
                record = None
        if record is None:
            self.events[self._next] = item
            record = marshal.dumps(_EVENT)
        self._next += 1
        self._pending += record
        self._pending_items += 1
        if len(self._pending) >= BLOCK:
            self._blocks.append((self._pending_items, compress(self._pending)))
            self._pending, self._pending_items = bytearray(), 0
        if len(self) > self.maxlen:
            self._skip += 1
            if self._blocks and self._skip >= self._blocks[0][0]:
                count, _ = self._blocks.pop(0)
                for serial in range(self._first, self._first + count):
                    self.events.pop(serial, None)
                self._first += count
                self._skip -= count

    def __iter__(self) -> Iterator[object]:
        from playground.ladder.model import CallNote

        serial, skip = self._first, self._skip
        parts = [(count, decompress(data)) for count, data in self._blocks]
        parts.append((self._pending_items, bytes(self._pending)))
        for count, data in parts:
            stream = io.BytesIO(data)
            for _ in range(count):
                fields = marshal.load(stream)
                if skip:
                    skip -= 1
                elif fields is _EVENT:
                    yield self.events[serial]
                else:
                    yield CallNote(*fields)
                serial += 1

    def clear(self) -> None:
        self._blocks, self._pending, self._pending_items = [], bytearray(), 0
        self._first = self._next
        self._skip = 0
        self.events = {}


_FIELDS: list[str] = []


def _fields() -> list[str]:
    if not _FIELDS:
        from playground.ladder.model import CallNote

        _FIELDS.extend(field.name for field in dataclasses.fields(CallNote))
    return _FIELDS
