"""The script language's syntax tree: directives, steps and outcomes."""

from __future__ import annotations

from dataclasses import dataclass, field

from playground.script.data import Data


@dataclass(frozen=True, slots=True)  # slots: the lab keeps one per connected socket (10,000 held: issue 13)
class Address:
    """An IPv4 or IPv6 address with a port, as `127.0.0.1:9000` or `[::1]:9000`."""

    host: str
    port: int

    @property
    def is_ipv6(self) -> bool:
        return ":" in self.host

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if self.is_ipv6 else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Pair:
    """Two integers in braces, as SO_LINGER's `{1, 0}`."""

    first: int
    second: int

    def __str__(self) -> str:
        return f"{{{self.first}, {self.second}}}"


@dataclass(frozen=True)
class UnixAddress:
    """An AF_UNIX socket's path: a name in the lab's own directory, written `"srv.sock"`."""

    path: str

    def __str__(self) -> str:
        from playground.script.format import quote  # (format imports this module)

        # C escapes for whatever it holds: a control character written raw would break the line
        return quote(self.path.encode("utf-8", "backslashreplace"))


@dataclass(frozen=True)
class Fields:
    """Named fields in braces, as TCP_INFO's `{state: ESTABLISHED, rtt_us: 31}`."""

    items: tuple[tuple[str, int | str], ...]

    def __str__(self) -> str:
        return "{" + ", ".join(f"{name}: {value}" for name, value in self.items) + "}"


# A call's arguments, each remembering where it was written.


@dataclass(frozen=True)
class IntArg:
    """A number written as an argument (`listen(l, 4096)`), with where it was written."""

    value: int
    column: int = 0


@dataclass(frozen=True)
class FloatArg:
    """A number with a fraction written as an argument (a timeout in seconds)."""

    value: float
    column: int = 0


@dataclass(frozen=True)
class NameArg:
    """A bare identifier: a variable, a constant (SO_REUSEADDR) or a kind (tcp)."""

    name: str
    column: int = 0


@dataclass(frozen=True)
class FlagsArg:
    """Constants joined with `|`, as `MSG_PEEK|MSG_DONTWAIT`."""

    names: tuple[str, ...]
    column: int = 0


@dataclass(frozen=True)
class DataArg:
    """Bytes from string literals, with `* N` repetition and `+` joining, kept as runs until a call sends them."""

    value: Data
    column: int = 0


@dataclass(frozen=True)
class AddressArg:
    """An address written as an argument (`127.0.0.1:7000`)."""

    address: Address
    column: int = 0


@dataclass(frozen=True)
class RefArg:
    """`PROC.VAR`: the address another process's socket is (or was last) bound to."""

    process: str
    name: str
    column: int = 0


@dataclass(frozen=True)
class PairArg:
    """Two integers in braces written as an argument (`SO_LINGER`'s `{1, 0}`)."""

    value: Pair
    column: int = 0


@dataclass(frozen=True)
class SetArg:
    """A set of descriptors by name: `{a, c[7]}`, `{}`, or (not braced) `c[*]`, every name of the family `c`."""

    members: tuple[str, ...]
    column: int = 0
    braced: bool = True


Arg = IntArg | FloatArg | NameArg | FlagsArg | DataArg | AddressArg | RefArg | PairArg | SetArg


@dataclass(frozen=True)
class Call:
    """A call as written: its name and arguments (`connect(c, a.l)`)."""

    name: str
    args: tuple[Arg, ...]
    column: int = 0


# What a call returned: used both for what a script states and what happened.

Value = int | float | Pair | Address | UnixAddress | Fields


@dataclass(frozen=True)
class Death:
    """How a process ended: `exited 0` or `killed SIGPIPE`."""

    how: str  # "exited" | "killed"
    detail: int | str  # exit status, or signal name

    def __str__(self) -> str:
        return f"{self.how} {self.detail}"


@dataclass(frozen=True)
class Outcome:
    """A call's result in the script's terms.

    `value` is the return value (or what getsockopt/getsockname yields);
    `errno` is set when the call failed; `death` when the process ended
    during the call instead of returning.
    """

    value: Value | None = None
    errno: str | None = None
    errno_message: str | None = None
    data: bytes | Data | None = None  # Data as the script states it, bytes as the kernel gave them
    data_length_only: bool = False
    peer: Address | UnixAddress | None = None
    revents: tuple[str, ...] | None = None
    child: Death | None = None
    signals: tuple[str, ...] = ()
    death: Death | None = None
    # poll over a set, select, epoll_wait: each ready descriptor by name, with its events (a set: order is free)
    ready: tuple[tuple[str, tuple[str, ...]], ...] | None = None
    rights: tuple[int, ...] | None = None  # the descriptors recvmsg received (SCM_RIGHTS)


@dataclass(frozen=True)
class Timing:
    """A timing claim ending a step: `after 30ms` (the call took at least that long) or `within 5ms` (at most)."""

    bound: str  # "after" | "within"
    ns: int
    text: str  # the duration as written, as `30ms`
    column: int = 0

    def __str__(self) -> str:
        return f"{self.bound} {self.text}"


# Lines of a script.


@dataclass(frozen=True)
class Spawn:
    """`spawn NAME`: a lab process (on a host, or an outside program with `exec`)."""

    name: str
    delay: float | None = None  # `+DELAY spawn NAME`: seconds after the previous line
    host: str | None = None  # `spawn NAME on HOST`
    # `spawn NAME exec [--trace] COMMAND ARG...`: an outside program (argv as written), under strace if trace
    command: tuple[str, ...] = ()
    trace: bool = False


@dataclass(frozen=True)
class Thread:
    """`thread NAME in PROC`: a new thread (pthread) of that process, an actor of its own."""

    name: str
    process: str
    delay: float | None = None


