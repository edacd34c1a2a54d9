"""The wire in the TUI, UI-free: packets in the event book, the kernel's hidden sockets, the ladders.

`WireBook` is the event book with captured packets interleaved by time and a toggle
(calls, packets or both); `WireState` is what the session keeps of the wire: the
lab's network, the ladder recorder, and the kernel's TCP sockets read through
sock_diag on every poll (the hidden ones, TIME-WAIT and orphans, with their timers).
"""

from __future__ import annotations

import dataclasses
import time
from bisect import bisect_right
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from playground.events import CallDone, CallObserved, DirectiveDone, Event, PacketsSeen, ProcessEnded, ProcessStarted
from playground.note_log import NoteLog
from playground.session.entrystore import KIND_CODE, Entry, PacketEntry
from playground.session.eventbook import EventBook
from playground.session.view import LabView, SocketView, SocketViews, mask_ports

if TYPE_CHECKING:
    from playground.lab import Lab
    from playground.ladder import Ladder, LadderRecorder
    from playground.packet_log import AnyPacket
    from playground.sockdiag import KernelSocket

__all__ = [
    "PACKET_MARK",
    "SHOW_MODES",
    "HiddenSocketView",
    "PacketEntry",
    "WireBook",
    "WireState",
    "ladder_for",
    "timer_text",
    "tcp_info_text",
]

PACKET_MARK = "⇢"
SHOW_MODES = ("both", "calls", "packets")
# Entries younger than this are held back a moment: the packets a call sent reach the app a little
# after the call's result, and a packet's sockets are named once the call that made them returned.
HOLD_NS = 15_000_000
HOLD_LIMIT = 5000  # past this many held entries, write them anyway
DUMP_SHARE = 0.05  # sock_diag dumps take at most this share of the time (one a refresh while they are cheap)
RELABEL_WINDOW = 256  # the packets whose names a call's result may still change (as the lab relabels them)
PACKET = KIND_CODE["packet"]
PACKETS = bytes(1 if code == PACKET else 0 for code in range(256))  # kinds to 1 where a line is shown
CALLS = bytes(0 if code == PACKET else 1 for code in range(256))


def _owner(label: str | None) -> str | None:
    """`client` from `client.c` (or `client:fd3`)."""
    if not label:
        return None
    return label.split(".", 1)[0].split(":", 1)[0]


