"""The ladder's model: columns, rows, the calls beside them, and the TCP states drawn between the arrows."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from playground.events import CallDone, CallObserved
from playground.lab import PENDING_AFTER
from playground.packet_log import AnyPacket
from playground.script.format import format_call, format_outcome, quote
from playground.script.model import IntArg, NameArg, Step

if TYPE_CHECKING:
    from playground.lab import Lab

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

SEQ_SPACE = 1 << 32


def seq_ge(a: int, b: int) -> bool:
    """a is at or after b in sequence space (RFC 793's modular comparison)."""
    return (a - b) % SEQ_SPACE < SEQ_SPACE // 2


# The model.


@dataclass
class Column:
    """One end of a connection: its address and the lab's name for its socket (`client.c`)."""

    address: tuple[str, int]
    label: str | None = None

    @property
    def name(self) -> str:
        """`client.c`, or the address where the lab knows no socket there."""
        return self.label or endpoint_text(self.address)

    @property
    def process(self) -> str | None:
        if self.label is None:
            return None
        return self.label.split(".", 1)[0].split(":", 1)[0]

    @property
    def address_text(self) -> str:
        return endpoint_text(self.address)


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
    packet: AnyPacket | None = field(default=None, repr=False, compare=False)

    @property
    def label(self) -> str:
        """A segment's arrow label with its data preview: `PSH|ACK seq 1 ack 1 len 3 "bye"` (`lost ...` if lost)."""
        text = f"lost {self.text}" if self.lost else self.text
        if self.kind != "segment" or not self.preview:
            return text
        return f"{text} {data_preview(self.preview, self.length)}"

    @property
    def lost(self) -> bool:
        """A segment the network lab's cable dropped: sent, never received."""
        return self.packet is not None and self.packet.lost


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


@dataclass(frozen=True, slots=True)
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
    blocked: bool = False  # the lab reported it pending, and it ran that long in the process
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
        # A thread actor's sockets are its process's: its calls go on that process's side, named by the thread.
        thread = lab.threads.get(event.process) if lab is not None else None
        process = thread.thread_of.name if thread is not None and thread.thread_of is not None else event.process
        if process != event.process:
            text = f"{event.process}: {text}"
        defines = node.var if call.name in ("socket", "accept", "dup") and node.var else None
        sockets: list[str] = []
        if defines:
            sockets.append(defines)
        if call.args and call.name not in ("socket", "accept", "signal", "fork", "waitpid", "exit"):
            first = call.args[0]
            if isinstance(first, NameArg):
                sockets.append(first.name)
            elif isinstance(first, IntArg) and lab is not None:
                proc = lab.processes.get(process)
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
            process=process,
            text=f"{text} {outcome}",
            sockets=tuple(dict.fromkeys(sockets)),
            name=call.name,
            end_ns=start + duration,
            # reported pending, and blocked in the kernel too: a short call whose answer came late (a
            # loaded machine scheduling the process late) did not block
            blocked=event.was_pending and duration >= PENDING_AFTER * 1e9,
            defines=defines,
            local=(_interned(local[0]), local[1]) if local and call.name in ("connect", "accept") else None,
            peer=(_interned(peer[0]), peer[1]) if peer and call.name == "accept" else None,
            outcome=shared_outcome(outcome),
        )


_OUTCOMES: dict[str, str] = {}
OUTCOMES_SHARED = 1024


def shared_outcome(outcome: str) -> str:
    """One string for each of the first OUTCOMES_SHARED outcomes (`= 0` for most notes).

    Not sys.intern: each accept's `= 5123` is an outcome of its own, and the interpreter's table
    of interned strings, grown by 10,000 of them, never shrinks again (2 MB: issue 13).
    """
    shared = _OUTCOMES.get(outcome)
    if shared is not None:
        return shared
    if len(_OUTCOMES) < OUTCOMES_SHARED:
        _OUTCOMES[outcome] = outcome
    return outcome


def _interned(host: Any) -> Any:
    return sys.intern(host) if type(host) is str else host


def observed_note(event: CallObserved, blocked: bool = False) -> CallNote | None:
    """The note for an outside program's returned call (`#> web: accept4(3, ...) = 4 from ...`): its
    sockets are named by its descriptor numbers (`web.4`), as its packets are."""
    if event.pending or not event.name:
        return None
    sockets = [str(fd) for fd in event.fds]
    defines = str(event.defines) if event.defines is not None else None
    if defines is not None:
        sockets.insert(0, defines)
    text = event.text
    outcome = text[text.rfind(") = ") + 2 :] if ") = " in text else ""
    start = event.start_ns
    return CallNote(
        t_ns=start,
        process=event.process,
        text=text,
        sockets=tuple(dict.fromkeys(sockets)),
        name=_LADDER_NAMES.get(event.name, event.name),
        end_ns=start + (event.duration_ns or 0),
        blocked=blocked,
        defines=defines,
        local=event.local if event.name in ("connect", "accept", "accept4") else None,
        peer=event.peer if event.name in ("accept", "accept4") else None,
        outcome=outcome,
    )


# An observed call's name as the ladder knows it (WAITING_CALLS, the lab's own names).
_LADDER_NAMES = {
    "accept4": "accept",
    "recvfrom": "recv",
    "sendto": "send",
    "ppoll": "poll",
    "dup2": "dup",
    "dup3": "dup",
}


def data_preview(data: bytes, total: int) -> str:
    text = quote(data[:24])
    return text + ("…" if total > 24 else "")


def endpoint_text(address: tuple[str, int]) -> str:
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
