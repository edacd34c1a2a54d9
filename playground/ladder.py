"""The ladder diagram: one TCP connection as every textbook draws it.

Two columns, one per endpoint (`client.c`, `server.a`); an arrow per segment,
labelled with its flags, relative seq/ack and payload length; the calls that
caused them written beside their column at the time they were made; and each
side's TCP state between the arrows, inferred with RFC 793's state machine
from the segments that side sent and received, and corrected by the kernel's
own view (sock_diag samples) where one is given.

Plain data, no UI: `build_ladder` / `build_ladders` from captured packets and
the lab's CallDone events; `LadderSet` does the same incrementally (rows are
appended as packets and calls arrive; `Ladder.take_changes()` says from which
row a view must redraw); `LadderRecorder` attaches to a live lab;
`ladder_text` and `ladder_svg` draw a ladder.

Times are CLOCK_MONOTONIC nanoseconds, the event log's clock, shown as
milliseconds since the lab's t0.
"""

from __future__ import annotations

import asyncio
import html
import math
import re
import sys
import time
import unicodedata
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any, TextIO

from playground.capture import Packet
from playground.events import CallDone, DirectiveDone, PacketsSeen, ProcessEnded, ProcessStarted
from playground.output_files import OutputRefused, write_output
from playground.script.format import format_call, format_outcome, quote
from playground.script.model import IntArg, Kill, NameArg, Step

if TYPE_CHECKING:
    from playground.lab import Lab

__all__ = [
    "CallNote",
    "Column",
    "Connection",
    "Ladder",
    "LadderBuilder",
    "LadderRecorder",
    "LadderSet",
    "Row",
    "build_ladder",
    "build_ladders",
    "connections",
    "infer",
    "ladder_svg",
    "ladder_text",
    "samples_from_inspect",
    "samples_from_kernel",
    "segment_label",
]

CLOSED, LISTEN, SYN_SENT, SYN_RECV, ESTABLISHED = "CLOSED", "LISTEN", "SYN-SENT", "SYN-RECV", "ESTABLISHED"
FIN_WAIT_1, FIN_WAIT_2, CLOSING, TIME_WAIT = "FIN-WAIT-1", "FIN-WAIT-2", "CLOSING", "TIME-WAIT"
CLOSE_WAIT, LAST_ACK = "CLOSE-WAIT", "LAST-ACK"
STATES = (
    CLOSED,
    LISTEN,
    SYN_SENT,
    SYN_RECV,
    ESTABLISHED,
    FIN_WAIT_1,
    FIN_WAIT_2,
    CLOSING,
    TIME_WAIT,
    CLOSE_WAIT,
    LAST_ACK,
)

# A kernel sample taken this shortly after one of the connection's segments may have been read
# while the kernel was still processing it (the capture stamps a segment just before TCP sees it),
# and one taken just before a segment may show the state its sender entered to send it: such a
# sample is not trusted over the state machine.
SETTLE_NS = 300_000
LEAD_NS = 50_000
# A call that was reported pending, that waited for the peer while a segment from it came in, or that ran
# this long while any segment went by, is drawn twice: where it began (`read(a, 100) ...`) and where
# it returned (`... = 3 "bye"`), as the script language writes a blocked call.
BLOCKED_NS = 1_000_000
WAITING_CALLS = frozenset({"read", "recv", "recvfrom", "accept", "poll"})
MAX_SLACK_NS = 5_000_000
MAX_WAITING_SAMPLES = 4096
GONE_NS = 1_000_000_000
BIND_MARGIN_NS = 50_000_000
# A process's end is reported after the fact; segments its sockets sent this shortly before, with
# no call of that process in between, were sent because it ended.
DEATH_LOOKBACK_NS = 50_000_000

_SEQ_SPACE = 1 << 32


def _seq_ge(a: int, b: int) -> bool:
    """a is at or after b in sequence space (RFC 793's modular comparison)."""
    return (a - b) % _SEQ_SPACE < _SEQ_SPACE // 2


# The model.


@dataclass
class Column:
    """One end of a connection: its address and the lab's name for its socket (`client.c`)."""

    address: tuple[str, int]
    label: str | None = None

    @property
    def name(self) -> str:
        """`client.c`, or the address where the lab knows no socket there."""
        return self.label or _endpoint(self.address)

    @property
    def process(self) -> str | None:
        if self.label is None:
            return None
        return self.label.split(".", 1)[0].split(":", 1)[0]

    @property
    def address_text(self) -> str:
        return _endpoint(self.address)


@dataclass
class Row:
    """One line of the ladder, in time order, with both sides' states after it.

    kind: "segment" (an arrow from column `side` to the other one; `text` its label), "call" (a
    call written beside column `side`; a call that blocked has two, `read(a, 100) ...` where it
    began and `... = 3 "bye"` where it returned), "end" (a process holding column `side`'s socket
    ended: `kid exited 0`), "kernel" (the kernel's view set column `side`'s state to `text`).
    `process` is the process that made the call (a forked child's differs from the column's).
    """

    kind: str
    t_ns: int
    t_ms: float
    side: int
    text: str
    states: tuple[str, str]
    changed: tuple[bool, bool]
    process: str | None = None
    flags: tuple[str, ...] = ()
    seq: int = 0
    ack: int = 0
    length: int = 0
    window: int = 0
    preview: bytes = b""
    packet: Packet | None = field(default=None, repr=False, compare=False)

    @property
    def label(self) -> str:
        """A segment's arrow label with its data preview: `PSH|ACK seq 1 ack 1 len 3 "bye"`."""
        if self.kind != "segment" or not self.preview:
            return self.text
        return f"{self.text} {_preview(self.preview, self.length)}"


@dataclass
class Ladder:
    """One connection: two columns, the states before the first row, and the rows."""

    columns: list[Column]
    initial: tuple[str, str]
    rows: list[Row]
    t0_ns: int = 0
    changed_from: int | None = 0  # the first row (or 0 for the header) changed since take_changes()

    @property
    def title(self) -> str:
        return f"{self.columns[0].name} ⇄ {self.columns[1].name}"

    @property
    def states(self) -> tuple[str, str]:
        """Both sides' states after the last row."""
        return self.rows[-1].states if self.rows else self.initial

    @property
    def segments(self) -> list[Row]:
        return [row for row in self.rows if row.kind == "segment"]

    def history(self, side: int) -> list[str]:
        """The states column `side` went through, in order, without repeats."""
        out = [self.initial[side]]
        for row in self.rows:
            if row.states[side] != out[-1]:
                out.append(row.states[side])
        return out

    def take_changes(self) -> int | None:
        """The first row index to redraw since the last call (None: nothing changed)."""
        first, self.changed_from = self.changed_from, None
        return first

    def _touched(self, index: int) -> None:
        self.changed_from = index if self.changed_from is None else min(self.changed_from, index)


