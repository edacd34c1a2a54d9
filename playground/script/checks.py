"""What a line may name, checked against what the script has set up so far (its scope)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
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
from playground.script import indexed, sets
from playground.script.errors import LineError
from playground.script.model import AddressArg, Arg, DataArg, FlagsArg, FloatArg, IntArg, NameArg, PairArg, RefArg
from playground.script.more_checks import MORE_CHECKS, check_rights_count, check_unix_path, socketpair_args

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
    | sets.RESERVED_WORDS
)


@dataclass
class ProcessScope:
    """What the parser knows of one process: its names and its unstated blocked calls."""

    fds: set[str] = field(default_factory=set)
    children: set[str] = field(default_factory=set)
    blocked: int = 0
    data: set[str] = field(default_factory=set)  # names of bytes read: `d = read(a, 100)`
    thread_of: str | None = None  # a thread actor: the process whose names (the same sets) it shares
    outside: bool = False  # an outside program (`spawn NAME exec ...`): it takes no steps


@dataclass
class Scope:
    """The processes and names known at a point in a script (or in a live lab)."""

    processes: dict[str, ProcessScope] = field(default_factory=dict)
    default_actor: str | None = None
    hosts: dict[str, str] = field(default_factory=dict)  # `host` lines: name -> address ("ssh" for a remote host)
    index: str | None = None  # the variable of the open `repeat N as VAR` block

    def copy(self) -> Scope:
        processes: dict[str, ProcessScope] = {}
        for k, v in self.processes.items():
            owner = processes.get(v.thread_of) if v.thread_of is not None else None
            if owner is not None:  # a thread shares its process's names: the copy's too
                processes[k] = ProcessScope(
                    owner.fds, owner.children, v.blocked, data=owner.data, thread_of=v.thread_of
                )
            else:
                processes[k] = ProcessScope(
                    set(v.fds), set(v.children), v.blocked, data=set(v.data), thread_of=v.thread_of, outside=v.outside
                )
        return Scope(processes, self.default_actor, dict(self.hosts), self.index)


def unknown_process(name: str, scope: Scope) -> str:
    known = ", ".join(sorted(scope.processes)) or "none yet"
    return f"no process named {name!r} (known: {known}); start one with 'spawn {name}'"


def closest(word: str, options: Iterable[str]) -> str | None:
    import difflib  # only when there is an error to explain

    match = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return match[0] if match else None


def bind_var(name: str, column: int, spec: CallSpec, actor: str, scope: Scope) -> None:
    if spec.name in P.NAMES_DATA:
        _bind_data(name, column, scope.processes[actor], scope.index)
        return
    if spec.defines is None:
        raise LineError(column, f"{spec.name} returns no socket or process to name")
    if name in RESERVED:
        raise LineError(column, f"{name!r} is a reserved word; choose another name")
    proc = scope.processes[actor]
    if spec.defines == "fd":
        if name in proc.data:
            raise LineError(column, f"{name!r} names data read earlier; choose another name")
        if "[" in name:
            indexed.bind(name, column, proc.fds, scope.index)
            return
        if not VAR_NAME.match(name):
            raise LineError(column, f"{name!r} is not a valid name (letters, digits and '_')")
        proc.fds.add(name)
        return
    if not PROCESS_NAME.match(name):
        raise LineError(column, f"{name!r} cannot name a process: use lowercase letters, digits, '_' and '-'")
    if name in scope.processes:
        raise LineError(column, f"a process named {name!r} already exists; name the child differently")
    scope.processes[name] = ProcessScope(set(proc.fds), set(proc.children), 0, data=set(proc.data))
    proc.children.add(name)


def _bind_data(name: str, column: int, proc: ProcessScope, index: str | None) -> None:
    """`d = read(a, 100)`: `d` names the bytes read, for a later write(b, d)."""
    if name in RESERVED:
        raise LineError(column, f"{name!r} is a reserved word; choose another name")
    if name in proc.fds:
        raise LineError(column, f"{name!r} names a socket; name the data differently")
    if "[" in name:
        indexed.check_index(name, column, index)
    elif not VAR_NAME.match(name):
        raise LineError(column, f"{name!r} is not a valid name (letters, digits and '_')")
    proc.data.add(name)


def check_args(spec: CallSpec, args: list[Arg], actor: str, proc: ProcessScope, scope: Scope, end: int) -> list[Arg]:
    """The call's arguments checked against its kinds and the actor's names (some put in their normal form)."""
    if spec.name == "socket":
        return _socket_args(args, end)
    if spec.name == "socketpair":
        return socketpair_args(args, end)
    check_rights_count(spec, args)
    kinds = spec.required + spec.optional
    n_kinds, n_args = len(kinds), len(args)
    variadic = spec.variadic
    if n_args < len(spec.required) or (variadic is None and n_args > n_kinds):
        column = args[n_kinds].column if n_args > n_kinds else end
        raise LineError(column, f"{spec.name} takes {_count(spec)}: {spec.usage}")
    if variadic is not None and n_args > n_kinds:  # writev's DATA, DATA, ...
        kinds += (variadic,) * (n_args - n_kinds)
    checked: list[Arg] = []
    where = _Where(actor, proc, scope)
    for kind, arg in zip(kinds, args, strict=False):
        check = _CHECKS.get(kind)
        if check is None:  # pragma: no cover
            raise LineError(arg.column, f"unexpected argument kind {kind}")
        checked.append(check(arg, where, kind))
        if kind == P.OPTION:
            assert isinstance(arg, NameArg)  # _check_option took it
            where.option = arg.name
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
            raise LineError(fam.column, "socket family must be AF_INET, AF_INET6 or AF_UNIX")
        if not (isinstance(typ, NameArg) and typ.name in TYPES):
            raise LineError(typ.column, "socket type must be SOCK_STREAM or SOCK_DGRAM")
        if len(args) == 3:
            proto = args[2]
            named = isinstance(proto, NameArg) and proto.name in PROTOCOLS
            if not (named or (isinstance(proto, IntArg) and proto.value == 0)):
                raise LineError(proto.column, "protocol must be 0, IPPROTO_TCP or IPPROTO_UDP")
        return args
    column = args[0].column if args else end
    raise LineError(
        column, "socket takes a kind: tcp, udp, tcp6, udp6, unix, unix_dgram, or AF_INET, SOCK_STREAM and the like"
    )


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


class _Where:
    """What an argument is checked against: the actor, its names, the script's processes, the option set."""

    __slots__ = ("actor", "proc", "scope", "option")

    def __init__(self, actor: str, proc: ProcessScope, scope: Scope) -> None:
        self.actor = actor
        self.proc = proc
        self.scope = scope
        self.option: str | None = None  # setsockopt's option, once its argument is checked


