"""The event log's entries as columns: a few bytes per line, not an object per line (issue 13).

A session holding 10,000 connections lists some 60,000 lines; an object per line (with its
strings, tuples and rendered line) cost about 500 bytes each. Here each entry is a row
across typed arrays (kind, time, process, duration, descriptors, call id, where its text is),
its text one run of UTF-8 in a shared store, compressed a block at a time (TextBlocks). The
text of an entry that may still change (a call running or pending) stays a str aside until
the entry is final; what a call read or wrote (for hex) is kept aside too, for the few
entries that have any.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar, overload

from playground.script.data import Data
from playground.sequences import item_or_slice
from playground.session.text_blocks import TextBlocks
from playground.session.time_column import TimeColumn

if TYPE_CHECKING:
    from playground.packet_log import AnyPacket

__all__ = ["KINDS", "KIND_CODE", "NONE", "WIDEST", "Entry", "EntryStore", "PacketEntry", "Rows"]

KINDS = (
    "running",
    "ok",
    "error",
    "pending",
    "returned",
    "signal",
    "death",
    "process",
    "directive",
    "notice",
    "fault",
    "diverged",
    "packet",
)
KIND_CODE = {kind: code for code, kind in enumerate(KINDS)}
NONE = -1  # no duration, descriptor or call id
T = TypeVar("T")
UNOWNED = frozenset(KIND_CODE[kind] for kind in ("notice", "fault", "directive"))  # the lab's: in every process's
UNOWNED_MASK = bytes(1 if code in UNOWNED else 0 for code in range(256))
WIDEST = 0xFFFF  # a line's cells as the widths column keeps them (a wider line counts as this wide)
_WIDER = {"B": "H", "H": "I", "I": "Q", "h": "i", "i": "q"}  # a column's next type when a value does not fit


@dataclass(slots=True)
class Entry:
    """One line of the event log, as added, or as read back (a copy: changing it changes nothing)."""

    kind: str
    t_ns: int
    process: str | None
    body: str
    fds: tuple[int, ...] = ()
    call_id: int | None = None
    duration_ns: int | None = None
    data: bytes | Data | None = None  # what a read got, or what a write sent (as its runs: not built)


@dataclass(slots=True)
class PacketEntry(Entry):
    """A captured packet in the event log (its text is made when shown: names come late)."""

    packet: AnyPacket | None = None


class EntryStore:
    """Every entry of the session, one row each across typed columns."""

    def __init__(self) -> None:
        # The narrowest type that holds what most sessions put there; a column is made wider (a
        # copy, once) when a value does not fit (`put`): 26 bytes an entry, where all 64-bit would take 80.
        self.kinds = array("B")
        self.times = TimeColumn()  # 4 bytes an entry while entries come within seconds of each other
        self.procs = array("B")  # index into `names` (0: no process)
        self.durations = array("i")  # ns: wider once a call takes over 2.1 s
        self.fds = array("h")  # two per entry (NONE where there is none); wider past descriptor 32,767
        self.call_ids = array("i")
        self.text_at = array("i")  # offset in `texts`; a packet line's: its index in the book's packets
        self.text_len = array("H")  # wider once a text is over 65,535 bytes
        self.widths = array("H")  # the rendered line's cells (at most WIDEST), 0 until measured
        self.texts = TextBlocks()
        self.names: list[str | None] = [None]
        self._name_codes: dict[str | None, int] = {None: 0}
        self.live: dict[int, str] = {}  # the text of entries that may still change
        self.data: dict[int, bytes | Data] = {}
        self.more_fds: dict[int, tuple[int, ...]] = {}  # entries with more than two descriptors

    def __len__(self) -> int:
        return len(self.kinds)

    def name_code(self, name: str | None) -> int:
        code = self._name_codes.get(name)
        if code is None:
            code = self._name_codes[name] = len(self.names)
            self.names.append(name)
        return code

    def code_of(self, name: str | None) -> int | None:
        """`name`'s code in `procs` (None: no entry has it)."""
        return self._name_codes.get(name)

    def put(self, column: str, index: int, value: int) -> None:
        """`column[index] = value`, the column made wider first if the value does not fit its type."""
        while True:
            try:
                getattr(self, column)[index] = value
                return
            except OverflowError:  # (a value past the next type too goes on to the one after)
                narrow = getattr(self, column)
                if narrow.typecode not in _WIDER:
                    raise
                setattr(self, column, array(_WIDER[narrow.typecode], narrow))

    def append(self, entry: Entry, live: bool = False) -> int:
        index = len(self.kinds)
        self.kinds.append(KIND_CODE[entry.kind])
        self.times.append(entry.t_ns)
        for column in (self.procs, self.durations, self.call_ids, self.text_at):
            column.append(0)
        self.put("procs", index, self.name_code(entry.process))
        self.put("durations", index, NONE if entry.duration_ns is None else entry.duration_ns)
        self.fds.extend((NONE, NONE))
        self.put("call_ids", index, NONE if entry.call_id is None else entry.call_id)
        self.text_at[index] = NONE
        self.text_len.append(0)
        self.widths.append(0)
        self.set_fds(index, entry.fds)
        if entry.data:
            self.data[index] = entry.data
        if live:
            self.live[index] = entry.body
        else:
            self.set_text(index, entry.body)
        return index

    def set_text(self, index: int, text: str) -> None:
        """The entry's text, final: appended to the shared store (an entry's text is final once)."""
        self.live.pop(index, None)
        if text:
            raw = text.encode()
            self.put("text_at", index, self.texts.add(raw))
            self.put("text_len", index, len(raw))

    def text(self, index: int) -> str:
        live = self.live.get(index)
        if live is not None:
            return live
        length = self.text_len[index]
        if not length:
            return ""
        at = self.text_at[index]
        return self.texts.get(at, length).decode()

    def set_fds(self, index: int, fds: tuple[int, ...]) -> None:
        self.more_fds.pop(index, None)
        if len(fds) > 2:
            self.more_fds[index] = fds
        first, second = (tuple(fds[:2]) + (NONE, NONE))[:2]
        self.put("fds", 2 * index, first)
        self.put("fds", 2 * index + 1, second)

    def fds_of(self, index: int) -> tuple[int, ...]:
        more = self.more_fds.get(index)
        if more is not None:
            return more
        first, second = self.fds[2 * index], self.fds[2 * index + 1]
        if first == NONE:
            return ()
        return (first,) if second == NONE else (first, second)

    def process(self, index: int) -> str | None:
        return self.names[self.procs[index]]

    def duration(self, index: int) -> int | None:
        duration = self.durations[index]
        return None if duration == NONE else duration

    def belongs(self, index: int, process: str, fd: int | None) -> bool:
        """Whether entry `index` is shown when the log shows only `process` (only its descriptor `fd`)."""
        name = self.names[self.procs[index]]
        if name is None:
            return self.kinds[index] in UNOWNED
        if name != process:
            return False
        return fd is None or self.fds[2 * index] == NONE or fd in self.fds_of(index)

    def belonging(self, process: str, fd: int | None) -> bytes:
        """`belongs` for every entry: one byte each, 1 where it is shown (the columns read in bulk)."""
        unowned = self.kinds.tobytes().translate(UNOWNED_MASK)
        keep = bytearray(b if p == 0 else 0 for b, p in zip(unowned, self.procs, strict=True))
        code = self.code_of(process)
        fds = self.fds
        for index in (i for i, p in enumerate(self.procs) if p == code):
            if fd is None or fds[2 * index] == NONE or fd in self.fds_of(index):
                keep[index] = 1
        return bytes(keep)

    def entry(self, index: int) -> Entry:
        call_id = self.call_ids[index]
        return Entry(
            KINDS[self.kinds[index]],
            self.times[index],
            self.process(index),
            self.text(index),
            self.fds_of(index),
            None if call_id == NONE else call_id,
            self.duration(index),
            self.data.get(index),
        )


class Rows(Sequence[T]):
    """A sequence whose items are made when asked for (`item(i)`), `length()` long."""

    __slots__ = ("_item", "_length")

    def __init__(self, length: Callable[[], int], item: Callable[[int], T]) -> None:
        self._length = length
        self._item = item

    def __len__(self) -> int:
        return self._length()

    @overload
    def __getitem__(self, index: int) -> T: ...
    @overload
    def __getitem__(self, index: slice) -> list[T]: ...
    def __getitem__(self, index: int | slice) -> T | list[T]:
        return item_or_slice(index, self._length(), self._item)

    def __iter__(self) -> Iterator[T]:
        item = self._item
        return (item(i) for i in range(self._length()))
