"""The event log's content: one entry per call, signal, death or notice, rendered as one line each.

UI-free. The Event log widget asks it for the lines not yet written (batched on a timer),
for lines whose entry changed in place (a pending call that returned), and for the
whole filtered list when the filter or the view changes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass

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
from playground.outcomes import divergence
from playground.script.data import Data
from playground.script.format import format_node, format_outcome
from playground.script.model import DataArg, IntArg, NameArg, Step
from playground.session.view import mask_ports

__all__ = ["Entry", "EventBook", "MARKS", "MARK_COLUMN", "format_duration"]

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


def format_duration(ns: int) -> str:
    if ns >= 1_000_000_000:
        return f"{ns / 1e9:.2f} s"
    if ns >= 1_000_000:
        return f"{ns / 1e6:.1f} ms"
    return f"{ns / 1e3:.0f} µs"


@dataclass(slots=True)
class Entry:
    """One line of the event log."""

    kind: str
    t_ns: int
    process: str | None
    body: str
    fds: tuple[int, ...] = ()
    call_id: int | None = None
    duration_ns: int | None = None
    data: bytes | Data | None = None  # what a read got, or what a write sent (as its runs: not built)
    shown: int = -1  # index among the lines written to the log, -1 if not written
    line: str | None = None  # its rendered line, until the entry or the book's way of showing it changes
    cells: int = -1  # that line's width in cells, once measured (widest); -1: not yet


def _body(step: Step, outcome=None, pending: bool = False) -> str:
    """A step as script text without its actor (the process has its own column)."""
    bare = dataclasses.replace(step, delay=None, expect=None, blocks=False)
    text = format_node(bare, outcome, pending=pending)
    prefix = f"{step.actor}: "
    return text[len(prefix) :] if text.startswith(prefix) else text


def _fd_argument(step: Step, names: dict[str, int] | None) -> int | None:
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
    """Every entry of the session, the filtered list that is shown, and what is still to be written."""

    def __init__(self, t0: int, deterministic: bool = False) -> None:
        self.deterministic = deterministic
        self.entries: list[Entry] = []
        self.shown: list[Entry] = []
        self.unwritten: list[Entry] = []
        self.changed: set[int] = set()  # shown indices whose line must be rewritten
        self.by_call: dict[int, Entry] = {}
        self.by_observed: dict[tuple[int, int], Entry] = {}  # an outside program's call shown pending
        self.filter: tuple[str, int | None] | None = None
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
            self._forget_lines()

    @property
    def hex(self) -> bool:
        """Whether lines show their data in hex too."""
        return self._hex

    @hex.setter
    def hex(self, on: bool) -> None:
        if on != self._hex:
            self._hex = on
            self._forget_lines()

    def _forget_lines(self) -> None:
        for entry in self.entries:
            entry.line = None

    # Building entries.

    def add_entry(self, entry: Entry) -> Entry:
        self.entries.append(entry)
        if self._matches(entry):
            self.unwritten.append(entry)
        return entry

    def note(self, text: str, t_ns: int, kind: str = "notice", process: str | None = None) -> Entry:
        return self.add_entry(Entry(kind, t_ns, process, " ".join(text.split("\n"))))

    def add(self, event: Event, names: dict[str, int] | None = None) -> Entry | None:
        """Record an engine event; `names` is the acting process's variables (to know the socket)."""
        if isinstance(event, CallStarted):
            node = event.node
            fd = _fd_argument(node, names) if isinstance(node, Step) else None
            prefix = f"{event.process}: "
            body = event.text[len(prefix) :] if event.text.startswith(prefix) else event.text
            entry = Entry("running", event.t_ns, event.process, body, (fd,) if fd is not None else (), event.call_id)
            self.by_call[event.call_id] = entry
            return self.add_entry(entry)
        if isinstance(event, CallPending):
            waiting = self.by_call.get(event.call_id)
            if waiting is not None and waiting.kind == "running":
                waiting.kind = "pending"
                self._touch(waiting)
            return waiting
        if isinstance(event, CallDone):
            return self._done(event)
        if isinstance(event, SignalCaught):
            return self.add_entry(
                Entry("signal", event.t_ns, event.process, f"caught {', '.join(event.signals)} (between calls)")
            )
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

    def _observed(self, event: CallObserved) -> Entry:
        """An outside program's call, `#> ...` as the script writes it: pending, then completed in place."""
        if event.pending:
            kind = "pending"
        elif " ! SIG" in event.text or event.text.startswith("! "):
            kind = "signal"
        else:
            kind = "error" if " = -1 E" in event.text else "ok"
        entry = self.by_observed.pop(event.key, None)
        if entry is None:
            entry = self.add_entry(Entry(kind, event.start_ns, event.process, ""))
        body = f"#> {event.text.removesuffix(' ...')}" if event.pending else f"#> {event.text}"  # the log marks pending
        entry.kind, entry.body, entry.duration_ns = kind, body, event.duration_ns
        if event.pending:
            self.by_observed[event.key] = entry
        self._touch(entry)
        return entry

    def _done(self, event: CallDone) -> Entry | None:
        node = event.node
        if not isinstance(node, Step):
            return None
        outcome = event.result.outcome
        entry = self.by_call.pop(event.call_id, None)
        if entry is not None and not node.blocks:
            body = f"{entry.body.removesuffix(' ...')} {format_outcome(outcome)}"  # the call as sent, then its outcome
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
        fds: tuple[int, ...] = entry.fds if entry is not None else ()
        value = outcome.value
        if node.call.name in ("socket", "accept", "dup", "accept4") and isinstance(value, int) and value >= 0:
            fds = fds + (value,)
        started = event.result.start_ns
        if entry is None:
            entry = self.add_entry(Entry(kind, started or event.t_ns, event.process, body, fds, event.call_id))
        elif started:
            # The entry was made when the request was sent; the call began when the process
            # took it up (a process waking from a doze takes a millisecond or more). The packets
            # a call caused are stamped by the kernel: only the call's own start puts them inside it.
            entry.t_ns = started
        entry.kind = kind
        entry.body = body
        entry.fds = fds
        entry.duration_ns = event.result.duration_ns if outcome.death is None else None
        entry.data = outcome.data if outcome.data else _written_data(node)
        self._touch(entry)
        if event.was_pending:
            returned = started + event.result.duration_ns if started else event.t_ns
            waited = format_duration(returned - entry.t_ns)
            self.add_entry(
                Entry(
                    "returned",
                    returned,
                    event.process,
                    f"{body}   (returned after {waited})",
                    fds,
                    None,
                    None,
                    entry.data,
                )
            )
        if node.expect is not None:
            why = divergence(node.call.name, node.expect, outcome)
            if why is not None:
                self.add_entry(Entry("diverged", event.t_ns, event.process, f"{_body(node)} diverged: {why}", fds))
        return entry

    def fail_call(self, call_id: int, message: str, t_ns: int) -> None:
        """A call the process could not make at all (the engine answered with an error)."""
        entry = self.by_call.pop(call_id, None)
        if entry is not None:
            entry.kind = "fault"
            entry.body = f"{entry.body}   could not be made: {message}"
            self._touch(entry)

    def _touch(self, entry: Entry) -> None:
        entry.line = None
        if entry.shown >= 0:
            self.changed.add(entry.shown)

    # Rendering.

    def render(self, entry: Entry) -> str:
        """The entry's line (rendered once, then kept until the entry changes: a relist reuses it)."""
        line = entry.line
        if line is None:
            line = entry.line = self.render_line(entry)
            entry.cells = -1
        return line

    def widest(self, measure: Callable[[str], int]) -> int:
        """The widest shown line in cells (`measure`: a line's cells); an entry's width is kept until its line changes.

        A relist of 60,000 lines measured each one again: 40 ms of a key press that switched the view.
        """
        best = 0
        for entry in self.shown:
            line = entry.line
            if line is None:
                line = self.render(entry)
            cells = entry.cells
            if cells < 0:
                cells = entry.cells = measure(line)
            if cells > best:
                best = cells
        return best

    def render_line(self, entry: Entry) -> str:
        if self.deterministic:
            time = "--.---".rjust(TIME_WIDTH)
        else:
            time = f"{(entry.t_ns - self.t0) / 1e6:{TIME_WIDTH}.3f}"
        process = (entry.process or "lab")[:PROCESS_WIDTH].ljust(PROCESS_WIDTH)
        body = entry.body
        if entry.kind == "pending":
            body += " ...   (pending)"
        elif entry.kind == "running":
            body += " ..."
        line = f"{time} {process} {MARKS[entry.kind]} {body}"
        if entry.duration_ns is not None and not self.deterministic and entry.kind not in ("returned",):
            line += f"   {format_duration(entry.duration_ns)}"
        if self.hex and entry.data:
            shown = entry.data.head(HEX_BYTES) if isinstance(entry.data, Data) else entry.data[:HEX_BYTES]
            more = f" +{len(entry.data) - HEX_BYTES} B" if len(entry.data) > HEX_BYTES else ""
            line += f"   │ hex {shown.hex(' ')}{more}"
        if self.deterministic:
            line = mask_ports(line)
        return line

    def take_unwritten(self, hold_running: bool = True) -> list[str]:
        """Lines for the entries added since the last call; they are now shown.

        Entries from the first call still running on are held back (a call is reported
        pending or done within milliseconds), so most lines are written once, complete.
        """
        if not self.unwritten:
            return []
        count = len(self.unwritten)
        if hold_running and count < HOLD_LIMIT:
            for i, entry in enumerate(self.unwritten):
                if entry.kind == "running":
                    count = i
                    break
        if count == 0:
            return []
        taken, self.unwritten = self.unwritten[:count], self.unwritten[count:]
        start = len(self.shown)
        lines = []
        for i, entry in enumerate(taken):
            entry.shown = start + i
            lines.append(self.render(entry))
        self.shown.extend(taken)
        return lines

    def take_changed(self) -> list[tuple[int, str]]:
        """(index, new line) for shown entries that changed in place."""
        if not self.changed:
            return []
        out = [(i, self.render(self.shown[i])) for i in sorted(self.changed) if i < len(self.shown)]
        self.changed.clear()
        return out

    # Filtering and searching.

    def _matches(self, entry: Entry) -> bool:
        if self.filter is None:
            return True
        process, fd = self.filter
        if entry.process is None:
            return entry.kind in ("notice", "fault", "directive")
        if entry.process != process:
            return False
        return fd is None or not entry.fds or fd in entry.fds

    def set_filter(self, process: str | None, fd: int | None = None) -> list[str]:
        """Show only one process (or one of its sockets); returns every line to show."""
        self.filter = (process, fd) if process is not None else None
        return self.relist()

    def relist(self) -> list[str]:
        for entry in self.shown:
            entry.shown = -1
        self.shown = [e for e in self.entries if self._matches(e)]
        self.unwritten = []
        self.changed.clear()
        lines = []
        for i, entry in enumerate(self.shown):
            entry.shown = i
            lines.append(self.render(entry))
        return lines

    @property
    def filter_label(self) -> str:
        if self.filter is None:
            return "all"
        process, fd = self.filter
        return process if fd is None else f"{process} fd {fd}"

    def search(self, lines: Iterable[str], term: str, start: int, backwards: bool = True) -> int | None:
        """Index of the next line containing `term` (case-insensitive), wrapping around."""
        seq = list(lines) if not isinstance(lines, list) else lines
        if not term or not seq:
            return None
        needle = term.lower()
        n = len(seq)
        start = max(0, min(start, n - 1))
        order = range(start - 1, start - 1 - n, -1) if backwards else range(start + 1, start + 1 + n)
        for j in order:
            i = j % n
            if needle in seq[i].lower():
                return i
        return None


def _written_data(step: Step) -> Data | None:
    if step.call.name in ("write", "send", "sendto"):
        for arg in step.call.args:
            if isinstance(arg, DataArg):
                return arg.value
    if step.call.name == "writev":
        runs = [run for a in step.call.args if isinstance(a, DataArg) for run in a.value.runs]
        return Data(runs) if runs else None
    return None
