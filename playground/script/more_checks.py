"""Checks of the arguments issue 13's further calls take: limits, accept4's flags, AF_UNIX paths, rights."""

from __future__ import annotations

from playground import calls as P
from playground.constants import MAX_RIGHTS, RLIM_INFINITY, RLIMITS, SOCK_FLAGS, TYPES, UNIX_PATH_MAX
from playground.script.errors import LineError
from playground.script.model import Arg, DataArg, FlagsArg, IntArg, NameArg, PairArg

UNIX_KINDS = ("unix", "unix_dgram")


def check_resource(arg: Arg) -> Arg:
    if isinstance(arg, NameArg) and arg.name in RLIMITS:
        return arg
    raise LineError(arg.column, f"expected a resource: {', '.join(RLIMITS)}")


def check_limits(arg: Arg) -> Arg:
    if not isinstance(arg, PairArg):
        raise LineError(arg.column, "expected {SOFT, HARD}, as in {1024, 4096}")
    for value in (arg.value.first, arg.value.second):
        if not 0 <= value <= RLIM_INFINITY:
            raise LineError(arg.column, f"a limit is 0 to {RLIM_INFINITY} (RLIM_INFINITY)")
    return arg


def check_sock_flags(arg: Arg) -> Arg:
    if isinstance(arg, IntArg) and arg.value == 0:
        return FlagsArg((), arg.column)
    names = (arg.name,) if isinstance(arg, NameArg) else arg.names if isinstance(arg, FlagsArg) else None
    if names is None or any(name not in SOCK_FLAGS for name in names):
        raise LineError(arg.column, "expected SOCK_NONBLOCK, SOCK_CLOEXEC (joined with '|'), or 0")
    return FlagsArg(tuple(names), arg.column)


def unix_path_problem(path: bytes) -> str | None:
    """Why a script's AF_UNIX path is refused, or None: a plain name inside the lab's own directory."""
    if not path:
        return "an AF_UNIX path cannot be empty"
    if b"\0" in path:
        return "an AF_UNIX path cannot hold a NUL byte (the abstract namespace is not the lab's)"
    if b"/" in path:
        return "an AF_UNIX path is a name in the lab's own directory: no '/' (so no absolute path, no '..')"
    if path in (b".", b".."):
        return f"{path.decode()!r} is a directory, not a name for a socket"
    if len(path) > UNIX_PATH_MAX:
        return f"an AF_UNIX path is at most {UNIX_PATH_MAX} bytes (sun_path), this one {len(path)}"
    return None


def check_unix_path(arg: DataArg) -> DataArg:
    if len(arg.value) > UNIX_PATH_MAX:
        raise LineError(arg.column, f"an AF_UNIX path is at most {UNIX_PATH_MAX} bytes (sun_path)")
    problem = unix_path_problem(bytes(arg.value))
    if problem is not None:
        raise LineError(arg.column, problem)
    return arg


def socketpair_args(args: list[Arg], end: int) -> list[Arg]:
    """socketpair takes an AF_UNIX kind: `unix`, `unix_dgram`, or AF_UNIX, SOCK_STREAM|SOCK_DGRAM [, 0]."""
    if len(args) == 1 and isinstance(args[0], NameArg) and args[0].name in UNIX_KINDS:
        return args
    if 2 <= len(args) <= 3 and all(isinstance(a, (NameArg, IntArg)) for a in args):
        fam, typ = args[0], args[1]
        if not (isinstance(fam, NameArg) and fam.name == "AF_UNIX"):
            raise LineError(fam.column, "socketpair makes AF_UNIX sockets only")
        if not (isinstance(typ, NameArg) and typ.name in TYPES):
            raise LineError(typ.column, "socket type must be SOCK_STREAM or SOCK_DGRAM")
        if len(args) == 3 and not (isinstance(args[2], IntArg) and args[2].value == 0):
            raise LineError(args[2].column, "an AF_UNIX socket's protocol is 0")
        return args
    column = args[0].column if args else end
    raise LineError(column, "socketpair takes unix, unix_dgram, or AF_UNIX, SOCK_STREAM and the like")


def check_rights_count(spec: P.CallSpec, args: list[Arg]) -> None:
    if spec.name == "sendmsg" and len(args) - 2 > MAX_RIGHTS:
        raise LineError(args[2 + MAX_RIGHTS].column, f"sendmsg passes at most {MAX_RIGHTS} descriptors")


MORE_CHECKS = {
    P.RESOURCE: lambda arg, where, kind: check_resource(arg),
    P.LIMITS: lambda arg, where, kind: check_limits(arg),
    P.SOCKFLAGS: lambda arg, where, kind: check_sock_flags(arg),
}