def _fd(arg: Arg, where: _Where, kind: str) -> Arg:
    if isinstance(arg, IntArg):
        return arg
    if isinstance(arg, NameArg):
        if arg.name not in where.proc.fds:
            if "[" in arg.name:
                indexed.check_known(arg.name, arg.column, where.proc.fds, where.scope.index, where.actor)
                return arg
            known = indexed.shown(where.proc.fds)
            raise LineError(arg.column, f"{where.actor} has no socket named {arg.name!r} (its names: {known})")
        return arg
    raise LineError(arg.column, "expected a socket name or a descriptor number")


# The range each integer kind allows, and what to say when a value is outside it.
_INTEGER_RANGES: dict[str, tuple[Callable[[int], bool], str]] = {
    P.SIZE: (lambda v: 0 <= v <= MAX_READ_BYTES, f"size {{value}} is out of range (0 to {MAX_READ_BYTES})"),
    P.STATUS: (lambda v: 0 <= v <= 255, "exit status must be 0 to 255"),
    P.BIT: (lambda v: v in (0, 1), "expected 0 or 1"),
    P.TIMEOUT: (lambda v: v >= -1, "timeout is milliseconds, or -1 to wait forever"),
    P.BACKLOG: (lambda v: -1 <= v <= 1 << 20, "backlog is out of range"),
}


def _integer(arg: Arg, where: _Where, kind: str) -> Arg:
    if not isinstance(arg, IntArg):
        raise LineError(arg.column, f"expected an integer {kind}")
    allowed, message = _INTEGER_RANGES[kind]
    if not allowed(arg.value):
        raise LineError(arg.column, message.format(value=arg.value))
    return arg


def _data(arg: Arg, where: _Where, kind: str) -> Arg:
    if isinstance(arg, NameArg) and arg.name in where.proc.data:
        return arg  # bytes a read named
    if isinstance(arg, NameArg) and "[" in arg.name and _known_data(arg.name, arg.column, where):
        return arg
    if not isinstance(arg, DataArg):
        raise LineError(arg.column, 'expected data, as in "hello\\n" or "x" * 1000')
    return arg


def _known_data(name: str, column: int, where: _Where) -> bool:
    """An indexed data name (`d[i]`, `d[3]`) whose family a read has named."""
    base, _ = indexed.check_index(name, column, where.scope.index)
    return any(n.startswith(base + "[") for n in where.proc.data)


