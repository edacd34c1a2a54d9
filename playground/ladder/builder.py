"""One connection's ladder, built incrementally from its segments, its calls and the kernel's samples."""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from typing import Any

from playground.ladder.model import (
    BLOCKED_NS,
    CLOSED,
    DEATH_LOOKBACK_NS,
    LEAD_NS,
    MAX_SLACK_NS,
    SETTLE_NS,
    WAITING_CALLS,
    CallNote,
    Column,
    Ladder,
    Row,
)
from playground.ladder.states import Machine, advance, behind, initial_states, normal_state, segment_label
from playground.packet_log import AnyPacket


@dataclass
class _Event:
    t_ns: int
    order: int  # breaks ties: a call before the segments it sent, a sample last
    serial: int
    kind: str  # "packet", "call", "return", "end", "sample"
    side: int
    packet: AnyPacket | None = None
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

    def __init__(self, first: AnyPacket, t0_ns: int = 0) -> None:
        self.ladder = Ladder(
            [Column(first.src, first.src_label), Column(first.dst, first.dst_label)], (CLOSED, CLOSED), [], t0_ns
        )
        self.packets: list[AnyPacket] = []
        self.first_ns = first.t_ns
        self.syn_seq: dict[tuple[str, int], int] = {}  # the raw seq of each side's SYN
        self._first_from: list[AnyPacket | None] = [None, None]
        self._events: list[_Event] = []
        self._keys: list[tuple[int, int, int]] = []
        self._before: list[Machine] = []  # the machine before each event
        self._rows_before: list[int] = []  # rows before each event
        self._machine = Machine((CLOSED, CLOSED))
        self._serial = 0
        self._packet_times: list[int] = []  # sorted, for the settle rule
        self._times_from: tuple[list[int], list[int]] = ([], [])  # sorted, each side's segments
        self._long_calls: list[_Event] = []  # calls that ran long enough to be drawn twice if they blocked
        self._ends: list[_Event] = []  # processes' ends, placed before the segments they made
        self._sample_keys: list[tuple[int, int, int]] = []  # sorted, for the settle rule
        self._sample_reach: dict[tuple[int, int, int], int] = {}  # a segment before this distrusts the sample

    # Inputs.

    def side_of(self, address: tuple[str, int] | None) -> int | None:
        for i, column in enumerate(self.ladder.columns):
            if column.address == address:
                return i
        return None

    def add_packet(self, packet: AnyPacket) -> int:
        sender = 0 if packet.src == self.ladder.columns[0].address else 1
        self.packets.append(packet)
        self._refresh_label(sender, packet.src_label)
        self._refresh_label(1 - sender, packet.dst_label)
        if "SYN" in packet.flags and "ACK" not in packet.flags:
            self.syn_seq.setdefault(packet.src, packet.seq)
        restart = False
        if self._first_from[sender] is None:
            self._first_from[sender] = packet
            initial = initial_states(self._first_from[0], self._first_from[1])
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
        return self._insert(self._event(t_ns, 3, "sample", side, state=normal_state(state), slack=slack))

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
        machine = Machine(self.ladder.initial) if start == 0 else self._before[start]
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

    def _untrusted(self, machine: Machine, sample: _Event) -> bool:
        """A segment went by while (or just before) the sample was read, and it could turn that side's state
        (from the state machine's or from the sample's): which came first cannot be told, so the segment's row
        says it. A segment that turns nothing there (data, its ACK, a window probe) leaves the sample trusted:
        under load the kernel's reading is often a few milliseconds from one of those. A reading behind what the
        segments drawn so far say is never trusted: on a busy machine the kernel handles a segment well after
        the capture stamped it, and a reading in between shows the state before it."""
        side = sample.side
        if behind(sample.state, machine.states[side]):
            return True
        claimed = machine.with_state(side, sample.state)
        i = bisect_right(self._keys, (sample.t_ns - sample.slack - SETTLE_NS, -1, -1))
        end = sample.t_ns + sample.slack + LEAD_NS
        for event in self._events[i:]:
            if event.t_ns >= end:
                break
            if event.kind != "packet" or event.packet is None:
                continue
            for before in (machine, claimed):
                if advance(before, event.packet, event.side).states[side] != before.states[side]:
                    return True
        return False

    def _apply(self, machine: Machine, event: _Event) -> tuple[Machine, Row | None]:
        before = machine.states
        t_ms = (event.t_ns - self.ladder.t0_ns) / 1e6
        if event.kind == "packet":
            packet = event.packet
            assert packet is not None
            machine = advance(machine, packet, event.side)
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
            if event.state == machine.states[event.side] or self._untrusted(machine, event):
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
