"""Turns a parsed step into the concrete arguments a lab process calls with."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING

from playground import calls as P
from playground.addresses import is_loopback
from playground.calls import CALLS
from playground.constants import (
    FAMILIES,
    MSG_FLAGS,
    OPTIONS,
    POLL_EVENTS,
    PROTOCOLS,
    SHUT_HOW,
    SIGNALS,
    SOCKET_KINDS,
    TYPES,
    WAIT_FLAGS,
)
from playground.errors import LabError
from playground.netlab.addressing import host_address
from playground.script.model import (
    Address,
    AddressArg,
    Arg,
    DataArg,
    FlagsArg,
    FloatArg,
    IntArg,
    NameArg,
    PairArg,
    RefArg,
    Step,
)

if TYPE_CHECKING:
    from playground.lab import Lab, Process


def _address(lab: Lab, proc: Process, arg: Arg, call: str) -> Address:
    address: Address | None
    if isinstance(arg, AddressArg):
        address = arg.address
    elif isinstance(arg, RefArg):
        other = lab.process(arg.process)
        address = other.addresses.get(arg.name)
        if address is None:
            raise LabError(f"{arg.process}.{arg.name} has no address yet: bind or connect it first")
        if proc.remote is not None or other.remote is not None:  # seen from another machine
            address = lab.lifecycle.remote_hosts.view(_host(proc), _host(other), address)
    elif isinstance(arg, NameArg):
        address = proc.addresses.get(arg.name)
        if address is None:
            raise LabError(f"{proc.name}'s {arg.name} has no address yet: bind or connect it first")
    else:
        raise LabError(f"expected an address, not {arg}")
    address = lab.lifecycle.remote_hosts.named(address)  # `far:7000`: a remote host where it is reached
    if lab.network.hosts is not None:
        address = host_address(
            lab.network.hosts, lab.processes.get(arg.process) if isinstance(arg, RefArg) else None, address
        )
        if lab.network.hosts.by_address(address.host) is not None:
            return address  # a host of the lab: nothing sent to it leaves the lab's switch
    elif address.host[:1].isalpha():
        raise LabError(f"no host named {address.host!r}: this lab has no hosts")
    # In the lab's private namespace only loopback exists, so a wildcard bind
    # (the usual server idiom) exposes nothing.
    wildcard = call == "bind" and ipaddress.ip_address(address.host).is_unspecified
    if not lab.allow_network and not is_loopback(address.host) and not (wildcard and lab.network.private):
        what = "bind" if call == "bind" else "send to" if call == "sendto" else "connect to"
        raise LabError(
            f"refusing to {what} {address}: sockplay stays on loopback (127.0.0.1, ::1) unless run with --allow-network"
        )
    return address


def _host(proc: Process) -> str | None:
    return proc.remote.host if proc.remote is not None else None


def _word(arg: Arg) -> str:
    """The word of an argument the parser checked is a name (a kind, a constant, a signal)."""
    assert isinstance(arg, NameArg), arg
    return arg.name


def _value(arg: Arg) -> object:
    """The value of an argument the parser checked is a number (or a pair, or data)."""
    assert isinstance(arg, (IntArg, FloatArg, PairArg, DataArg)), arg
    return arg.value


def _flags(arg: Arg, table: dict[str, int]) -> int:
    if isinstance(arg, IntArg):
        return arg.value
    names = arg.names if isinstance(arg, FlagsArg) else (_word(arg),)
    value = 0
    for name in names:
        value |= table[name]
    return value


def _fd(proc: Process, arg: Arg) -> int:
    if isinstance(arg, IntArg):
        return arg.value
    assert isinstance(arg, NameArg)
    fd = proc.names.get(arg.name)
    if fd is None:
        known = ", ".join(sorted(proc.names)) or "none yet"
        raise LabError(f"{proc.name} has no socket named {arg.name!r} (its names: {known})")
    return fd


def resolve_call(lab: Lab, proc: Process, step: Step) -> tuple[str, list, int | None]:
    """(call name, arguments for the lab process, descriptor acted on)."""
    name = step.call.name
    args = list(step.call.args)
    without_fd = _WITHOUT_FD.get(name)
    if without_fd is not None:
        return name, without_fd(lab, proc, step, args), None
    spec = CALLS[name]
    if not (spec.required and spec.required[0] == P.FD):  # pragma: no cover - every other call takes one
        raise LabError(f"{name} is not implemented")
    fd = _fd(proc, args[0])
    with_fd = _WITH_FD.get(name)
    if with_fd is None:  # pragma: no cover
        raise LabError(f"{name} is not implemented")
    return name, [fd, *with_fd(lab, proc, name, args)], fd


# The calls that act on no descriptor: each gives the lab process's arguments.


def _socket(lab: Lab, proc: Process, step: Step, args: list[Arg]) -> list:
    if len(args) == 1:
        family, type_ = SOCKET_KINDS[_word(args[0])]
        return [family, type_, 0]
    family = FAMILIES[_word(args[0])]
    type_ = TYPES[_word(args[1])]
    proto = PROTOCOLS[args[2].name] if len(args) == 3 and isinstance(args[2], NameArg) else 0
    return [family, type_, proto]


def _fork(lab: Lab, proc: Process, step: Step, args: list[Arg]) -> list:
    if step.var is None:
        raise LabError("name the child: child = fork()")
    if step.var in lab.processes:
        raise LabError(f"a process named {step.var!r} already exists; name the child differently")
    return []


def _waitpid(lab: Lab, proc: Process, step: Step, args: list[Arg]) -> list:
    target = args[0]
    if isinstance(target, NameArg):
        child = proc.children.get(target.name)
        if child is None:
            raise LabError(f"{proc.name} has no child named {target.name!r}")
        pid = child.pid
    else:
        assert isinstance(target, IntArg), target  # the parser allows a name or a number
        pid = target.value
    flags = _flags(args[1], WAIT_FLAGS) if len(args) > 1 else 0
    return [pid, flags]


_WITHOUT_FD: dict[str, Callable[[Lab, Process, Step, list[Arg]], list]] = {
    "socket": _socket,
    "fork": _fork,
    "signal": lambda lab, proc, step, args: [SIGNALS[_word(args[0])], _word(args[1])],
    "exit": lambda lab, proc, step, args: [_value(args[0])],
    "waitpid": _waitpid,
}


# The calls on a descriptor: each gives the lab process's arguments after the descriptor.


def _setsockopt(lab: Lab, proc: Process, name: str, args: list[Arg]) -> list:
    option = OPTIONS[_word(args[1])]
    value_arg = args[2]
    if isinstance(value_arg, PairArg):
        value: object = [value_arg.value.first, value_arg.value.second]
    elif isinstance(value_arg, (IntArg, FloatArg)):
        value = value_arg.value
    else:
        raise LabError(f"bad value for {option.name}")
    return [option.level, option.number, option.kind, value]


def _getsockopt(lab: Lab, proc: Process, name: str, args: list[Arg]) -> list:
    option = OPTIONS[_word(args[1])]
    return [option.level, option.number, option.kind]


def _bind_or_connect(lab: Lab, proc: Process, name: str, args: list[Arg]) -> list:
    address = _address(lab, proc, args[1], name)
    return [_family(address), address.host, address.port]


def _sendto(lab: Lab, proc: Process, name: str, args: list[Arg]) -> list:
    address = _address(lab, proc, args[2], name)
    flags = _flags(args[3], MSG_FLAGS) if len(args) > 3 else 0
    return [_data(args[1]), flags, _family(address), address.host, address.port]


def _family(address: Address) -> int:
    return int(socket.AF_INET6 if address.is_ipv6 else socket.AF_INET)


def _optional(args: list[Arg], i: int, default: object) -> object:
    return _value(args[i]) if len(args) > i else default


def _msg_flags(args: list[Arg], i: int) -> int:
    return _flags(args[i], MSG_FLAGS) if len(args) > i else 0


_WITH_FD: dict[str, Callable[[Lab, Process, str, list[Arg]], list]] = {
    "setsockopt": _setsockopt,
    "getsockopt": _getsockopt,
    "fcntl": lambda lab, proc, name, args: [_optional(args, 2, None)],
    "bind": _bind_or_connect,
    "connect": _bind_or_connect,
    "listen": lambda lab, proc, name, args: [_optional(args, 1, 128)],
    **dict.fromkeys(("accept", "getsockname", "getpeername", "close", "dup"), lambda lab, proc, name, args: []),
    "read": lambda lab, proc, name, args: [_value(args[1])],
    "recv": lambda lab, proc, name, args: [_value(args[1]), _msg_flags(args, 2)],
    "recvfrom": lambda lab, proc, name, args: [_value(args[1]), _msg_flags(args, 2)],
    "write": lambda lab, proc, name, args: [_data(args[1])],
    "send": lambda lab, proc, name, args: [_data(args[1]), _msg_flags(args, 2)],
    "sendto": _sendto,
    "writev": lambda lab, proc, name, args: [[_data(a) for a in args[1:]]],
    "shutdown": lambda lab, proc, name, args: [SHUT_HOW[_word(args[1])]],
    "poll": lambda lab, proc, name, args: [_flags(args[1], POLL_EVENTS), _value(args[2])],
}


def _data(arg: Arg) -> bytes:
    assert isinstance(arg, DataArg)
    return bytes(arg.value)  # built here, as the call is sent, and not kept