def _address(arg: Arg, where: _Where, kind: str) -> Arg:
    if isinstance(arg, AddressArg):
        if arg.address.host[:1].isalpha() and arg.address.host not in where.scope.hosts:  # HOST:PORT
            known = ", ".join(sorted(where.scope.hosts)) or "none yet"
            raise LineError(arg.column, f"no host named {arg.address.host!r} (known: {known})")
        return arg
    if isinstance(arg, DataArg):  # an AF_UNIX socket's path, as in "srv.sock"
        return check_unix_path(arg)
    if isinstance(arg, RefArg):
        other = where.scope.processes.get(arg.process)
        if other is None:
            raise LineError(arg.column, unknown_process(arg.process, where.scope))
        if arg.name not in other.fds:
            if "[" in arg.name:
                indexed.check_known(arg.name, arg.column, other.fds, where.scope.index, arg.process)
                return arg
            raise LineError(arg.column, f"{arg.process} has no socket named {arg.name!r}")
        return arg
    if isinstance(arg, NameArg):
        if arg.name in where.proc.fds:
            return arg
        if "[" in arg.name:
            indexed.check_known(arg.name, arg.column, where.proc.fds, where.scope.index, where.actor)
            return arg
        if arg.name in ("localhost",):
            raise LineError(arg.column, "write the address numerically, as in 127.0.0.1:9000")
        raise LineError(
            arg.column,
            "expected an address (127.0.0.1:9000, [::1]:9000, PROC.VAR); "
            f"{where.actor} has no socket named {arg.name!r}",
        )
    raise LineError(arg.column, "expected an address, as in 127.0.0.1:9000, [::1]:9000 or server.l")


def _option(arg: Arg, where: _Where, kind: str) -> Arg:
    if isinstance(arg, NameArg) and arg.name in OPTIONS:
        return arg
    name = getattr(arg, "name", None)
    if name == O_NONBLOCK_NAME:
        raise LineError(arg.column, "O_NONBLOCK is a file flag: use fcntl(fd, O_NONBLOCK, 1)")
    close = closest(name, OPTIONS) if name else None
    hint = f"; did you mean {close}?" if close else f" (options: {', '.join(OPTIONS)})"
    raise LineError(arg.column, f"unknown option {name or ''!r}{hint}")


def _option_value(arg: Arg, where: _Where, kind: str) -> Arg:
    spec = OPTIONS[where.option] if where.option else None
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
        raise LineError(arg.column, f"{where.option} takes an integer, as in 1")
    if not -(2**31) <= arg.value < 2**31:
        raise LineError(arg.column, "value does not fit in a C int")
    return arg


def _how(arg: Arg, where: _Where, kind: str) -> Arg:
    if isinstance(arg, NameArg) and arg.name in SHUT_HOW:
        return arg
    if isinstance(arg, IntArg) and arg.value in (0, 1, 2):
        return NameArg(list(SHUT_HOW)[arg.value], arg.column)
    raise LineError(arg.column, "expected SHUT_RD, SHUT_WR or SHUT_RDWR")


def _signal(arg: Arg, where: _Where, kind: str) -> Arg:
    if isinstance(arg, NameArg) and arg.name in SIGNALS:
        if arg.name in ("SIGKILL", "SIGSTOP"):
            raise LineError(arg.column, f"{arg.name} cannot be caught or ignored")
        return arg
    raise LineError(arg.column, "expected a signal name, as in SIGPIPE or SIGCHLD")


def _disposition(arg: Arg, where: _Where, kind: str) -> Arg:
    if isinstance(arg, NameArg) and arg.name in DISPOSITIONS:
        return arg
    raise LineError(arg.column, "expected SIG_DFL, SIG_IGN or catch")


def _pid(arg: Arg, where: _Where, kind: str) -> Arg:
    if isinstance(arg, IntArg):
        return arg
    if isinstance(arg, NameArg) and arg.name in where.proc.children:
        return arg
    raise LineError(arg.column, f"expected a child of {where.actor} (a name from fork), a pid, or -1")


def _nonblock(arg: Arg, where: _Where, kind: str) -> Arg:
    if isinstance(arg, NameArg) and arg.name == O_NONBLOCK_NAME:
        return arg
    raise LineError(arg.column, "fcntl here takes O_NONBLOCK: fcntl(fd, O_NONBLOCK, 1)")


def _flags_of(table: dict[str, int], what: str) -> Callable[[Arg, _Where, str], Arg]:
    return lambda arg, where, kind: _flags(arg, table, what)


# Each argument kind (calls.py) and the function that checks an argument of that kind.
_CHECKS: dict[str, Callable[[Arg, _Where, str], Arg]] = {
    P.FD: _fd,
    **dict.fromkeys(_INTEGER_KINDS, _integer),
    P.DATA: _data,
    P.ADDR: _address,
    P.OPTION: _option,
    P.OPTVAL: _option_value,
    P.HOW: _how,
    P.MSGFLAGS: _flags_of(MSG_FLAGS, "message flags"),
    P.EVENTS: _flags_of(POLL_EVENTS, "poll events"),
    P.WAITFLAGS: _flags_of(WAIT_FLAGS, "waitpid flags"),
    P.SIGNAL: _signal,
    P.DISPOSITION: _disposition,
    P.PID: _pid,
    P.NONBLOCK: _nonblock,
    **sets.CHECKS,
}
_CHECKS.update(MORE_CHECKS)