class WireBook(EventBook):
    """The event book with captured packets as entries, written in time order with the calls.

    A packet's entry keeps only where the packet is: its serial number in the lab's packet log
    (a packet the log hands out has one), or else its index in `packets`. Its line is made from
    the packet when shown, with the names the lab gives its sockets by then.
    """

    def __init__(self, t0: int, deterministic: bool = False) -> None:
        super().__init__(t0, deterministic)
        self.show = "both"
        self.packet_count = 0
        self.packets: list[AnyPacket] = []
        # Each lab's packet log by serial, from the first entry made after it was attached (a restart
        # starts a new lab, and the book goes on): a packet entry keeps a number, not the packet.
        self._log_starts: list[int] = []
        self._logs: list[Callable[[int], AnyPacket | None]] = []
        # The newest packet entries, with the names their line was last made with.
        self._recent: deque[tuple[int, str | None, str | None]] = deque(maxlen=RELABEL_WINDOW)

    def add(self, event: Event, names: Mapping[str, int] | None = None) -> int | None:
        if isinstance(event, PacketsSeen):
            index = None
            for packet in event.packets:
                index = self._add_packet(packet, _owner(packet.src_label))
            self.packet_count += len(event.packets)
            return index
        index = super().add(event, names)
        if isinstance(event, CallDone) and self._recent and event.result.raw.get("local"):
            self._relabel()
        return index

    def add_entry(self, entry: Entry) -> int:
        if isinstance(entry, PacketEntry) and entry.packet is not None:
            return self._add_packet(entry.packet, entry.process)
        return super().add_entry(entry)

    def packets_from(self, log: Callable[[int], AnyPacket | None]) -> None:
        """The packets reported from now on are the lab's whose log gives a packet by its serial number."""
        self._log_starts.append(len(self.store))
        self._logs.append(log)

    def _add_packet(self, packet: AnyPacket, owner: str | None) -> int:
        index = self._append(Entry("packet", packet.t_ns, owner, ""))
        serial = getattr(packet, "serial", None)
        if serial is not None and self._logs:
            self.store.put("text_at", index, -1 - serial)
        else:
            self.store.put("text_at", index, len(self.packets))
            self.packets.append(packet)
        if len(self._recent) == RELABEL_WINDOW:
            self._freeze(self._recent[0][0])
        self._recent.append((index, packet.src_label, packet.dst_label))
        return index

    def _freeze(self, index: int) -> None:
        """A packet past the newest the lab may still rename: its line's text is final, kept as text (the
        lab's packet log keeps only the newest 200,000 packets, and a search reads text fastest)."""
        packet = self.packet(index)
        if packet is not None:
            store = self.store
            if store.procs[index] == 0:
                store.put("procs", index, store.name_code(_owner(packet.src_label)))
            store.set_text(index, packet.summary)

    def packet(self, index: int) -> AnyPacket | None:
        """Entry `index`'s packet (None: not a packet's entry, or one the lab's log no longer keeps)."""
        store = self.store
        if store.kinds[index] != PACKET or store.text_len[index]:  # (a packet's line made final: text)
            return None
        at = store.text_at[index]
        if at >= 0:
            return self.packets[at]
        return self._logs[bisect_right(self._log_starts, index) - 1](-1 - at)

    def entry(self, index: int) -> Entry:
        store = self.store
        if store.kinds[index] != PACKET:
            return super().entry(index)
        packet = self.packet(index)
        return PacketEntry("packet", store.times[index], store.process(index), store.text(index), packet=packet)

    def _relabel(self) -> None:
        """A call's result named a socket: the lab renamed the packets before it; rewrite their lines."""
        store = self.store
        for slot, (index, src, dst) in enumerate(self._recent):
            packet = self.packet(index)
            if packet is not None and (packet.src_label, packet.dst_label) != (src, dst):
                self._recent[slot] = (index, packet.src_label, packet.dst_label)
                store.put("procs", index, store.name_code(_owner(packet.src_label)))
                self._touch(index)

    def _matches(self, index: int) -> bool:
        if self.store.kinds[index] == PACKET:
            if self.show == "calls":
                return False
        elif self.show == "packets":
            return False
        return super()._matches(index)

    def _mask(self) -> bytes | None:
        mask = super()._mask()
        if self.show == "both":
            return mask
        shown = self.store.kinds.tobytes().translate(PACKETS if self.show == "packets" else CALLS)
        if mask is None:
            return shown
        both = int.from_bytes(shown, "little") & int.from_bytes(mask, "little")
        return both.to_bytes(len(shown), "little")

    def next_show(self) -> str:
        return SHOW_MODES[(SHOW_MODES.index(self.show) + 1) % len(SHOW_MODES)]

    @property
    def wire_note(self) -> str:
        return "" if self.show == "both" else f" · {self.show} only"

    def render_line(self, index: int) -> str:
        packet = self.packet(index)
        store = self.store
        if packet is None:
            if store.kinds[index] == PACKET:  # its line made final, or (not so) past the packets the lab keeps
                text = store.text(index) or "(a packet no longer kept)"
                line = f"{self.time_text(store.times[index])} {self.process_text(index, 'wire')} {PACKET_MARK} {text}"
                return mask_ports(line) if self.deterministic else line
            return super().render_line(index)
        if store.procs[index] == 0:
            store.put("procs", index, store.name_code(_owner(packet.src_label)))
        line = f"{self.time_text(packet.t_ns)} {self.process_text(index, 'wire')} {PACKET_MARK} {packet.summary}"
        if self.deterministic:
            line = mask_ports(line)
        return line

    def render(self, index: int) -> str:
        store = self.store
        if store.kinds[index] == PACKET and not store.text_len[index]:
            return self.render_line(index)  # not kept: the lab may name the packet's sockets at any time
        return super().render(index)

    def take_unwritten(self, hold_running: bool = True) -> list[str]:
        """As EventBook's, with the entries put in time order and the newest held back a moment."""
        if not self.unwritten:
            return []
        if self.packet_count:
            times = self.store.times
            self.unwritten.sort(key=times.__getitem__)
            cutoff = time.monotonic_ns() - HOLD_NS
            ready = len(self.unwritten)
            if ready < HOLD_LIMIT:
                while ready and times[self.unwritten[ready - 1]] > cutoff:
                    ready -= 1
            held = self.unwritten[ready:]
            self.unwritten = self.unwritten[:ready]
            lines = super().take_unwritten(hold_running)
            self.unwritten += held
            return lines
        return super().take_unwritten(hold_running)


# The kernel's sockets.