@dataclass(frozen=True)
class CallNote:
    """A call (or a process's end) as the ladder needs it; made from a CallDone by `from_event`.

    sockets: the variables the call acts on or defines (`close(c)`: c; `a = accept(l)`: a).
    local/peer: the socket's addresses where the call reported them (connect, accept), which
    is how a call is tied to the connection it made or took.
    """

    t_ns: int  # when the call began (in the process, CLOCK_MONOTONIC)
    process: str
    text: str  # `close(c) = 0`
    sockets: tuple[str, ...] = ()
    name: str = ""  # the call's name; "" for a process's end
    end_ns: int = 0
    blocked: bool = False  # the lab reported it pending
    defines: str | None = None
    local: tuple[str, int] | None = None
    peer: tuple[str, int] | None = None
    outcome: str = ""  # `= 0`, for the `... = 0` row of a blocked call

    @classmethod
    def from_event(cls, event: CallDone, lab: Lab | None = None) -> CallNote | None:
        """The note for a CallDone; with the lab, descriptors given by number are named too."""
        node = event.node
        if not isinstance(node, Step):
            return None
        call = node.call
        outcome = format_outcome(event.result.outcome)
        message = event.result.outcome.errno_message
        if message:
            outcome = outcome.replace(f" ({message})", "")
        text = format_call(call)
        if node.var:
            text = f"{node.var} = {text}"
        defines = node.var if call.name in ("socket", "accept", "dup") and node.var else None
        sockets: list[str] = []
        if defines:
            sockets.append(defines)
        if call.args and call.name not in ("socket", "accept", "signal", "fork", "waitpid", "exit"):
            first = call.args[0]
            if isinstance(first, NameArg):
                sockets.append(first.name)
            elif isinstance(first, IntArg) and lab is not None:
                proc = lab.processes.get(event.process)
                var = proc.var_for(first.value) if proc is not None else None
                if var is not None:
                    sockets.append(var)
        raw = event.result.raw or {}
        start = event.result.start_ns or event.t_ns
        duration = event.result.duration_ns or 0
        local = raw.get("local")
        peer = raw.get("peer")
        return cls(
            t_ns=start,
            process=event.process,
            text=f"{text} {outcome}",
            sockets=tuple(dict.fromkeys(sockets)),
            name=call.name,
            end_ns=start + duration,
            blocked=event.was_pending,
            defines=defines,
            local=(local[0], local[1]) if local and call.name in ("connect", "accept") else None,
            peer=(peer[0], peer[1]) if peer and call.name == "accept" else None,
            outcome=outcome,
        )


# Inference: RFC 793's state machine, driven by the segments each side sent and received.


@dataclass(frozen=True)
class _Machine:
    states: tuple[str, str]
    fin_acked_by: tuple[int | None, int | None] = (None, None)  # the ack that acknowledges each side's FIN

    def with_state(self, side: int, state: str) -> _Machine:
        states = list(self.states)
        states[side] = state
        return _Machine((states[0], states[1]), self.fin_acked_by)


def _advance(machine: _Machine, packet: Packet, sender: int) -> _Machine:
    """Both sides' states after `sender` sent this segment and the other side received it."""
    receiver = 1 - sender
    states = list(machine.states)
    fins = list(machine.fin_acked_by)
    flags = set(packet.flags)
    if "RST" in flags:
        # The sender has (or keeps) no connection; the receiver drops its own, unless it is a listener.
        states[sender] = CLOSED
        if states[receiver] != LISTEN:
            states[receiver] = CLOSED
        return _Machine((states[0], states[1]), (fins[0], fins[1]))
    syn, ack, fin = "SYN" in flags, "ACK" in flags, "FIN" in flags
    # What sending it did to the sender.
    if syn and not ack and states[sender] in (CLOSED, LISTEN):
        states[sender] = SYN_SENT
    elif syn and ack and states[sender] in (CLOSED, LISTEN):
        states[sender] = SYN_RECV
    if fin:
        fins[sender] = (packet.relative_seq + packet.length + (1 if syn else 0) + 1) % _SEQ_SPACE
        states[sender] = {ESTABLISHED: FIN_WAIT_1, SYN_RECV: FIN_WAIT_1, CLOSE_WAIT: LAST_ACK}.get(
            states[sender], states[sender]
        )
    # What receiving it did to the receiver: the SYN, then the ACK, then the FIN (RFC 793, 3.9).
    state = states[receiver]
    if syn and not ack:
        if state == LISTEN:
            state = SYN_RECV
        elif state == SYN_SENT:  # simultaneous open
            state = SYN_RECV
    if ack:
        acks_syn = _seq_ge(packet.relative_ack, 1)
        if state == SYN_SENT and syn and acks_syn:
            state = ESTABLISHED
        elif state == SYN_RECV and acks_syn:
            state = ESTABLISHED
        ours = fins[receiver]
        if ours is not None and _seq_ge(packet.relative_ack, ours):
            state = {FIN_WAIT_1: FIN_WAIT_2, CLOSING: TIME_WAIT, LAST_ACK: CLOSED}.get(state, state)
    if fin:
        state = {ESTABLISHED: CLOSE_WAIT, SYN_RECV: CLOSE_WAIT, FIN_WAIT_1: CLOSING, FIN_WAIT_2: TIME_WAIT}.get(
            state, state
        )
    states[receiver] = state
    return _Machine((states[0], states[1]), (fins[0], fins[1]))


def _initial(first: Packet | None, first_from_other: Packet | None) -> tuple[str, str]:
    """Both sides' states before the first segment (side 0 sent it)."""
    if first is None:
        return (CLOSED, CLOSED)
    if "SYN" in first.flags and "ACK" not in first.flags:
        other = LISTEN
        if first_from_other is not None:
            answered = set(first_from_other.flags)
            if "RST" in answered or ("SYN" in answered and "ACK" not in answered):
                other = CLOSED  # nothing listened (RST), or it was opening too (simultaneous open)
        return (CLOSED, other)
    return (ESTABLISHED, ESTABLISHED)  # the capture began in mid-connection


def infer(packets: Sequence[Packet]) -> list[tuple[str, str]]:
    """Both sides' states after each segment of one connection (side 0 sent the first one).

    The state machine alone, without calls or the kernel's view: for tests and quick looks.
    """
    if not packets:
        return []
    first = packets[0]
    other = next((p for p in packets if p.src != first.src), None)
    machine = _Machine(_initial(first, other))
    out = []
    for packet in packets:
        machine = _advance(machine, packet, 0 if packet.src == first.src else 1)
        out.append(machine.states)
    return out


def segment_label(flags: Sequence[str], seq: int, ack: int | None, length: int) -> str:
    """`FIN|ACK seq 4 ack 1 len 0`: ack only when the ACK flag is set, len except on a pure ACK or a SYN."""
    text = f"{'|'.join(flags) or '-'} seq {seq}"
    if ack is not None and "ACK" in flags:
        text += f" ack {ack}"
    if length or not (set(flags) <= {"ACK", "SYN"}):
        text += f" len {length}"
    return text


def _preview(data: bytes, total: int) -> str:
    text = quote(data[:24])
    return text + ("…" if total > 24 else "")


def _endpoint(address: tuple[str, int]) -> str:
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _normal_state(state: str) -> str:
    state = state.upper().replace("_", "-")
    return {"CLOSE": CLOSED, "NEW-SYN-RECV": SYN_RECV, "SYN-RECEIVED": SYN_RECV}.get(state, state)


# One connection, built incrementally.


@dataclass
class _Event:
    t_ns: int
    order: int  # breaks ties: a call before the segments it sent, a sample last
    serial: int
    kind: str  # "packet", "call", "return", "end", "sample"
    side: int
    packet: Packet | None = None
    note: CallNote | None = None
    state: str = ""
    slack: int = 0  # a sample: how long reading it took, either side of t_ns

    @property
    def key(self) -> tuple[int, int, int]:
        return (self.t_ns, self.order, self.serial)


