"""Many connections: grouping segments by connection, and calls by the socket they were made on."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from playground.events import CallDone, ProcessEnded, ProcessStarted
from playground.ladder.builder import LadderBuilder
from playground.ladder.model import (
    BIND_MARGIN_NS,
    MAX_SLACK_NS,
    MAX_WAITING_SAMPLES,
    SETTLE_NS,
    CallNote,
    Column,
    Ladder,
)
from playground.packet_log import AnyPacket


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
    packets: list[AnyPacket]
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

    def add_packets(self, packets: Iterable[AnyPacket]) -> None:
        for packet in packets:
            self.add_packet(packet)

    def add_packet(self, packet: AnyPacket) -> int | None:
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
            i = builder.side_of(local)
            if i is not None and columns[1 - i].address == peer:
                return i
            return None
        if isinstance(side, tuple):
            return builder.side_of(side)
        return None

    def _starts_anew(self, builder: LadderBuilder, packet: AnyPacket) -> bool:
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
                side = builder.side_of(slot.local)
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
    packets: Iterable[AnyPacket],
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


def connections(packets: Iterable[AnyPacket]) -> list[Connection]:
    """The TCP connections among these packets (e.g. `lab.packets`), oldest first, with their sockets' names."""
    return _feed(packets).connections()


def build_ladders(
    packets: Iterable[AnyPacket],
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
    packets: Connection | Iterable[AnyPacket],
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
