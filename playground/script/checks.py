"""What a line may name, checked against what the script has set up so far (its scope)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from playground import calls as P
from playground.calls import CallSpec
from playground.constants import (
    DISPOSITIONS,
    FAMILIES,
    MAX_READ_BYTES,
    MSG_FLAGS,
    O_NONBLOCK_NAME,
    OPTIONS,
    POLL_EVENTS,
    PROTOCOLS,
    SHUT_HOW,
    SIGNALS,
    SOCKET_KINDS,
    TYPES,
    WAIT_FLAGS,
)
from playground.script.errors import LineError
from playground.script.model import AddressArg, Arg, DataArg, FlagsArg, FloatArg, IntArg, NameArg, PairArg, RefArg

PROCESS_NAME = re.compile(r"[a-z][a-z0-9_-]*\Z")
VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
RESERVED = (
    set(OPTIONS)
    | set(SHUT_HOW)
    | set(MSG_FLAGS)
    | set(POLL_EVENTS)
    | set(SIGNALS)
    | set(SOCKET_KINDS)
    | set(FAMILIES)
    | set(TYPES)
    | set(WAIT_FLAGS)
    | set(DISPOSITIONS)
    | {O_NONBLOCK_NAME, "spawn", "kill", "sleep", "repeat", "end", "state", "after", "within"}  # (timing claims)
)


@dataclass
class ProcessScope:
    """What the parser knows of one process: its names and its unstated blocked calls."""

    fds: set[str] = field(default_factory=set)
    children: set[str] = field(default_factory=set)
    blocked: int = 0


@dataclass
class Scope:
    """The processes and names known at a point in a script (or in a live lab)."""

    processes: dict[str, ProcessScope] = field(default_factory=dict)
    default_actor: str | None = None

    def copy(self) -> Scope:
        return Scope(
            {k: ProcessScope(set(v.fds), set(v.children), v.blocked) for k, v in self.processes.items()},
            self.default_actor,
        )


def unknown_process(name: str, scope: Scope) -> str:
    known = ", ".join(sorted(scope.processes)) or "none yet"
    return f"no process named {name!r} (known: {known}); start one with 'spawn {name}'"


def closest(word: str, options: dict[str, object] | set[str]) -> str | None:
    import difflib  # only when there is an error to explain

    match = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return match[0] if match else None


def bind_var(name: str, column: int, spec: CallSpec, actor: str, scope: Scope) -> None:
    if spec.defines is None:
        raise LineError(column, f"{spec.name} returns no socket or process to name")
    if name in RESERVED:
        raise LineError(column, f"{name!r} is a reserved word; choose another name")
    proc = scope.processes[actor]
    if spec.defines == "fd":
        if not VAR_NAME.match(name):
            raise LineError(column, f"{name!r} is not a valid name (letters, digits and '_')")
        proc.fds.add(name)
        return
    if not PROCESS_NAME.match(name):
        raise LineError(column, f"{name!r} cannot name a process: use lowercase letters, digits, '_' and '-'")
    if name in scope.processes:
        raise LineError(column, f"a process named {name!r} already exists; name the child differently")
    scope.processes[name] = ProcessScope(set(proc.fds), set(proc.children), 0)
    proc.children.add(name)


def check_args(spec: CallSpec, args: list[Arg], actor: str, proc: ProcessScope, scope: Scope, end: int) -> list[Arg]:
    """The call's arguments checked against its kinds and the actor's names (some put in their normal form)."""
    if spec.name == "socket":
        return _socket_args(args, end)
    kinds = spec.required + spec.optional
    n_kinds, n_args = len(kinds), len(args)
    variadic = spec.variadic
    if n_args < len(spec.required) or (variadic is None and n_args > n_kinds):
        column = args[n_kinds].column if n_args > n_kinds else end
        raise LineError(column, f"{spec.name} takes {_count(spec)}: {spec.usage}")
    if variadic is not None and n_args > n_kinds:  # writev's DATA, DATA, ...
        kinds += (variadic,) * (n_args - n_kinds)
    checked: list[Arg] = []
    option = None
    for i, arg in enumerate(args):
        kind = kinds[i]
        checked.append(_check_arg(kind, arg, actor, proc, scope, option))
        if kind == P.OPTION:
            option = arg.name  # type: ignore[union-attr]
    return checked


def _count(spec: CallSpec) -> str:
    n = len(spec.required)
    if spec.variadic:
        return f"{n} or more arguments"
    if spec.optional:
        return f"{n} to {n + len(spec.optional)} arguments"
    return "no arguments" if n == 0 else f"{n} argument{'s' if n > 1 else ''}"


def _socket_args(args: list[Arg], end: int) -> list[Arg]:
    if len(args) == 1 and isinstance(args[0], NameArg) and args[0].name in SOCKET_KINDS:
        return args
    if len(args) in (2, 3) and all(isinstance(a, (NameArg, IntArg)) for a in args):
        fam, typ = args[0], args[1]
        if not (isinstance(fam, NameArg) and fam.name in FAMILIES):
            raise LineError(fam.column, "socket family must be AF_INET or AF_INET6")
        if not (isinstance(typ, NameArg) and typ.name in TYPES):
            raise LineError(typ.column, "socket type must be SOCK_STREAM or SOCK_DGRAM")
        if len(args) == 3:
            proto = args[2]
            named = isinstance(proto, NameArg) and proto.name in PROTOCOLS
            if not (named or (isinstance(proto, IntArg) and proto.value == 0)):
                raise LineError(proto.column, "protocol must be 0, IPPROTO_TCP or IPPROTO_UDP")
        return args
    column = args[0].column if args else end
    raise LineError(column, "socket takes a kind: tcp, udp, tcp6, udp6, or AF_INET, SOCK_STREAM and the like")


def _flags(arg: Arg, table: dict[str, int], what: str) -> Arg:
    if isinstance(arg, IntArg) and arg.value == 0:
        return FlagsArg((), arg.column)
    names = (arg.name,) if isinstance(arg, NameArg) else arg.names if isinstance(arg, FlagsArg) else None
    if names is None:
        raise LineError(arg.column, f"expected {what}, as in {' | '.join(list(table)[:2])}, or 0")
    for name in names:
        if name not in table:
            close = closest(name, table)
            hint = f" (did you mean {close}?)" if close else f" ({', '.join(table)})"
            raise LineError(arg.column, f"{name!r} is not one of the {what}{hint}")
    return FlagsArg(tuple(names), arg.column)


_INTEGER_KINDS = frozenset((P.SIZE, P.BACKLOG, P.TIMEOUT, P.STATUS, P.BIT))


def _check_arg(kind: str, arg: Arg, actor: str, proc: ProcessScope, scope: Scope, option: str | None) -> Arg:
    if kind == P.FD:
        if isinstance(arg, IntArg):
            return arg
        if isinstance(arg, NameArg):
            if arg.name not in proc.fds:
                known = ", ".join(sorted(proc.fds)) or "none yet"
                raise LineError(arg.column, f"{actor} has no socket named {arg.name!r} (its names: {known})")
            return arg
        raise LineError(arg.column, "expected a socket name or a descriptor number")
    if kind in _INTEGER_KINDS:
        if not isinstance(arg, IntArg):
            raise LineError(arg.column, f"expected an integer {kind}")
        if kind == P.SIZE and not 0 <= arg.value <= MAX_READ_BYTES:
            raise LineError(arg.column, f"size {arg.value} is out of range (0 to {MAX_READ_BYTES})")
        if kind == P.STATUS and not 0 <= arg.value <= 255:
            raise LineError(arg.column, "exit status must be 0 to 255")
        if kind == P.BIT and arg.value not in (0, 1):
            raise LineError(arg.column, "expected 0 or 1")
        if kind == P.TIMEOUT and arg.value < -1:
            raise LineError(arg.column, "timeout is milliseconds, or -1 to wait forever")
        if kind == P.BACKLOG and not -1 <= arg.value <= 1 << 20:
            raise LineError(arg.column, "backlog is out of range")
        return arg
    if kind == P.DATA:
        if not isinstance(arg, DataArg):
            raise LineError(arg.column, 'expected data, as in "hello\\n" or "x" * 1000')
        return arg
    if kind == P.ADDR:
        if isinstance(arg, AddressArg):
            return arg
        if isinstance(arg, RefArg):
            other = scope.processes.get(arg.process)
            if other is None:
                raise LineError(arg.column, unknown_process(arg.process, scope))
            if arg.name not in other.fds:
                raise LineError(arg.column, f"{arg.process} has no socket named {arg.name!r}")
            return arg
        if isinstance(arg, NameArg):
            if arg.name in proc.fds:
                return arg
            if arg.name in ("localhost",):
                raise LineError(arg.column, "write the address numerically, as in 127.0.0.1:9000")
            raise LineError(
                arg.column,
                f"expected an address (127.0.0.1:9000, [::1]:9000, PROC.VAR); {actor} has no socket named {arg.name!r}",
            )
        raise LineError(arg.column, "expected an address, as in 127.0.0.1:9000, [::1]:9000 or server.l")
    if kind == P.OPTION:
        if isinstance(arg, NameArg) and arg.name in OPTIONS:
            return arg
        name = getattr(arg, "name", None)
        if name == O_NONBLOCK_NAME:
            raise LineError(arg.column, "O_NONBLOCK is a file flag: use fcntl(fd, O_NONBLOCK, 1)")
        close = closest(name, OPTIONS) if name else None
        hint = f"; did you mean {close}?" if close else f" (options: {', '.join(OPTIONS)})"
        raise LineError(arg.column, f"unknown option {name or ''!r}{hint}")
    if kind == P.OPTVAL:
        spec = OPTIONS[option] if option else None
        if spec is not None and spec.readonly:
            raise LineError(arg.column, f"{spec.name} can be read, not set")
        if spec is not None and spec.kind == "linger":
            if not isinstance(arg, PairArg):
                raise LineError(arg.column, "SO_LINGER takes {ON, SECONDS}, as in {1, 0}")
            return arg
        if spec is not None and spec.kind == "timeval":
            if not isinstance(arg, (IntArg, FloatArg)) or arg.value < 0:
                raise LineError(arg.column, f"{spec.name} takes seconds, as in 0.5")
            return arg
        if not isinstance(arg, IntArg):
            raise LineError(arg.column, f"{option} takes an integer, as in 1")
        if not -(2**31) <= arg.value < 2**31:
            raise LineError(arg.column, "value does not fit in a C int")
        return arg
    if kind == P.HOW:
        if isinstance(arg, NameArg) and arg.name in SHUT_HOW:
            return arg
        if isinstance(arg, IntArg) and arg.value in (0, 1, 2):
            return NameArg(list(SHUT_HOW)[arg.value], arg.column)
        raise LineError(arg.column, "expected SHUT_RD, SHUT_WR or SHUT_RDWR")
    if kind == P.MSGFLAGS:
        return _flags(arg, MSG_FLAGS, "message flags")
    if kind == P.EVENTS:
        return _flags(arg, POLL_EVENTS, "poll events")
    if kind == P.WAITFLAGS:
        return _flags(arg, WAIT_FLAGS, "waitpid flags")
    if kind == P.SIGNAL:
        if isinstance(arg, NameArg) and arg.name in SIGNALS:
            if arg.name in ("SIGKILL", "SIGSTOP"):
                raise LineError(arg.column, f"{arg.name} cannot be caught or ignored")
            return arg
        raise LineError(arg.column, "expected a signal name, as in SIGPIPE or SIGCHLD")
    if kind == P.DISPOSITION:
        if isinstance(arg, NameArg) and arg.name in DISPOSITIONS:
            return arg
        raise LineError(arg.column, "expected SIG_DFL, SIG_IGN or catch")
    if kind == P.PID:
        if isinstance(arg, IntArg):
            return arg
        if isinstance(arg, NameArg) and arg.name in proc.children:
            return arg
        raise LineError(arg.column, f"expected a child of {actor} (a name from fork), a pid, or -1")
    if kind == P.NONBLOCK:
        if isinstance(arg, NameArg) and arg.name == O_NONBLOCK_NAME:
            return arg
        raise LineError(arg.column, "fcntl here takes O_NONBLOCK: fcntl(fd, O_NONBLOCK, 1)")
    raise LineError(arg.column, f"unexpected argument kind {kind}")  # pragma: no cover