class LadderBuilder:
    """One connection's ladder, kept up to date as its segments, calls and kernel samples arrive.

    Every `add_*` returns the first row index that changed (rows from there on were redrawn;
    in the usual case, something arriving last, that is the new row's own index).
    """

    def __init__(self, first: Packet, t0_ns: int = 0) -> None:
        self.ladder = Ladder(
            [Column(first.src, first.src_label), Column(first.dst, first.dst_label)], (CLOSED, CLOSED), [], t0_ns
        )
        self.packets: list[Packet] = []
        self.first_ns = first.t_ns
        self.syn_seq: dict[tuple[str, int], int] = {}  # the raw seq of each side's SYN
        self._first_from: list[Packet | None] = [None, None]
        self._events: list[_Event] = []
        self._keys: list[tuple[int, int, int]] = []
        self._before: list[_Machine] = []  # the machine before each event
        self._rows_before: list[int] = []  # rows before each event
        self._machine = _Machine((CLOSED, CLOSED))
        self._serial = 0
        self._packet_times: list[int] = []  # sorted, for the settle rule
        self._times_from: tuple[list[int], list[int]] = ([], [])  # sorted, each side's segments
        self._long_calls: list[_Event] = []  # calls that ran long enough to be drawn twice if they blocked
        self._ends: list[_Event] = []  # processes' ends, placed before the segments they made
        self._sample_keys: list[tuple[int, int, int]] = []  # sorted, for the settle rule
        self._sample_reach: dict[tuple[int, int, int], int] = {}  # a segment before this distrusts the sample

    # Inputs.

    def side_of(self, address: tuple[str, int]) -> int | None:
        for i, column in enumerate(self.ladder.columns):
            if column.address == address:
                return i
        return None

    def add_packet(self, packet: Packet) -> int:
        sender = 0 if packet.src == self.ladder.columns[0].address else 1
        self.packets.append(packet)
        self._refresh_label(sender, packet.src_label)
        self._refresh_label(1 - sender, packet.dst_label)
        if "SYN" in packet.flags and "ACK" not in packet.flags:
            self.syn_seq.setdefault(packet.src, packet.seq)
        restart = False
        if self._first_from[sender] is None:
            self._first_from[sender] = packet
            initial = _initial(self._first_from[0], self._first_from[1])
            if initial != self.ladder.initial:
                self.ladder.initial = initial
                restart = True
        event = self._event(packet.t_ns, 1, "packet", sender, packet=packet)
        redo = self._redo_for(packet.t_ns, event.key, sender)
        self._packet_times.insert(bisect_right(self._packet_times, packet.t_ns), packet.t_ns)
        times = self._times_from[sender]
        times.insert(bisect_right(times, packet.t_ns), packet.t_ns)
        changed = self._insert(event, redo)
        for end in list(self._ends):  # an end already drawn after the segment it made: move it before
            if end.side == sender and packet.t_ns < end.t_ns:
                assert end.note is not None
                t = self._end_time(end.note, sender)
                if t != end.t_ns:
                    changed = min(changed, self._remove(end))
                    moved = self._event(t, 0, "end", sender, note=end.note)
                    self._ends.append(moved)
                    changed = min(changed, self._insert(moved))
        if restart:
            self._apply_from(0)
            self.ladder._touched(0)
            return 0
        return changed

    def add_call(self, note: CallNote, side: int) -> int:
        """A call made on this side's socket: one row where it began; a call that blocked gets a
        second where it returned (see `_split`)."""
        if (
            note.blocked
            or note.end_ns - note.t_ns >= BLOCKED_NS
            or (note.name in WAITING_CALLS and note.end_ns > note.t_ns)
        ):
            event = self._event(note.t_ns, 0, "call", side, note=note)
            if not self._split(note, side):
                self._long_calls.append(event)  # drawn once, unless a segment turns up while it ran
            first = self._insert(event)
            return min(first, self._insert(self._event(note.end_ns, 2, "return", side, note=note)))
        return self._insert(self._event(note.t_ns, 0, "call", side, note=note))

    def add_end(self, note: CallNote, side: int) -> int:
        """A process ended: drawn before the segments its end made its sockets send (the lab learns of
        an end a little after them)."""
        event = self._event(self._end_time(note, side), 0, "end", side, note=note)
        self._ends.append(event)
        return self._insert(event)

    def _end_time(self, note: CallNote, side: int) -> int:
        # What the process sent during its last call was that call's doing, not its end's.
        limit = note.t_ns - DEATH_LOOKBACK_NS
        for event in reversed(self._events):
            if (
                event.kind in ("call", "return")
                and event.note is not None
                and event.note.process == note.process
                and event.t_ns <= note.t_ns
            ):
                limit = max(limit, event.note.end_ns or event.t_ns)
                break
        for event in self._events[bisect_right(self._keys, (limit, 9, 0)) :]:
            if event.t_ns > note.t_ns:
                break
            if event.kind == "packet" and event.side == side:
                return event.t_ns - 1
        return note.t_ns

    def add_sample(self, t_ns: int, side: int, state: str, slack: int = 0) -> int:
        """The kernel's state for this side at t_ns (read within slack ns either side of it)."""
        return self._insert(self._event(t_ns, 3, "sample", side, state=_normal_state(state), slack=slack))

    def refresh_labels(self) -> None:
        """Take the newest names the lab gave this connection's sockets (it names a handshake late)."""
        found = [False, False]
        for packet in reversed(self.packets):
            for address, label in ((packet.src, packet.src_label), (packet.dst, packet.dst_label)):
                side = self.side_of(address)
                if side is not None and not found[side] and label:
                    found[side] = True
                    self._refresh_label(side, label)
            if all(found):
                break

    # Internals.

    def _refresh_label(self, side: int, label: str | None) -> None:
        column = self.ladder.columns[side]
        if label and label != column.label:
            column.label = label
            self.ladder._touched(0)

    def _event(self, t_ns: int, order: int, kind: str, side: int, **kw: Any) -> _Event:
        self._serial += 1
        return _Event(t_ns, order, self._serial, kind, side, **kw)

    def _redo_for(self, t_ns: int, key: tuple[int, int, int], sender: int) -> tuple[int, int, int] | None:
        """The earliest event whose row a segment at t_ns changes, besides its own and those after it:
        a kernel sample read just before it (no longer trusted), a call it arrived during (now
        drawn where it began and where it returned)."""
        earliest = None
        i = bisect_right(self._sample_keys, (t_ns - MAX_SLACK_NS - LEAD_NS, -1, -1))
        while i < len(self._sample_keys) and self._sample_keys[i] < key:
            if self._sample_reach[self._sample_keys[i]] > t_ns:
                earliest = self._sample_keys[i]
                break
            i += 1
        for call in list(self._long_calls):
            note = call.note
            assert note is not None
            if note.t_ns < t_ns < note.end_ns and (note.end_ns - note.t_ns >= BLOCKED_NS or sender != call.side):
                self._long_calls.remove(call)  # split from now on, whatever else arrives
                earliest = call.key if earliest is None else min(earliest, call.key)
        return earliest

    def _insert(self, event: _Event, redo: tuple[int, int, int] | None = None) -> int:
        index = bisect_right(self._keys, event.key)
        if index == len(self._events):
            self._before.append(self._machine)
            self._rows_before.append(len(self.ladder.rows))
        else:  # what came before the event that was here comes before this one now
            self._before.insert(index, self._before[index])
            self._rows_before.insert(index, self._rows_before[index])
        self._events.insert(index, event)
        self._keys.insert(index, event.key)
        start = index
        if event.kind == "sample":
            self._sample_keys.insert(bisect_right(self._sample_keys, event.key), event.key)
            self._sample_reach[event.key] = event.t_ns + event.slack + LEAD_NS
        if redo is not None:
            start = min(start, bisect_right(self._keys, redo) - 1)
        first = self._rows_before[start]
        self._apply_from(start)
        self.ladder._touched(first)
        return first

    def _remove(self, event: _Event) -> int:
        """Take an event out (an end being moved); returns the first row that changed."""
        self._ends.remove(event)
        index = bisect_right(self._keys, event.key) - 1
        machine, rows_before = self._before[index], self._rows_before[index]
        for lst in (self._events, self._keys, self._before, self._rows_before):
            del lst[index]
        if index < len(self._events):
            self._before[index], self._rows_before[index] = machine, rows_before
            self._apply_from(index)
        else:
            del self.ladder.rows[rows_before:]
            self._machine = machine
        self.ladder._touched(rows_before)
        return rows_before

    def _apply_from(self, start: int) -> None:
        """Recompute the rows from event `start` on (just that one when it came last)."""
        rows = self.ladder.rows
        if start < len(self._events):
            del rows[self._rows_before[start] :]
        machine = _Machine(self.ladder.initial) if start == 0 else self._before[start]
        for j in range(start, len(self._events)):
            self._before[j] = machine
            self._rows_before[j] = len(rows)
            machine, row = self._apply(machine, self._events[j])
            if row is not None:
                rows.append(row)
        self._machine = machine

    def _split(self, note: CallNote, side: int) -> bool:
        """Whether a call is drawn where it began and again where it returned: the lab reported it
        pending; or it waited for the peer (read, recv, accept, poll) and a segment from the peer
        came in while it ran; or it ran for a millisecond or more and any segment went by."""
        if not note.outcome:
            return False
        if note.blocked:
            return True
        if note.end_ns - note.t_ns >= BLOCKED_NS:
            times = self._packet_times
        elif note.name in WAITING_CALLS:
            times = self._times_from[1 - side]
        else:
            return False
        i = bisect_right(times, note.t_ns)
        return i < len(times) and times[i] < note.end_ns

    def _near_packet(self, t_ns: int, slack: int = 0) -> bool:
        """A segment went by while (or just before) a sample read within slack of t_ns was taken."""
        i = bisect_right(self._packet_times, t_ns - slack - SETTLE_NS)
        return i < len(self._packet_times) and self._packet_times[i] < t_ns + slack + LEAD_NS

    def _apply(self, machine: _Machine, event: _Event) -> tuple[_Machine, Row | None]:
        before = machine.states
        t_ms = (event.t_ns - self.ladder.t0_ns) / 1e6
        if event.kind == "packet":
            packet = event.packet
            assert packet is not None
            machine = _advance(machine, packet, event.side)
            row = Row(
                "segment",
                event.t_ns,
                t_ms,
                event.side,
                segment_label(packet.flags, packet.relative_seq, packet.relative_ack, packet.length),
                machine.states,
                _changed(before, machine.states),
                None,
                tuple(packet.flags),
                packet.relative_seq,
                packet.relative_ack,
                packet.length,
                packet.window,
                packet.preview,
                packet,
            )
            return machine, row
        if event.kind == "sample":
            if event.state == machine.states[event.side] or self._near_packet(event.t_ns, event.slack):
                return machine, None
            machine = machine.with_state(event.side, event.state)
            return machine, Row(
                "kernel", event.t_ns, t_ms, event.side, event.state, machine.states, _changed(before, machine.states)
            )
        note = event.note
        assert note is not None
        if event.kind == "call":
            text = f"{note.text.removesuffix(' ' + note.outcome)} ..." if self._split(note, event.side) else note.text
        elif event.kind == "return":
            if not self._split(note, event.side):
                return machine, None
            text = f"... {note.outcome}"
        else:
            text = note.text
        return machine, Row(
            "call" if event.kind != "end" else "end",
            event.t_ns,
            t_ms,
            event.side,
            text,
            machine.states,
            (False, False),
            note.process,
        )


