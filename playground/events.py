"""What the lab reports as it happens: the stream the TUI and recorders follow."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
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
    node: Node | None = None  # the spawn line, where it says more than `spawn NAME` (an outside program)
    host: str | None = None  # the host it runs on: the network lab's, or a remote one (None: this machine)


@dataclass
class CallStarted:
    """A call was sent to its process."""

    call_id: int
    process: str
    node: Node
    text: str
    t_ns: int
    fd: int | None = None  # the descriptor the call acts on, if any


@dataclass
class CallPending:
    """A call is blocked in its process (it returns later, or never)."""

    call_id: int
    process: str
    text: str
    t_ns: int


@dataclass
class CallDone:
    """A call returned (or failed), with what the kernel gave it."""

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
    """A lab process's end was collected (waitpid), and by whom."""

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
class CallObserved:
    """A call an outside program made, as its tracer saw it (`#> PROC: TEXT`): reported when it starts
    to block (pending), and when it returned (the same key, so the pending line is completed in place)."""

    key: tuple[int, int]
    process: str  # the program's name, or `NAME[PID]` for a process or thread it started
    text: str  # script syntax: `accept4(3, ...) = 4 from 127.0.0.1:40312`, or `read(4, 100) ...` while pending
    pending: bool
    start_ns: int  # CLOCK_MONOTONIC, from the tracer's clock aligned to the lab's
    duration_ns: int | None
    t_ns: int
    # What the lab learnt from it (playground.outside.sockets): the call's name, the descriptors it acts
    # on, the one it returned (socket, accept, dup), and its socket's ends where they are known.
    name: str = ""
    fds: tuple[int, ...] = ()
    defines: int | None = None
    local: tuple[str, int] | None = None
    peer: tuple[str, int] | None = None

    @property
    def line(self) -> str:
        return f"#> {self.process}: {self.text}"


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
    | CallObserved
    | RemoteHostConnected
)
