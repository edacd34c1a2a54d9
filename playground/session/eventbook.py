"""The event log's content: one entry per call, signal, death or notice, rendered as one line each.

UI-free. The Event log widget asks it for the lines not yet written (batched on a timer),
for lines whose entry changed in place (a pending call that returned), and for the
whole filtered list when the filter or the view changes. The entries are kept as columns
(playground.session.entrystore) and a line is rendered only when asked for: the log draws
the lines on screen, and a search reads them all.
"""

from __future__ import annotations

import dataclasses
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import compress
from typing import TYPE_CHECKING

from playground import calls as P
from playground.calls import CALLS
from playground.events import (
    CallDone,
    CallObserved,
    CallPending,
    CallStarted,
    DirectiveDone,
    Event,
    Notice,
    ProcessEnded,
    ProcessReaped,
    ProcessStarted,
    SignalCaught,
)
from playground.script.data import Data
from playground.session.entrystore import KIND_CODE, KINDS, NONE, WIDEST, Entry, EntryStore, Rows
from playground.session.near_column import NearColumn
from playground.session.view import mask_ports

if TYPE_CHECKING:
    from playground.script.model import Node, Step

__all__ = ["Entry", "EventBook", "MARKS", "MARK_COLUMN", "find_next", "format_duration"]

# The mark column tells each kind of line apart even without colour.
MARKS = {
    "running": "·",
    "ok": "✓",
    "error": "✗",
    "pending": "…",
    "returned": "↳",
    "signal": "!",
    "death": "†",
    "process": "+",
    "directive": "›",
    "notice": "#",
    "fault": "✗",
    "diverged": "≠",
}
KIND_OF_MARK = {mark: kind for kind, mark in MARKS.items() if kind != "fault"}
TIME_WIDTH = 10
PROCESS_WIDTH = 9
MARK_COLUMN = TIME_WIDTH + 1 + PROCESS_WIDTH + 1
HEX_BYTES = 32
HOLD_LIMIT = 2000  # past this many unwritten entries, running calls are written anyway
LINE_CACHE = 512  # rendered lines kept (a few screens: the log asks only for those on screen)
TIME_FORMAT = f"{TIME_WIDTH}.3f"
NO_TIME = "--.---".rjust(TIME_WIDTH)  # deterministic mode: no times
MARK_OF = tuple(MARKS.get(kind, "?") for kind in KINDS)
RUNNING, PENDING, RETURNED = KIND_CODE["running"], KIND_CODE["pending"], KIND_CODE["returned"]


def format_duration(ns: int) -> str:
    if ns >= 1_000_000_000:
        return f"{ns / 1e9:.2f} s"
    if ns >= 1_000_000:
        return f"{ns / 1e6:.1f} ms"
    return f"{ns / 1e3:.0f} µs"


def _body(step: Step, outcome=None, pending: bool = False) -> str:
    """A step as script text without its actor (the process has its own column)."""
    from playground.script.format import format_node  # (the script's modules load after the first frame)

    bare = dataclasses.replace(step, delay=None, expect=None, blocks=False)
    text = format_node(bare, outcome, pending=pending)
    prefix = f"{step.actor}: "
    return text[len(prefix) :] if text.startswith(prefix) else text


def _fd_argument(step: Node, names: Mapping[str, int] | None) -> int | None:
    """The descriptor a step's call names first (None: none, or not a step)."""
    from playground.script.model import IntArg, NameArg, Step  # (loaded by then: the call was parsed)

    if not isinstance(step, Step):
        return None
    spec = CALLS.get(step.call.name)
    if spec is None or not spec.required or spec.required[0] != P.FD or not step.call.args:
        return None
    arg = step.call.args[0]
    if isinstance(arg, IntArg):
        return arg.value
    if isinstance(arg, NameArg) and names is not None:
        return names.get(arg.name)
    return None