def _changed(before: tuple[str, str], after: tuple[str, str]) -> tuple[bool, bool]:
    return (before[0] != after[0], before[1] != after[1])


# Many connections: grouping segments by connection, and calls by the socket they were made on.


@dataclass
class _Slot:
    """One life of a socket variable (from the call that defined it to its close), on its connection."""

    since: int
    ladder: int | None = None
    side: int = 0
    local: tuple[str, int] | None = None
    peer: tuple[str, int] | None = None
    during: tuple[int, int, str] | None = None  # a failed connect: when it ran, and the socket's name
    waiting: list[CallNote] = field(default_factory=list)


@dataclass
class _Life:
    slot: _Slot
    open: bool = True


@dataclass
class Connection:
    """One TCP connection's segments, by 4-tuple (a new SYN on the same 4-tuple starts a new one)."""

    columns: list[Column]
    packets: list[Packet]
    start_ns: int
    until_ns: int | None = None  # when a newer connection took the same 4-tuple

    @property
    def labels(self) -> tuple[str, str]:
        return (self.columns[0].name, self.columns[1].name)


class LadderSet:
    """Every connection of a session, each with its ladder, kept up to date incrementally.

    Feed it packets (in capture order), calls, process starts and ends, and kernel samples, in
    any interleaving; `ladders` grows as connections appear. Calls are tied to a connection
    by the socket variable they name: the life of `client.c` that connected from the
    connection's client address, or of `server.a` that accepted it (and the same variable
    in processes forked from that one while it was open).
    """

    def __init__(self, t0_ns: int = 0) -> None:
        self.t0_ns = t0_ns
        self.builders: list[LadderBuilder] = []
        self._by_key: dict[tuple, int] = {}
        self._lives: dict[tuple[str, str], _Life] = {}
        self._unbound: list[_Slot] = []
        self._samples_waiting: list[tuple[int, Any, str, int]] = []

    @property
    def ladders(self) -> list[Ladder]:
        return [b.ladder for b in self.builders]

    def connections(self) -> list[Connection]:
        out = []
        for builder in self.builders:
            builder.refresh_labels()
            out.append(Connection(builder.ladder.columns, builder.packets, builder.first_ns))
        by_key: dict[tuple, Connection] = {}
        for conn in out:
            key = _key(conn.columns[0].address, conn.columns[1].address)
            if key in by_key:
                by_key[key].until_ns = conn.start_ns
            by_key[key] = conn
        return out

    def add_packets(self, packets: Iterable[Packet]) -> None:
        for packet in packets:
            self.add_packet(packet)

    def add_packet(self, packet: Packet) -> int | None:
        """Route a segment to its connection's ladder; returns that ladder's index (None: not TCP)."""
        if packet.protocol != "TCP":
            return None
        key = _key(packet.src, packet.dst)
        index = self._by_key.get(key)
        if index is None or self._starts_anew(self.builders[index], packet):
            index = len(self.builders)
            self.builders.append(LadderBuilder(packet, self.t0_ns))
            self._by_key[key] = index
            self.builders[index].add_packet(packet)
            self._bind_waiting()
            if self._samples_waiting:
                waiting, self._samples_waiting = self._samples_waiting, []
                for sample in waiting:
                    self.add_sample(*sample)
            return index
        self.builders[index].add_packet(packet)
        return index

    def add_call(self, note: CallNote) -> None:
        if not note.name:
            self.process_ended(note)
            return
        delivered: list[_Slot] = []
        for var in note.sockets:
            where = (note.process, var)
            if note.defines == var or where not in self._lives:
                source = self._lives.get((note.process, note.sockets[-1])) if note.name == "dup" else None
                # `b = dup(a)`: b names a's socket, on a's connection
                self._lives[where] = _Life(source.slot if source is not None and source.open else _Slot(note.t_ns))
            life = self._lives[where]
            if not life.open:
                continue  # a call on a closed descriptor (EBADF): not about the connection
            slot = life.slot
            if slot.ladder is None and slot.local is None and slot.during is None:
                if note.local is not None:
                    slot.local, slot.peer = note.local, note.peer
                    self._unbound.append(slot)
                elif note.name == "connect":  # failed (refused): no address, but its SYN left during the call
                    slot.during = (note.t_ns, max(note.end_ns, note.t_ns), f"{note.process}.{var}")
                    self._unbound.append(slot)
            if not any(slot is other for other in delivered):
                self._deliver(slot, note)
                delivered.append(slot)
            if note.name == "close":
                life.open = False
        self._bind_waiting()

    def add_process(self, name: str, parent: str | None) -> None:
        """A process forked from `parent`: its copies of the parent's open sockets belong to the same connections."""
        if parent is None:
            return
        for (process, var), life in list(self._lives.items()):
            if process == parent and life.open:
                self._lives[(name, var)] = _Life(life.slot)

    def process_ended(self, note: CallNote) -> None:
        """The process `note.process` ended (note.text: `client killed SIGKILL`): its open sockets closed."""
        for (process, _var), life in self._lives.items():
            if process == note.process and life.open:
                life.open = False
                self._deliver(life.slot, note)

    def add_sample(self, t_ns: int, side: Any, state: str, slack: int = 0) -> None:
        """The kernel's state for one socket: side is (local, peer), a local address, or a label.

        A sample for a connection whose segments have not come in yet (the capture hands them
        over a little late) waits for them.
        """
        if not self._route_sample(t_ns, side, state, slack):
            self._samples_waiting.append((t_ns, side, state, slack))
            del self._samples_waiting[:-MAX_WAITING_SAMPLES]

    def _route_sample(self, t_ns: int, side: Any, state: str, slack: int) -> bool:
        for builder in reversed(self.builders):
            if builder.first_ns > t_ns + SETTLE_NS + slack:
                continue
            index = self._sample_side(builder, side)
            if index is not None:
                builder.add_sample(t_ns, index, state, min(slack, MAX_SLACK_NS))
                return True
        return False

    # Internals.

    @staticmethod
    def _sample_side(builder: LadderBuilder, side: Any) -> int | None:
        columns = builder.ladder.columns
        if isinstance(side, str):
            return next((i for i, c in enumerate(columns) if c.label == side), None)
        if isinstance(side, tuple) and len(side) == 2 and isinstance(side[0], tuple):
            local, peer = (tuple(side[0]), tuple(side[1]))
            i = builder.side_of(local)  # type: ignore[arg-type]
            if i is not None and columns[1 - i].address == peer:
                return i
            return None
        if isinstance(side, tuple):
            return builder.side_of(side)  # type: ignore[arg-type]
        return None

    def _starts_anew(self, builder: LadderBuilder, packet: Packet) -> bool:
        """A SYN (without ACK) from an end that already opened this connection with another ISN."""
        if "SYN" not in packet.flags or "ACK" in packet.flags:
            return False
        seen = builder.syn_seq.get(packet.src)
        return seen is not None and seen != packet.seq

    def _deliver(self, slot: _Slot, note: CallNote) -> None:
        if slot.ladder is None:
            slot.waiting.append(note)
            return
        builder = self.builders[slot.ladder]
        if note.name:
            builder.add_call(note, slot.side)
        else:
            builder.add_end(note, slot.side)

    def _bind_waiting(self) -> None:
        """Tie sockets that connected or accepted to their connection, once its segments are seen."""
        still = []
        for slot in self._unbound:
            found = None
            for index in range(len(self.builders) - 1, -1, -1):
                builder = self.builders[index]
                if slot.peer is None and builder.first_ns < slot.since - BIND_MARGIN_NS:
                    break  # a connect: its connection began after the socket was made (builders come in time order)
                if slot.during is not None:
                    start, end, label = slot.during
                    first = builder.packets[0] if builder.packets else None
                    if (
                        first is not None
                        and start <= first.t_ns <= end
                        and first.flags == ("SYN",)
                        and builder.ladder.columns[0].label in (None, label)
                    ):
                        builder.ladder.columns[0].label = label
                        builder.ladder._touched(0)
                        found = (index, 0)
                        break
                    continue
                side = builder.side_of(slot.local)  # type: ignore[arg-type]
                if side is None:
                    continue
                if slot.peer is not None and builder.ladder.columns[1 - side].address != slot.peer:
                    continue
                if slot.peer is None and builder.first_ns < slot.since:
                    continue  # connect: the connection this socket opened, not an older one from the same port
                found = (index, side)
                break
            if found is None:
                still.append(slot)
                continue
            slot.ladder, slot.side = found
            waiting, slot.waiting = slot.waiting, []
            for note in waiting:
                self._deliver(slot, note)
        self._unbound = still