@dataclass(frozen=True)
class HiddenSocketView:
    """A TCP socket the kernel keeps with no descriptor left (TIME-WAIT, FIN-WAIT-2, an orphan)."""

    process: str
    label: str
    state: str
    local: tuple[str, int]
    peer: tuple[str, int]
    timer: str | None
    expires_ms: int
    retrans: int
    info: tuple[tuple[str, int], ...] = ()

    @property
    def key(self) -> tuple:
        return ("hidden", self.process, self.local, self.peer)

    @property
    def name(self) -> str:
        """Its variable (`c`); an outside program's socket, named by its descriptor, by its whole name (`client.3`)."""
        var = self.label.split(".", 1)[1] if "." in self.label else self.label
        return self.label if var.isdigit() else var


def timer_text(timer: str | None, expires_ms: int, deterministic: bool = False) -> str:
    if not timer:
        return "no timer"
    if deterministic:
        return f"{timer} ·"
    return f"{timer} {expires_ms / 1000:.1f} s" if expires_ms >= 1000 else f"{timer} {expires_ms} ms"


def tcp_info_text(info: dict, deterministic: bool = False) -> str:
    if not info:
        return "no TCP_INFO (the kernel keeps none for a TIME-WAIT socket)"
    rtt = "·" if deterministic else f"{info.get('rtt', 0)} µs"
    cwnd = "·" if deterministic else info.get("snd_cwnd", "-")
    return (
        f"rtt {rtt}  cwnd {cwnd}  unacked {info.get('unacked', '-')}  "
        f"retrans {info.get('total_retrans', info.get('retrans', '-'))}"
    )


class WireState:
    """The session's view of the wire: network, capture, ladders, and the kernel's TCP sockets."""

    def __init__(self) -> None:
        self.lab: Lab | None = None
        self.recorder: LadderRecorder | None = None
        self.kernel: list[tuple[str | None, str | None, KernelSocket]] = []
        self.read_at = 0.0
        self.dump_cost = 0.0  # seconds the last dump took
        self._decorated: tuple[LabView, list, LabView] | None = None  # (view, kernel, decorated view)
        self._last_view: LabView | None = None  # the last view decorated (or not: nothing to add)
        # Building ladders as packets stream in costs a lot: until a ladder is first asked for,
        # only what it needs is kept (packets stay in lab.packets): each call as the ladder
        # writes it (a CallNote, made when the call returned, kept in columns: NoteLog).
        self._history = NoteLog(maxlen=100_000)
        self._forget: Callable[[], None] | None = None

    def attach(self, lab: Lab) -> None:
        self.lab = lab
        if lab.capture is not None:
            self._forget = lab.subscribe(self._remember)

    def _remember(self, event: object) -> None:
        if isinstance(event, CallDone):
            from playground.ladder.model import CallNote  # the ladders' modules load with the first call

            note = CallNote.from_event(event, self.lab)
            if note is not None:
                self._history.append(note)
        elif isinstance(event, (CallObserved, ProcessStarted, ProcessEnded, DirectiveDone)):
            self._history.append(event)

    def ladder_recorder(self) -> LadderRecorder | None:
        """The ladders' recorder, made on first use from what happened so far."""
        if self.recorder is None and self.lab is not None and self.lab.capture is not None:
            from playground.ladder import LadderRecorder

            recorder = LadderRecorder(self.lab, kernel=False)  # the kernel's view now is not then's
            for event in self._history:
                recorder.observe(event)
            recorder.kernel = True
            self.recorder = recorder
            self._history.clear()
            if self._forget is not None:
                self._forget()
                self._forget = None
        return self.recorder

    def close(self) -> None:
        if self._forget is not None:
            self._forget()
        if self.recorder is not None:
            self.recorder.close()

    @property
    def network_text(self) -> str:
        lab = self.lab
        if lab is None:
            return ""
        capture = "capture on" if lab.capture is not None else "no capture"
        return f"{lab.network.kind} · {capture}"

    async def refresh(self) -> None:
        """Read the kernel's TCP sockets (one netlink dump, in a thread), at most DUMP_SHARE of the time.

        A dump costs in proportion to the sockets the lab's network holds (some 20 ms per
        1,000 here): with thousands, it is taken less often, and the view keeps the last one.
        The idle sockets (a descriptor, no timer, nothing retransmitted) add nothing to the view
        (`_decorate`) unless the inspection has no TCP_INFO for one: they are left unparsed
        while the last view has no such socket.
        """
        if self.lab is None:
            return
        now = time.monotonic()
        if now - self.read_at < self.dump_cost / DUMP_SHARE:
            return
        last = self._last_view
        skip_idle = last is not None and not any(_lacks_tcp_info(proc.sockets) for proc in last.processes)
        self.kernel = await self.lab.kernel_sockets_aside(skip_idle)
        self.read_at = time.monotonic()
        self.dump_cost = self.read_at - now

    def decorate(self, view: LabView) -> LabView:
        """The view with the hidden sockets and each TCP socket's timer (from sock_diag)."""
        self._last_view = view
        if self.lab is None or not self.kernel:
            self._decorated = None  # (kept, it held an old view and its sockets' tables: 2x10,000 rows)
            return view
        last = self._decorated
        if last is not None and last[0] == view and last[1] is self.kernel:
            return last[2]  # nothing new on either side (the view's parts are the same objects)
        decorated = self._decorate(view)
        self._decorated = (view, self.kernel, decorated)
        return decorated

    def _decorate(self, view: LabView) -> LabView:
        by_ends: dict[tuple, KernelSocket] = {}
        hidden = []
        names = {p.name for p in view.processes}
        for process, label, sock in self.kernel:
            if sock.orphan:
                if process in names and label:
                    hidden.append(
                        HiddenSocketView(
                            process,
                            label,
                            sock.state,
                            sock.local,
                            sock.peer,
                            sock.timer,
                            sock.expires_ms,
                            sock.retrans,
                            tuple(sock.info.items()),
                        )
                    )
            else:
                by_ends[(tuple(sock.local), tuple(sock.peer))] = sock
        timed = [sock for sock in by_ends.values() if sock.timer is not None or sock.retrans]
        processes = []
        for proc in view.processes:
            decorations = {}
            for at in _maybe_decorated(proc.sockets, timed):  # each view made, read and let go
                decorated = _with_timer(proc.sockets[at], by_ends)
                if decorated is not None:
                    decorations[at] = decorated
            if not decorations:
                processes.append(proc)
            elif isinstance(proc.sockets, SocketViews):  # still made one when asked for (10,000 idle connections)
                processes.append(dataclasses.replace(proc, sockets=proc.sockets.decorated(decorations)))
            else:
                sockets = tuple(decorations.get(at, sv) for at, sv in enumerate(proc.sockets))
                processes.append(dataclasses.replace(proc, sockets=sockets))
        return dataclasses.replace(view, processes=tuple(processes), hidden=tuple(hidden))