class EventBook:
    """Every entry of the session (as columns), the filtered list that is shown, and what is still to be written.

    Entries are known by their index in `entries`; shown lines by their position in `shown`
    (the entries' indices, in the order written). A line is rendered when asked for (`lines`),
    a few hundred kept: the log draws only the lines on screen.
    """

    def __init__(self, t0: int, deterministic: bool = False) -> None:
        self.deterministic = deterministic
        self.store = EntryStore()
        self.entries: Sequence[Entry] = Rows(self.store.__len__, self.entry)
        self.shown = NearColumn()  # entry by shown line (kept as its distance from the line: near)
        self.lines: Sequence[str] = Rows(lambda: len(self.shown), self.line)
        self.unwritten: list[int] = []
        self.changed: set[int] = set()  # shown positions whose line must be rewritten
        self.by_call: dict[int, int] = {}  # a running or pending call's entry
        self.by_observed: dict[tuple[int, int], int] = {}  # an outside program's call shown pending
        self.filter: tuple[str, int | None] | None = None
        self.widest = 0  # the widest shown line's cells: grows as lines are written, exact after a relist
        self.revision = 0  # moves whenever the shown lines change (a search's matches are kept until then)
        self._shown_at = NearColumn()  # each entry's position among the shown lines (-1: not shown)
        self._cache: dict[int, str] = {}  # rendered lines, the newest LINE_CACHE
        self._padded: dict[tuple[int, str], str] = {}
        self._measure: Callable[[str], int] = len
        self._t0 = t0
        self._hex = False

    @property
    def t0(self) -> int:
        """The clock's start: times in the log are milliseconds since it."""
        return self._t0

    @t0.setter
    def t0(self, t0: int) -> None:
        if t0 != self._t0:
            self._t0 = t0
            self._forget_lines(range(len(self.store)))

    @property
    def hex(self) -> bool:
        """Whether lines show their data in hex too."""
        return self._hex

    @hex.setter
    def hex(self, on: bool) -> None:
        if on != self._hex:
            self._hex = on
            self._forget_lines(list(self.store.data))

    @property
    def measure(self) -> Callable[[str], int]:
        """How many cells a line takes (the log's own measure; `len` until a log sets it)."""
        return self._measure

    @measure.setter
    def measure(self, measure: Callable[[str], int]) -> None:
        self._measure = measure
        self._forget_lines(range(len(self.store)))

    def _forget_lines(self, indices: Iterable[int]) -> None:
        self._cache.clear()
        widths = self.store.widths
        if isinstance(indices, range) and len(indices) == len(widths):
            self.store.widths = array("H", bytes(2 * len(widths)))
            return
        for index in indices:
            widths[index] = 0

    def entry(self, index: int) -> Entry:
        """Entry `index`, read back (a copy)."""
        return self.store.entry(index)

    # Building entries.

    def add_entry(self, entry: Entry) -> int:
        """Add an entry (its fields are copied); returns its index in `entries`."""
        return self._append(entry, live=entry.kind in ("running", "pending"))

    def _append(self, entry: Entry, live: bool = False) -> int:
        index = self.store.append(entry, live)
        self._shown_at.append(-1)
        if self._matches(index):
            self.unwritten.append(index)
        return index

    def note(self, text: str, t_ns: int, kind: str = "notice", process: str | None = None) -> int:
        return self.add_entry(Entry(kind, t_ns, process, " ".join(text.split("\n"))))

    def add(self, event: Event, names: Mapping[str, int] | None = None) -> int | None:
        """Record an engine event (the index of its entry); `names` is the acting process's variables (its socket)."""
        if isinstance(event, CallStarted):
            node = event.node
            fd = _fd_argument(node, names)
            prefix = f"{event.process}: "
            body = event.text[len(prefix) :] if event.text.startswith(prefix) else event.text
            fds = (fd,) if fd is not None else ()
            index = self._append(Entry("running", event.t_ns, event.process, body, fds, event.call_id), live=True)
            self.by_call[event.call_id] = index
            return index
        if isinstance(event, CallPending):
            waiting = self.by_call.get(event.call_id)
            if waiting is not None and self.store.kinds[waiting] == RUNNING:
                self.store.kinds[waiting] = PENDING
                self._touch(waiting)
            return waiting
        if isinstance(event, CallDone):
            return self._done(event)
        if isinstance(event, SignalCaught):
            text = f"caught {', '.join(event.signals)} (between calls)"
            return self.add_entry(Entry("signal", event.t_ns, event.process, text))
        if isinstance(event, ProcessEnded):
            state = str(event.death) if event.death is not None else "ended"
            tail = " (a zombie until its parent reaps it)" if event.zombie else ""
            pid = "PID" if self.deterministic else str(event.pid)
            return self.add_entry(Entry("death", event.t_ns, event.process, f"{state}{tail}  [pid {pid}]"))
        if isinstance(event, ProcessStarted):
            pid = "PID" if self.deterministic else str(event.pid)
            how = f"forked from {event.parent}" if event.parent else "started"
            return self.add_entry(Entry("process", event.t_ns, event.process, f"{how} (pid {pid})"))
        if isinstance(event, ProcessReaped):
            by = f" by {event.by}" if event.by else ""
            return self.add_entry(Entry("process", event.t_ns, event.process, f"reaped{by}"))
        if isinstance(event, DirectiveDone):
            return self.add_entry(Entry("directive", event.t_ns, None, event.text))
        if isinstance(event, Notice):
            kind = "fault" if event.level == "error" else "notice"
            return self.note(event.message, event.t_ns, kind)
        if isinstance(event, CallObserved):
            return self._observed(event)
        return None

    def _observed(self, event: CallObserved) -> int:
        """An outside program's call, `#> ...` as the script writes it: pending, then completed in place."""
        if event.pending:
            kind = "pending"
        elif " ! SIG" in event.text or event.text.startswith("! "):
            kind = "signal"
        else:
            kind = "error" if " = -1 E" in event.text else "ok"
        body = f"#> {event.text.removesuffix(' ...')}" if event.pending else f"#> {event.text}"  # the log marks pending
        index = self.by_observed.pop(event.key, None)
        if index is None:
            entry = Entry(kind, event.start_ns, event.process, body, duration_ns=event.duration_ns)
            index = self._append(entry, live=event.pending)
        else:
            store = self.store
            store.kinds[index] = KIND_CODE[kind]
            store.put("durations", index, NONE if event.duration_ns is None else event.duration_ns)
            if event.pending:
                store.live[index] = body
            else:
                store.set_text(index, body)
        if event.pending:
            self.by_observed[event.key] = index
        self._touch(index)
        return index

    def _done(self, event: CallDone) -> int | None:
        from playground.outcomes import divergence
        from playground.script.format import format_outcome
        from playground.script.model import Step

        node = event.node
        if not isinstance(node, Step):
            return None
        store = self.store
        outcome = event.result.outcome
        index = self.by_call.pop(event.call_id, None)
        if index is not None and not node.blocks:
            sent = store.text(index).removesuffix(" ...")
            body = f"{sent} {format_outcome(outcome)}"  # the call as sent, then its outcome
        else:
            body = _body(node, outcome)
        if outcome.death is not None:
            kind = "death"
        elif outcome.signals:
            kind = "signal"
        elif outcome.errno is not None:
            kind = "error"
        else:
            kind = "ok"
        fds = store.fds_of(index) if index is not None else ()
        value = outcome.value
        if node.call.name in ("socket", "accept", "dup", "accept4") and isinstance(value, int) and value >= 0:
            fds = fds + (value,)
        started = event.result.start_ns
        duration = event.result.duration_ns if outcome.death is None else None
        data = outcome.data if outcome.data else _written_data(node)
        if index is None:
            entry = Entry(kind, started or event.t_ns, event.process, body, fds, event.call_id, duration, data)
            index = self._append(entry)
        else:
            if started:
                # The entry was made when the request was sent; the call began when the process
                # took it up (a process waking from a doze takes a millisecond or more). The packets
                # a call caused are stamped by the kernel: only the call's own start puts them inside it.
                store.times[index] = started
            store.kinds[index] = KIND_CODE[kind]
            store.set_text(index, body)
            store.set_fds(index, fds)
            store.put("durations", index, NONE if duration is None else duration)
            if data:
                store.data[index] = data
        self._touch(index)
        if event.was_pending:
            returned = started + event.result.duration_ns if started else event.t_ns
            waited = format_duration(returned - store.times[index])
            text = f"{body}   (returned after {waited})"
            self._append(Entry("returned", returned, event.process, text, fds, None, None, data))
        if node.expect is not None:
            why = divergence(node.call.name, node.expect, outcome)
            if why is not None:
                self._append(Entry("diverged", event.t_ns, event.process, f"{_body(node)} diverged: {why}", fds))
        return index

    def fail_call(self, call_id: int, message: str, t_ns: int) -> None:
        """A call the process could not make at all (the engine answered with an error)."""
        index = self.by_call.pop(call_id, None)
        if index is not None:
            store = self.store
            store.kinds[index] = KIND_CODE["fault"]
            store.set_text(index, f"{store.text(index)}   could not be made: {message}")
            self._touch(index)

    def _touch(self, index: int) -> None:
        """Entry `index` changed: its line is rendered and measured anew, and rewritten if shown."""
        self._cache.pop(index, None)
        self.store.widths[index] = 0
        shown = self._shown_at[index]
        if shown >= 0:
            self.changed.add(shown)

    # Rendering.

    def render(self, index: int) -> str:
        """Entry `index`'s line (kept among the newest LINE_CACHE until the entry or the way of showing it changes)."""
        cache = self._cache
        line = cache.get(index)
        if line is None:
            line = self.render_line(index)
            if len(cache) >= LINE_CACHE:
                del cache[next(iter(cache))]
            cache[index] = line
        return line

    def line(self, position: int) -> str:
        """The shown line at `position`."""
        return self.render(self.shown[position])

    def time_text(self, t_ns: int) -> str:
        """The time column: milliseconds since t0."""
        return NO_TIME if self.deterministic else format(((t_ns - self._t0) / 1e6), TIME_FORMAT)

    def process_text(self, index: int, default: str = "lab") -> str:
        """The process column of entry `index` (padded names kept: a search renders every line)."""
        code = self.store.procs[index]
        key = (code, default)
        text = self._padded.get(key)
        if text is None:
            name = self.store.names[code] or default
            text = self._padded[key] = name[:PROCESS_WIDTH].ljust(PROCESS_WIDTH)
        return text

    def render_line(self, index: int) -> str:
        store = self.store
        kind = store.kinds[index]
        time = self.time_text(store.times[index])
        process = self.process_text(index)
        body = store.text(index)
        if kind == PENDING:
            body += " ...   (pending)"
        elif kind == RUNNING:
            body += " ..."
        line = f"{time} {process} {MARK_OF[kind]} {body}"
        duration = store.durations[index]
        if duration != NONE and not self.deterministic and kind != RETURNED:
            line += f"   {format_duration(duration)}"
        data = store.data.get(index) if self.hex else None
        if data:
            head = data.head(HEX_BYTES) if isinstance(data, Data) else data[:HEX_BYTES]
            more = f" +{len(data) - HEX_BYTES} B" if len(data) > HEX_BYTES else ""
            line += f"   │ hex {head.hex(' ')}{more}"
        if self.deterministic:
            line = mask_ports(line)
        return line

    def _measured(self, index: int, line: str) -> None:
        cells = min(self._measure(line), WIDEST)
        self.store.widths[index] = cells
        if cells > self.widest:
            self.widest = cells

    def take_unwritten(self, hold_running: bool = True) -> list[str]:
        """Lines for the entries added since the last call; they are now shown.

        Entries from the first call still running on are held back (a call is reported
        pending or done within milliseconds), so most lines are written once, complete.
        """
        if not self.unwritten:
            return []
        count = len(self.unwritten)
        if hold_running and count < HOLD_LIMIT:
            kinds = self.store.kinds
            for i, index in enumerate(self.unwritten):
                if kinds[index] == RUNNING:
                    count = i
                    break
        if count == 0:
            return []
        taken, self.unwritten = self.unwritten[:count], self.unwritten[count:]
        position = len(self.shown)
        lines = []
        for index in taken:
            line = self.render(index)
            self._measured(index, line)
            self._shown_at[index] = position
            position += 1
            lines.append(line)
        self.shown.extend(taken)
        self.revision += 1
        return lines

    def take_changed(self) -> list[tuple[int, str]]:
        """(position, new line) for shown entries that changed in place."""
        if not self.changed:
            return []
        out = []
        for position in sorted(self.changed):
            if position < len(self.shown):
                index = self.shown[position]
                line = self.render(index)
                self._measured(index, line)
                out.append((position, line))
        self.changed.clear()
        self.revision += 1
        return out

    # Filtering and searching.

    def _matches(self, index: int) -> bool:
        return self.filter is None or self.store.belongs(index, *self.filter)

    def _mask(self) -> bytes | None:
        """One byte per entry, 1 where it is shown (None: every entry)."""
        return None if self.filter is None else self.store.belonging(*self.filter)

    def set_filter(self, process: str | None, fd: int | None = None) -> Sequence[str]:
        """Show only one process (or one of its sockets); returns every line to show."""
        self.filter = (process, fd) if process is not None else None
        return self.relist()

    def relist(self) -> Sequence[str]:
        """List the shown lines anew (every matching entry, in the order added); returns them (`lines`)."""
        count = len(self.store)
        mask = self._mask()
        if mask is None:
            self.shown, self._shown_at = NearColumn(range(count)), NearColumn(range(count))
        else:
            shown = NearColumn.of(array("I", compress(range(count), mask)))
            self.shown, self._shown_at = shown, NearColumn.positions(shown, count)
        self.unwritten = []
        self.changed.clear()
        self.revision += 1
        self.widest = self._widest()
        return self.lines

    def _widest(self) -> int:
        """The widest shown line; lines not measured yet (hidden when they came, or changed since) measured now."""
        widths, shown = self.store.widths, self.shown
        every = len(shown) == len(widths)
        cells = widths if every else array("H", map(widths.__getitem__, shown))
        if cells.count(0):
            measure, render = self._measure, self.render_line
            for index in shown:
                if not widths[index]:
                    widths[index] = min(measure(self._cache.get(index) or render(index)), WIDEST)
            cells = widths if every else array("H", map(widths.__getitem__, shown))
        return max(cells, default=0)

    @property
    def filter_label(self) -> str:
        if self.filter is None:
            return "all"
        process, fd = self.filter
        return process if fd is None else f"{process} fd {fd}"

    def matches(self, term: str, among: Iterable[int] | None = None) -> Sequence[int]:
        """The positions of the shown lines containing `term` (case-insensitive), in order (only `among` these)."""
        found = array("I")
        if not term:
            return found
        needle = term.lower()
        shown, cached, render = self.shown, self._cache.get, self.render_line
        positions = range(len(shown)) if among is None else among
        for position in positions:
            index = shown[position]
            if needle in (cached(index) or render(index)).lower():
                found.append(position)
        return found


def find_next(matches: Sequence[int], start: int, count: int, backwards: bool = True) -> int | None:
    """The match before `start` (or after it), wrapping around; `count` lines in all."""
    if not matches or not count:
        return None
    start = max(0, min(start, count - 1))
    if backwards:
        before = bisect_left(matches, start) - 1
        return matches[before] if before >= 0 else matches[-1]
    after = bisect_right(matches, start)
    return matches[after] if after < len(matches) else matches[0]


def _written_data(step: Step) -> Data | None:
    from playground.script.model import DataArg

    if step.call.name in ("write", "send", "sendto"):
        for arg in step.call.args:
            if isinstance(arg, DataArg):
                return arg.value
    if step.call.name == "writev":
        runs = [run for a in step.call.args if isinstance(a, DataArg) for run in a.value.runs]
        return Data(runs) if runs else None
    return None