def _key(a: tuple[str, int], b: tuple[str, int]) -> tuple:
    return (a, b) if a <= b else (b, a)


def _feed(
    packets: Iterable[Packet],
    calls: Iterable[Any] = (),
    t0_ns: int | None = None,
    samples: Iterable[tuple[int, Any, str]] = (),
) -> LadderSet:
    packets = [p for p in packets if p.protocol == "TCP"]
    # Calls, forks and ends, in the order the lab learnt of them.
    happenings: list[tuple[int, CallNote | ProcessStarted]] = []
    for item in calls:
        if isinstance(item, CallDone):
            note = CallNote.from_event(item)
            if note is not None:
                happenings.append((note.end_ns or note.t_ns, note))
        elif isinstance(item, CallNote):
            happenings.append((item.end_ns or item.t_ns, item))
        elif isinstance(item, ProcessEnded):
            happenings.append((item.t_ns, CallNote(item.t_ns, item.process, f"{item.process} {item.death or 'ended'}")))
        elif isinstance(item, ProcessStarted):
            happenings.append((item.t_ns, item))
    happenings.sort(key=lambda h: h[0])
    if t0_ns is None:
        times = [p.t_ns for p in packets] + [h.t_ns for _t, h in happenings]
        t0_ns = min(times) if times else 0
    ladders = LadderSet(t0_ns)
    ladders.add_packets(sorted(packets, key=lambda p: p.t_ns))
    for _t, happening in happenings:
        if isinstance(happening, ProcessStarted):
            ladders.add_process(happening.process, happening.parent)
        else:
            ladders.add_call(happening)
    for t_ns, side, state in samples:
        ladders.add_sample(t_ns, side, state)
    for builder in ladders.builders:
        builder.refresh_labels()
    return ladders


