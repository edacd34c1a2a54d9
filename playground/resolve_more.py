"""Turns issue 13's further calls into the arguments a lab process calls with (see resolve.py for the rest)."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import TYPE_CHECKING

from playground.constants import FAMILIES, RLIMITS, SOCK_FLAGS, SOCKET_KINDS, TYPES
from playground.errors import LabError
from playground.script.model import Arg, DataArg, FlagsArg, IntArg, NameArg, PairArg, RefArg, Step, UnixAddress

if TYPE_CHECKING:
    from playground.lab import Lab, Process

FdOf = Callable[["Process", Arg], int]


def unix_address(lab: Lab, proc: Process, arg: Arg) -> UnixAddress | None:
    """The AF_UNIX path an address argument names, or None if it names an IP address."""
    if isinstance(arg, DataArg) and lab.lifecycle.unix_dir.problem:
        raise LabError(lab.lifecycle.unix_dir.problem)
    if isinstance(arg, DataArg):
        return UnixAddress(bytes(arg.value).decode("utf-8", "replace"))
    if isinstance(arg, RefArg):
        return lab.process(arg.process).paths.get(arg.name)
    if isinstance(arg, NameArg):
        return proc.paths.get(arg.name)
    return None


def _word(arg: Arg) -> str:
    assert isinstance(arg, NameArg), arg
    return arg.name


def _flags(arg: Arg, table: dict[str, int]) -> int:
    names = arg.names if isinstance(arg, FlagsArg) else (_word(arg),)
    value = 0
    for name in names:
        value |= table[name]
    return value


def _socketpair(lab: Lab, proc: Process, step: Step, args: list[Arg]) -> list:
    if len(args) == 1:
        family, type_ = SOCKET_KINDS[_word(args[0])]
        return [family, type_, 0]
    return [FAMILIES[_word(args[0])], TYPES[_word(args[1])], 0]


def _setrlimit(lab: Lab, proc: Process, step: Step, args: list[Arg]) -> list:
    limits = args[1]
    assert isinstance(limits, PairArg)
    return [RLIMITS[_word(args[0])], limits.value.first, limits.value.second]


WITHOUT_FD: dict[str, Callable[[Lab, Process, Step, list[Arg]], list]] = {
    "getrlimit": lambda lab, proc, step, args: [RLIMITS[_word(args[0])]],
    "setrlimit": _setrlimit,
    "socketpair": _socketpair,
}


def _sizes(args: list[Arg]) -> list[int]:
    sizes = []
    for arg in args:
        assert isinstance(arg, IntArg)
        sizes.append(arg.value)
    return sizes


def with_fd(fd_of: FdOf) -> dict[str, Callable[[Lab, Process, str, list[Arg]], list]]:
    """The calls on a descriptor: each gives the lab process's arguments after the descriptor."""

    def sendmsg(lab: Lab, proc: Process, name: str, args: list[Arg]) -> list:
        data = args[1]
        assert isinstance(data, DataArg)
        return [bytes(data.value), [fd_of(proc, arg) for arg in args[2:]]]

    return {
        "readv": lambda lab, proc, name, args: [_sizes(args[1:])],
        "accept4": lambda lab, proc, name, args: [_flags(args[1], SOCK_FLAGS) if len(args) > 1 else 0],
        "sendmsg": sendmsg,
        "recvmsg": lambda lab, proc, name, args: [_sizes(args[1:2])[0]],
    }


def unix_endpoint(address: UnixAddress) -> list:
    """[family, host, port] as bind, connect and sendto take them: the path in place of the host."""
    if not address.path:
        raise LabError("that AF_UNIX socket has no path")
    return [int(socket.AF_UNIX), address.path, 0]