def _lacks_tcp_info(sockets: Sequence[SocketView]) -> bool:
    """Whether a stream socket of these has no TCP_INFO (then sock_diag's idle sockets are wanted too)."""
    maybe = sockets.without_tcp_info() if isinstance(sockets, SocketViews) else range(len(sockets))
    return any(sockets[at].is_stream and sockets[at].tcp is None for at in maybe)


def _maybe_decorated(sockets: Sequence[SocketView], timed: list[KernelSocket]) -> list[int] | range:
    """The positions `_with_timer` may decorate: those at the ports of a socket with a timer (or a
    retransmission), and those without TCP_INFO; found in the table's columns, so that 10,000 idle
    connections cost no view made at each dump (they did: 130 ms a dump, issue 13)."""
    if not isinstance(sockets, SocketViews):
        return range(len(sockets))
    found = set(sockets.without_tcp_info())
    found.update(sockets.at_ports({(sock.local[1], sock.peer[1]) for sock in timed}))
    return sorted(found)


def _with_timer(sv: SocketView, by_ends: dict[tuple, KernelSocket]) -> SocketView | None:
    """The socket's view with sock_diag's timer and counts added, or None when there is nothing to add."""
    found = by_ends.get(_ends(sv)) if sv.is_stream else None
    if found is None or (found.timer is None and sv.tcp is not None and not found.retrans):
        return None  # nothing to add: no timer runs (most of 10,000 idle connections)
    tcp = dict(sv.tcp or {})
    tcp.update(timer=found.timer, expires_ms=found.expires_ms, retransmits=found.retrans)
    for key in ("rtt", "snd_cwnd", "unacked", "total_retrans"):
        if tcp.get(key) is None and key in found.info:
            tcp[key] = found.info[key]
    return dataclasses.replace(sv, tcp=tcp)


def _ends(sock: SocketView) -> tuple:
    local = tuple(sock.local) if sock.local else None
    if sock.peer:
        peer = tuple(sock.peer)
    else:
        peer = ("::" if sock.is_ipv6 else "0.0.0.0", 0)
    return (local, peer)


def ladder_for(ladders: list[Ladder], ends: tuple | None) -> int | None:
    """Index of the newest ladder between these two addresses (None: the newest ladder, or none)."""
    if not ladders:
        return None
    if ends is not None:
        wanted = {tuple(ends[0]), tuple(ends[1])}
        for index in range(len(ladders) - 1, -1, -1):
            columns = ladders[index].columns
            if {tuple(columns[0].address), tuple(columns[1].address)} == wanted:
                return index
    return len(ladders) - 1