def connections(packets: Iterable[Packet]) -> list[Connection]:
    """The TCP connections among these packets (e.g. `lab.packets`), oldest first, with their sockets' names."""
    return _feed(packets).connections()


def build_ladders(
    packets: Iterable[Packet],
    calls: Iterable[Any] = (),
    t0_ns: int | None = None,
    samples: Iterable[tuple[int, Any, str]] = (),
) -> list[Ladder]:
    """A ladder for every TCP connection among the packets, oldest first.

    calls: the lab's events (CallDone; also ProcessStarted and ProcessEnded, for forks and ends)
    or CallNotes; samples: the kernel's view as (t_ns, side, state), side being (local, peer),
    a local address or a label (see `samples_from_kernel`). t0_ns: the lab's t0 (row times are
    ms since then); by default the earliest time given.
    """
    return _feed(packets, calls, t0_ns, samples).ladders


def build_ladder(
    packets: Connection | Iterable[Packet],
    calls: Iterable[Any] = (),
    t0_ns: int | None = None,
    samples: Iterable[tuple[int, Any, str]] = (),
) -> Ladder:
    """The ladder of one connection: a Connection, or packets (the first TCP connection among them)."""
    if isinstance(packets, Connection):
        conn = packets
        samples = [s for s in samples if conn.until_ns is None or s[0] < conn.until_ns]
        packets = conn.packets
    ladders = build_ladders(packets, calls, t0_ns, samples)
    if not ladders:
        raise ValueError("no TCP segment among the packets")
    return ladders[0]


def samples_from_kernel(kernel_sockets: Iterable[Any], t_ns: int) -> list[tuple[int, Any, str]]:
    """Samples from `lab.kernel_sockets()` (or a list of KernelSocket) taken at t_ns."""
    out = []
    for item in kernel_sockets:
        sock = item[-1] if isinstance(item, tuple) else item
        if sock.peer[1] == 0:
            continue  # a listener or an unconnected socket: no connection's end
        out.append((t_ns, (tuple(sock.local), tuple(sock.peer)), sock.state))
    return out


def samples_from_inspect(snapshot: dict[str, list[dict]], t_ns: int) -> list[tuple[int, Any, str]]:
    """Samples from `await lab.inspect()` taken at t_ns (each connected TCP socket's state)."""
    from playground.constants import TCP_STATES

    out = []
    for sockets in snapshot.values():
        for sock in sockets:
            local, peer, state = sock.get("local"), sock.get("peer"), sock.get("state")
            if not local or not peer or state is None:
                continue
            if isinstance(state, int):
                state = TCP_STATES.get(state, str(state))
            out.append((t_ns, ((local[0], local[1]), (peer[0], peer[1])), str(state)))
    return out


# Following a live lab.


# Calls after which the kernel's view is read: those that can change a state with nothing on the
# wire yet (a FIN queued behind data), and failures (a connection the kernel gave up on). A read
# costs about a millisecond, too much to pay after every call.
SAMPLE_AFTER = frozenset({"close", "shutdown", "connect"})


class LadderRecorder:
    """Follows a lab's events (attach it before the run) and keeps every connection's ladder.

    With `kernel`, the kernel's view (sock_diag) is read after the calls in SAMPLE_AFTER, after
    a call that failed, when a process ends and before saving (and whenever `sample()` is
    called), and reconciled with the state machine: where they disagree, the kernel wins.
    """

    def __init__(self, lab: Lab, kernel: bool = True) -> None:
        self.lab = lab
        self.kernel = kernel
        self.set = LadderSet(lab.t0)
        self._last_packet = time.monotonic()
        self._arrived = asyncio.Event()
        self._kills: dict[str, int] = {}
        self._present: dict[tuple, str] = {}
        self._gone: dict[tuple, int] = {}
        self.set.add_packets(list(lab.packets))
        self._unsubscribe = lab.subscribe(self._on_event)

    @property
    def ladders(self) -> list[Ladder]:
        for builder in self.set.builders:
            builder.refresh_labels()
        return self.set.ladders

    def close(self) -> None:
        self._unsubscribe()

    def _on_event(self, event: object) -> None:
        if isinstance(event, PacketsSeen):
            self.set.add_packets(event.packets)
            self._last_packet = time.monotonic()
            self._arrived.set()
        elif isinstance(event, CallDone):
            note = CallNote.from_event(event, self.lab)
            if note is not None:
                self.set.add_call(note)
            if self.kernel and note is not None and (note.name in SAMPLE_AFTER or " = -1 " in note.text):
                self.sample()
        elif isinstance(event, ProcessStarted):
            self.set.add_process(event.process, event.parent)
        elif isinstance(event, DirectiveDone) and isinstance(event.node, Kill):
            self._kills[event.node.name] = event.t_ns
        elif isinstance(event, ProcessEnded):
            t = self._kills.pop(event.process, event.t_ns)
            self.set.process_ended(CallNote(t, event.process, f"{event.process} {event.death or 'ended'}"))
            if self.kernel:
                self.sample()

    def sample(self) -> None:
        """Read the kernel's TCP sockets now and reconcile every ladder with them."""
        before = time.monotonic_ns()
        sockets = self.lab.kernel_sockets()
        after = time.monotonic_ns()
        t, slack = (before + after) // 2, (after - before) // 2
        found = samples_from_kernel(sockets, t)
        present = {side: state for _t, side, state in found}
        for side, state in present.items():
            self.set.add_sample(t, side, state, slack)  # one that agrees with the state machine draws nothing
        for side in self._present.keys() - present.keys():
            self._gone[side] = t
        for side, when in list(self._gone.items()):
            if side in present or t - when > GONE_NS:
                del self._gone[side]
            else:  # gone from the kernel's list: no socket any more (said again for a while, in case
                self.set.add_sample(t, side, CLOSED, slack)  # the first was too close to a segment)
        self._present = present

    async def settle(self, quiet: float = 0.15, limit: float = 1.0) -> None:
        """Wait (at most `limit` seconds) until no packet has arrived for `quiet` seconds.

        The capture thread hands packets over in batches, a little after they were sent: the
        wait is at least `quiet`, even if nothing has arrived lately.
        """
        if self.lab.capture is None:
            return
        start = time.monotonic()
        deadline = start + limit
        while True:
            remaining = min(deadline, max(start, self._last_packet) + quiet) - time.monotonic()
            if remaining <= 0:
                return
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except TimeoutError:
                pass

    async def until(self, predicate: Any, timeout: float = 5.0) -> bool:
        """Wait (at most `timeout` seconds) until predicate(ladders) holds, re-checking as packets arrive."""
        deadline = time.monotonic() + timeout
        while True:
            if predicate(self.ladders):
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), min(remaining, 0.05))
            except TimeoutError:
                pass

    async def save(self, path: str, warn: TextIO | None = None) -> int | None:
        """Write every connection's ladder, stacked, to an SVG file; returns how many were drawn.

        Without packet capture nothing is written, and `warn` (standard error by default) says why;
        None if the file could not be written (said on `warn` too).
        """
        warn = warn if warn is not None else sys.stderr
        if self.lab.capture is None:
            print(f"sockplay: no ladder written: {self.lab.capture_reason or 'no packet capture'}", file=warn)
            return 0
        await self.settle()
        if self.kernel:
            self.sample()
        ladders = self.ladders
        try:
            write_output(path, ladder_svg(ladders))
        except OutputRefused as exc:
            print(f"sockplay: no ladder written: {exc}", file=warn)
            return None
        except OSError as exc:
            print(f"sockplay: cannot write the ladder to {path}: {exc.strerror or exc}", file=warn)
            return None
        return len(ladders)


