"""What the lab reports as it happens: the stream the TUI and recorders follow."""

from __future__ import annotations

from dataclasses import dataclass, field

from playground.script.model import Death, Node, Outcome


@dataclass
class CallResult:
    """One call's outcome with everything measured around it."""

    outcome: Outcome
    errno_number: int | None = None
    start_ns: int = 0  # CLOCK_MONOTONIC, in the process, just before the syscall
    duration_ns: int = 0
    raw: dict = field(default_factory=dict)


@dataclass
class ProcessStarted:
    """A process began: by `spawn` (parent None) or by a `fork` step (parent set)."""

    process: str
    pid: int
    parent: str | None
    t_ns: int
    host: str | None = None  # the host it was spawned on: the network lab's, or a remote one (ssh)


@dataclass
class CallStarted:
    call_id: int
    process: str
    node: Node
    text: str
    t_ns: int
    fd: int | None = None  # the descriptor the call acts on, if any


@dataclass
class CallPending:
    call_id: int
    process: str
    text: str
    t_ns: int


@dataclass
class CallDone:
    call_id: int
    process: str
    node: Node
    text: str
    result: CallResult
    was_pending: bool
    t_ns: int


@dataclass
class SignalCaught:
    """Signals a process caught while none of its calls was running."""

    process: str
    signals: tuple[str, ...]
    t_ns: int


@dataclass
class ProcessEnded:
    """A process exited or was killed; a forked child stays a zombie until reaped."""

    process: str
    pid: int
    death: Death | None
    zombie: bool
    t_ns: int


@dataclass
class ProcessReaped:
    process: str
    pid: int
    by: str | None
    t_ns: int


@dataclass
class DirectiveDone:
    """A `kill` or `sleep` was carried out (a spawn is reported as ProcessStarted)."""

    node: Node
    text: str
    t_ns: int


@dataclass
class PacketsSeen:
    """Packets captured on the lab's network, oldest first (see playground.capture.Packet)."""

    packets: list
    t_ns: int


@dataclass
class Notice:
    """Something sockplay itself says: a refused line, a warning."""

    message: str
    t_ns: int
    level: str = "info"


@dataclass
class RemoteHostConnected:
    """A remote host's ssh connection is up (at its first spawn): what it runs, and the round trip to it."""

    host: str
    destination: str
    kernel: str
    python: str
    rtt_ms: float
    t_ns: int


Event = (
    ProcessStarted
    | CallStarted
    | CallPending
    | CallDone
    | SignalCaught
    | ProcessEnded
    | ProcessReaped
    | DirectiveDone
    | Notice
    | PacketsSeen
    | RemoteHostConnected
)