@dataclass(frozen=True)
class RemoteHost:
    """`host NAME ssh DESTINATION [address A.B.C.D]`: a real machine, reached with the system's ssh."""

    name: str
    destination: str
    address: str | None = None  # where the other side reaches it, if not where ssh reached it
    delay: float | None = None


@dataclass(frozen=True)
class Kill:
    """`kill NAME [SIGNAL]`: a signal sent to a lab process."""

    name: str
    signal: str = "SIGTERM"
    delay: float | None = None


@dataclass(frozen=True)
class Sleep:
    """`sleep SECONDS`: the script waits."""

    seconds: float
    delay: float | None = None


@dataclass(frozen=True)
class Step:
    """`[+DELAY] ACTOR: [VAR =] CALL(...) [= OUTCOME | ...]`."""

    actor: str | None
    call: Call
    var: str | None = None
    expect: Outcome | None = None
    blocks: bool = False
    delay: float | None = None
    outcome_column: int = 0
    timing: Timing | None = None
    more_vars: tuple[str, ...] = ()  # `a, b = socketpair(unix)`: the names after the first (var)


@dataclass(frozen=True)
class Completion:
    """`ACTOR: ... = OUTCOME`: the outcome of that actor's oldest blocked call."""

    actor: str | None
    expect: Outcome | None = None
    delay: float | None = None
    timing: Timing | None = None


@dataclass(frozen=True)
class Repeat:
    """`repeat N` ... `end`: the lines between, run N times in order."""

    count: int
    lines: tuple[Line, ...] = ()
    end_number: int = 0  # the line number of `end`
    trailing: tuple[str, ...] = ()  # comment lines just before `end`
    var: str | None = None  # `repeat N as VAR`: the run's number (0 to N-1) for `NAME[VAR]`


@dataclass(frozen=True)
class Segment:
    """A packet a `~` line expects: endpoints (`proc` or `proc.var`, None for any) and what it is."""

    kind: str  # "TCP", "UDP" or "ICMP"
    src: str | None = None
    dst: str | None = None
    flags: tuple[str, ...] = ()  # TCP flags that must be set (of SYN, FIN, RST, those not listed must not be)
    icmp: str | None = None  # "port-unreachable"
    length: int | None = None
    # `win N`: the window field as sent (unscaled); `win >N` (window_above): more than N.
    window: int | None = None
    window_above: bool = False
    lost: bool = False  # `~ lost ...`: sent, and dropped by the network lab's cable (a cut, loss, a full queue)


@dataclass(frozen=True)
class Wire:
    """`~ ...`: what the previous step put on the wire (checked where capture works).

    `~ client.c > server.a FIN` expects such a segment; `~ nothing` expects no packet at all;
    `~ no RST` expects no segment with that flag.
    """

    segment: Segment | None = None
    nothing: bool = False
    forbid: str | None = None


@dataclass(frozen=True)
class StateCheck:
    """`state PROC.VAR STATE`: the kernel's TCP state for that socket (also once its descriptor is closed);
    `state PROC STATE` (var None): the process's own state, as /proc has it (running, zombie, exited)."""

    process: str
    var: str | None
    state: str  # as TCP_STATES spells it (ESTABLISHED, CLOSE-WAIT, TIME-WAIT, ...) or CLOSED; or a PROCESS_STATES
    delay: float | None = None

    @property
    def subject(self) -> str:
        return self.process if self.var is None else f"{self.process}.{self.var}"


@dataclass(frozen=True)
class Host:
    """`host NAME ADDRESS`: a machine of the network lab, cabled to its switch."""

    name: str
    address: str
    delay: float | None = None


@dataclass(frozen=True)
class Fault:
    """`cut HOST`, `mend HOST`, `crash HOST` or `boot HOST`."""

    kind: str  # one of FAULTS
    host: str
    delay: float | None = None


FAULTS = ("cut", "mend", "crash", "boot")


@dataclass(frozen=True)
class Cable:
    """`cable HOST [in|out] SETTING...` or `cable HOST clear`: the words of the settings, as written."""

    host: str
    direction: str | None  # "in", "out", or None for both
    settings: tuple[str, ...]  # the words after the direction: `delay 100ms loss 5%`, or `clear`
    delay: float | None = None


@dataclass(frozen=True)
class Observed:
    """`#> PROC: CALL = OUTCOME`: a call an outside program made, as its tracer saw it. Shown, never executed."""

    process: str
    text: str  # what follows `PROC: `, control characters escaped


Node = (
    Spawn
    | Kill
    | Sleep
    | Step
    | Completion
    | Repeat
    | Wire
    | StateCheck
    | Thread
    | Host
    | Fault
    | Cable
    | Observed
    | RemoteHost
)


@dataclass(frozen=True)
class Line:
    """One meaningful line of a script, with where it came from."""

    number: int
    node: Node
    text: str
    comment: str | None = None
    leading: tuple[str, ...] = ()  # comment and blank lines just before it, as written


@dataclass
class Script:
    """A whole script: its lines, and the comments around them as written."""

    path: str
    version: int
    lines: list[Line] = field(default_factory=list)
    header_comments: list[str] = field(default_factory=list)  # without their '#'
    header_lines: list[str] = field(default_factory=list)  # comment and blank lines before `sockplay 1`, as written
    trailing: list[str] = field(default_factory=list)  # comment lines after the last line
    truncated: int | None = None  # a cut-off last line that was left out (parse_script(allow_truncated_tail))

    def steps(self) -> list[Line]:
        """Every line, with repeated blocks' lines in place (each once)."""
        out: list[Line] = []
        for line in self.lines:
            out.append(line)
            if isinstance(line.node, Repeat):
                out.extend(line.node.lines)
        return out