# Drawing: monospace text.


# Where East Asian wide characters may be (box drawing and the arrows' triangles are not among them).
_MAYBE_WIDE = re.compile(
    "[\u1100-\u115f\u231a-\u23ff\u25fd-\u27bf\u2b1b-\u2b55\u2e80-\ua4cf\ua960-\ua97f\uac00-\ud7a3"
    "\uf900-\ufaff\ufe10-\ufe6f\uff00-\uff60\uffe0-\uffe6\U0001f000-\U0001faff\U00020000-\U0003fffd]"
)


def _cells(text: str) -> int:
    """Terminal cells the text takes (East Asian wide characters take two)."""
    if text.isascii() or not _MAYBE_WIDE.search(text):
        return len(text)
    return sum(_char_cells(ch) for ch in text)


@lru_cache(maxsize=4096)
def _char_cells(ch: str) -> int:
    return 2 if unicodedata.east_asian_width(ch) in "WF" else 1


def _fit(text: str, width: int) -> str:
    """The text cut to `width` terminal cells, with … where it was cut."""
    if width <= 0:
        return ""
    if _cells(text) <= width:
        return text
    out, used = [], 0
    for ch in text:
        w = _cells(ch)
        if used + w > width - 1:
            break
        out.append(ch)
        used += w
    return "".join(out) + "…"


class _Canvas:
    def __init__(self, width: int) -> None:
        self.cells = [" "] * width

    def put(self, x: int, text: str) -> None:
        if _cells(text) == len(text):  # one cell a character: copy it in at once
            start, end = max(x, 0), min(x + len(text), len(self.cells))
            if start < end:
                self.cells[start:end] = text[start - x : end - x]
            return
        for ch in text:
            if 0 <= x < len(self.cells):
                self.cells[x] = ch
                if _cells(ch) == 2 and x + 1 < len(self.cells):
                    self.cells[x + 1] = ""
                x += _cells(ch)

    def text(self) -> str:
        return "".join(self.cells).rstrip()


MIN_TEXT_WIDTH = 24


def ladder_text(ladder: Ladder, width: int = 80, times: bool | None = None, start: int = 0) -> list[str]:
    """The ladder in monospace lines no wider than `width` (at least 24) cells.

    States are written outside the two column lines (left of the left one, right of the right
    one), arrows and calls between them. `times` (by default when width >= 100) adds each row's
    time in ms since the lab's t0 at the left. With `start`, only the lines of rows from that
    index on (no header), for a view that appends as the ladder grows.
    """
    if width < MIN_TEXT_WIDTH:
        raise ValueError(f"a ladder needs at least {MIN_TEXT_WIDTH} columns")
    if times is None:
        times = width >= 100
    gutter = 11 if times else 0
    margin = max(4, min(13, (width - gutter - 10) // 3))
    left, right = gutter + margin, width - margin - 1
    state_width = margin - 2
    lines: list[str] = []

    def state_line(states: tuple[str, str], show: tuple[bool, bool], top: bool = False) -> str:
        canvas = _Canvas(width)
        if show[0]:
            canvas.put(gutter + 1, _fit(states[0], state_width))
        if show[1]:
            canvas.put(right + 2, _fit(states[1], state_width))
        canvas.put(left, "┬" if top else "│")
        canvas.put(right, "┬" if top else "│")
        return canvas.text()

    if start == 0:
        columns = ladder.columns
        for texts in ([c.name for c in columns], [c.address_text if c.label else "" for c in columns]):
            if not any(texts):
                continue
            canvas = _Canvas(width)
            first = _fit(texts[0], (width - gutter) // 2 - 2)
            second = _fit(texts[1], width - gutter - _cells(first) - 3)
            canvas.put(gutter + 1, first)
            canvas.put(right + 2 if _cells(second) <= state_width else width - 1 - _cells(second), second)
            lines.append(canvas.text())
        top = state_line(ladder.initial, (True, True), top=True)
        lines.append(f"{'ms':>9}" + top[9:] if times else top)
    inner = right - left - 1
    for row in ladder.rows[start:]:
        canvas = _Canvas(width)
        if times and row.kind in ("segment", "call", "end"):
            canvas.put(0, _fit(f"{row.t_ms:9.3f}", gutter - 1))
        if row.kind == "segment":
            label = row.label if _cells(row.label) + 8 <= inner else row.text
            label = _fit(label, inner - 8)
            fill = inner - 1 - _cells(label) - 2
            before = fill // 2
            after = fill - before
            body = "─" * before + f" {label} " + "─" * after
            if row.side == 0:
                canvas.put(left, "├" + body + "▶│")
            else:
                canvas.put(left, "│◀" + body + "┤")
        else:
            text = row.text
            if row.kind == "kernel":
                text = f"kernel: {row.text}"
            elif row.process is not None and row.process != ladder.columns[row.side].process and row.kind == "call":
                text = f"{row.process}: {text}"
            text = _fit(text, inner - 3)
            canvas.put(left, "│")
            canvas.put(right, "│")
            if row.side == 0:
                canvas.put(left + 2, text)
            else:
                canvas.put(right - 1 - _cells(text), text)
        lines.append(canvas.text())
        if any(row.changed):
            lines.append(state_line(row.states, row.changed))
    return lines


# Drawing: SVG.

_CHAR = 7.22  # width of a 12 px monospace character
_FLAG_COLOURS = (("RST", "#c62828"), ("SYN", "#2e7d32"), ("FIN", "#1565c0"))
_STATE_COLOURS = {
    ESTABLISHED: "#e8f5e9",
    CLOSED: "#eeeeee",
    LISTEN: "#f3e5f5",
    SYN_SENT: "#fff8e1",
    SYN_RECV: "#fff8e1",
    TIME_WAIT: "#fff3e0",
    CLOSE_WAIT: "#e3f2fd",
    LAST_ACK: "#e3f2fd",
    FIN_WAIT_1: "#e3f2fd",
    FIN_WAIT_2: "#e3f2fd",
    CLOSING: "#e3f2fd",
}


_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml(text: str) -> str:
    """Text safe in an XML 1.0 document: escaped, and characters XML cannot carry replaced by U+FFFD."""
    return _NOT_XML.sub("\ufffd", html.escape(text, quote=True))


def _colour(flags: Sequence[str], length: int) -> str:
    for flag, colour in _FLAG_COLOURS:
        if flag in flags:
            return colour
    return "#212121" if length else "#757575"


def _call_text(ladder: Ladder, row: Row) -> str:
    if row.kind == "kernel":
        return f"kernel: {row.text}"
    if row.kind == "call" and row.process is not None and row.process != ladder.columns[row.side].process:
        return f"{row.process}: {row.text}"
    return row.text


def _width(text: str) -> float:
    return _cells(text) * _CHAR


def ladder_svg(ladders: Ladder | Sequence[Ladder], title: str | None = None) -> str:
    """A standalone SVG document of one ladder, or several stacked (no external resources)."""
    items = [ladders] if isinstance(ladders, Ladder) else list(ladders)
    gutter = 84.0
    side_width = 110.0
    middle = 320.0
    for ladder in items:
        for row in ladder.rows:
            if row.kind == "segment":
                middle = max(middle, _width(row.label) + 60)
            else:
                side_width = max(side_width, _width(_call_text(ladder, row)) + 24)
        for column in ladder.columns:
            side_width = max(side_width, _width(column.name) / 2 + 24, _width(column.address_text) / 2 + 24)
    side_width = min(side_width, 420.0)
    middle = min(middle, 640.0)
    x_left = gutter + side_width
    x_right = x_left + middle
    total_width = x_right + side_width + 16
    body: list[str] = []
    y = 24.0
    if title:
        body.append(f'<text x="12" y="{y:.1f}" class="title">{_xml(title)}</text>')
        y += 24
    if not items:
        body.append(f'<text x="12" y="{y:.1f}">no TCP connection was captured</text>')
        y += 24
    for number, ladder in enumerate(items, 1):
        y = _svg_ladder(body, ladder, number, y, gutter, x_left, x_right, side_width)
        y += 28
    height = y
    head = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total_width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {total_width:.0f} {height:.0f}" font-family="DejaVu Sans Mono, Menlo, Consolas, monospace" '
        f'font-size="12">\n'
        "<defs>\n"
        + "".join(
            f'<marker id="arrow-{name}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" '
            f'orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="{colour}"/></marker>\n'
            for name, colour in (
                ("rst", "#c62828"),
                ("syn", "#2e7d32"),
                ("fin", "#1565c0"),
                ("data", "#212121"),
                ("ack", "#757575"),
            )
        )
        + "<style>\n"
        ".title { font-weight: bold; font-size: 14px; }\n"
        ".column { font-weight: bold; }\n"
        ".address, .time { fill: #616161; font-size: 11px; }\n"
        ".call { fill: #4a148c; }\n"
        ".kernel { fill: #bf360c; font-style: italic; }\n"
        ".state { font-size: 11px; font-weight: bold; }\n"
        "</style>\n"
        "</defs>\n"
        '<rect width="100%" height="100%" fill="white"/>\n'
    )
    return head + "\n".join(body) + "\n</svg>\n"


def _marker(flags: Sequence[str], length: int) -> str:
    for flag in ("RST", "SYN", "FIN"):
        if flag in flags:
            return flag.lower()
    return "data" if length else "ack"


def _svg_ladder(
    body: list[str],
    ladder: Ladder,
    number: int,
    y: float,
    gutter: float,
    x_left: float,
    x_right: float,
    side_width: float,
) -> float:
    xs = (x_left, x_right)
    columns = ladder.columns
    title = f"{number}. {ladder.title}   {columns[0].address_text} ⇄ {columns[1].address_text}"
    body.append(f'<g class="ladder" id="ladder-{number}">')
    body.append(f'<text x="12" y="{y:.1f}" class="title">{_xml(title)}</text>')
    y += 26
    for x, column in zip(xs, columns, strict=True):
        body.append(f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="middle" class="column">{_xml(column.name)}</text>')
        if column.label:
            body.append(
                f'<text x="{x:.1f}" y="{y + 14:.1f}" text-anchor="middle" class="address">'
                f"{_xml(column.address_text)}</text>"
            )
    y += 24
    top = y
    lines_at = len(body)

    def states(values: tuple[str, str], show: tuple[bool, bool], y: float) -> float:
        for side, (value, shown) in enumerate(zip(values, show, strict=True)):
            if not shown:
                continue
            w = _width(value) * 11 / 12 + 10
            x = xs[side] - 8 - w if side == 0 else xs[side] + 8
            fill = _STATE_COLOURS.get(value, "#ffffff")
            body.append(
                f'<rect x="{x:.1f}" y="{y - 11:.1f}" width="{w:.1f}" height="16" rx="3" fill="{fill}" '
                f'stroke="#9e9e9e"/>'
            )
            body.append(
                f'<text x="{x + w / 2:.1f}" y="{y + 1:.1f}" text-anchor="middle" class="state">{_xml(value)}</text>'
            )
        return y + 22

    y = states(ladder.initial, (True, True), y + 8)
    for row in ladder.rows:
        if row.kind == "segment":
            x1, x2 = xs[row.side], xs[1 - row.side]
            y1, y2 = y, y + 18
            colour = _colour(row.flags, row.length)
            dx, dy = x2 - x1, y2 - y1
            angle = math.degrees(math.atan2(dy, abs(dx))) * (1 if dx > 0 else -1)
            mx, my = (x1 + x2) / 2, (y1 + y2) / 2
            tip = f"{row.t_ms:.3f} ms  {columns[row.side].name} > {columns[1 - row.side].name}  {row.label}"
            tip += f"  win {row.window}"
            body.append(f'<g class="segment"><title>{_xml(tip)}</title>')
            body.append(
                f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{colour}" '
                f'stroke-width="1.5" marker-end="url(#arrow-{_marker(row.flags, row.length)})"/>'
            )
            label = _fit(row.label, int((abs(dx) - 40) / _CHAR))
            body.append(
                f'<text x="{mx:.1f}" y="{my - 5:.1f}" text-anchor="middle" fill="{colour}" '
                f'transform="rotate({angle:.2f} {mx:.1f} {my:.1f})">{_xml(label)}</text>'
            )
            body.append("</g>")
            body.append(
                f'<text x="{gutter - 12:.1f}" y="{y1 + 4:.1f}" text-anchor="end" class="time">{row.t_ms:.3f} ms</text>'
            )
            y = y2 + 14
        else:
            full = _call_text(ladder, row)
            text = _fit(full, int((side_width - 16) / _CHAR))
            x = xs[row.side]
            css = "kernel" if row.kind == "kernel" else "call"
            anchor, tx = ("end", x - 10) if row.side == 0 else ("start", x + 10)
            body.append(f'<g class="{css}"><title>{_xml(f"{row.t_ms:.3f} ms  {full}")}</title>')
            body.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="#4a148c"/>')
            body.append(f'<text x="{tx:.1f}" y="{y + 4:.1f}" text-anchor="{anchor}" class="{css}">{_xml(text)}</text>')
            body.append("</g>")
            if row.kind != "kernel":
                body.append(
                    f'<text x="{gutter - 12:.1f}" y="{y + 4:.1f}" text-anchor="end" class="time">'
                    f"{row.t_ms:.3f} ms</text>"
                )
            y += 20
        if any(row.changed):
            y = states(row.states, row.changed, y + 6)
    bottom = y
    body.insert(
        lines_at,
        "".join(
            f'<line x1="{x:.1f}" y1="{top - 4:.1f}" x2="{x:.1f}" y2="{bottom:.1f}" stroke="#424242" stroke-width="2"/>'
            for x in xs
        ),
    )
    body.append("</g>")
    return bottom
