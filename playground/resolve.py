"""Turns a parsed step into the concrete arguments a lab process calls with."""

from __future__ import annotations

import ipaddress
import socket
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
    if isinstance(arg, AddressArg):
        address = arg.address
    elif isinstance(arg, RefArg):
        other = lab.process(arg.process)
        address = other.addresses.get(arg.name)  # type: ignore[assignment]
        if address is None:
            raise LabError(f"{arg.process}.{arg.name} has no address yet: bind or connect it first")
    elif isinstance(arg, NameArg):
        address = proc.addresses.get(arg.name)  # type: ignore[assignment]
        if address is None:
            raise LabError(f"{proc.name}'s {arg.name} has no address yet: bind or connect it first")
    else:
        raise LabError(f"expected an address, not {arg}")
    # In the lab's private namespace only loopback exists, so a wildcard bind
    # (the usual server idiom) exposes nothing.
    wildcard = call == "bind" and ipaddress.ip_address(address.host).is_unspecified
    if not lab.allow_network and not is_loopback(address.host) and not (wildcard and lab.network.private):
        what = "bind" if call == "bind" else "send to" if call == "sendto" else "connect to"
        raise LabError(
            f"refusing to {what} {address}: sockplay stays on loopback (127.0.0.1, ::1) unless run with --allow-network"
        )
    return address


def _flags(arg: Arg, table: dict[str, int]) -> int:
    if isinstance(arg, IntArg):
        return arg.value
    names = arg.names if isinstance(arg, FlagsArg) else (arg.name,)  # type: ignore[union-attr]
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
    call = step.call
    spec = CALLS[call.name]
    args = list(call.args)
    name = call.name
    if name == "socket":
        if len(args) == 1:
            family, type_ = SOCKET_KINDS[args[0].name]  # type: ignore[union-attr]
            proto = 0
        else:
            family = FAMILIES[args[0].name]  # type: ignore[union-attr]
            type_ = TYPES[args[1].name]  # type: ignore[union-attr]
            proto = 0
            if len(args) == 3 and isinstance(args[2], NameArg):
                proto = PROTOCOLS[args[2].name]
        return name, [family, type_, proto], None
    if name == "fork":
        if step.var is None:
            raise LabError("name the child: child = fork()")
        if step.var in lab.processes:
            raise LabError(f"a process named {step.var!r} already exists; name the child differently")
        return name, [], None
    if name == "signal":
        return name, [SIGNALS[args[0].name], args[1].name], None  # type: ignore[union-attr]
    if name == "exit":
        return name, [args[0].value], None  # type: ignore[union-attr]
    if name == "waitpid":
        target = args[0]
        if isinstance(target, NameArg):
            child = proc.children.get(target.name)
            if child is None:
                raise LabError(f"{proc.name} has no child named {target.name!r}")
            pid = child.pid
        else:
            pid = target.value  # type: ignore[union-attr]
        flags = _flags(args[1], WAIT_FLAGS) if len(args) > 1 else 0
        return name, [pid, flags], None
    if spec.required and spec.required[0] == P.FD:
        fd = _fd(proc, args[0])
    else:  # pragma: no cover - every other call starts with a descriptor
        fd = None
    if name == "setsockopt":
        option = OPTIONS[args[1].name]  # type: ignore[union-attr]
        value_arg = args[2]
        if isinstance(value_arg, PairArg):
            value: object = [value_arg.value.first, value_arg.value.second]
        elif isinstance(value_arg, (IntArg, FloatArg)):
            value = value_arg.value
        else:
            raise LabError(f"bad value for {option.name}")
        return name, [fd, option.level, option.number, option.kind, value], fd
    if name == "getsockopt":
        option = OPTIONS[args[1].name]  # type: ignore[union-attr]
        return name, [fd, option.level, option.number, option.kind], fd
    if name == "fcntl":
        bit = args[2].value if len(args) > 2 else None  # type: ignore[union-attr]
        return name, [fd, bit], fd
    if name in ("bind", "connect"):
        address = _address(lab, proc, args[1], name)
        family = int(socket.AF_INET6 if address.is_ipv6 else socket.AF_INET)
        return name, [fd, family, address.host, address.port], fd
    if name == "listen":
        backlog = args[1].value if len(args) > 1 else 128  # type: ignore[union-attr]
        return name, [fd, backlog], fd
    if name in ("accept", "getsockname", "getpeername", "close", "dup"):
        return name, [fd], fd
    if name == "read":
        return name, [fd, args[1].value], fd  # type: ignore[union-attr]
    if name in ("recv", "recvfrom"):
        flags = _flags(args[2], MSG_FLAGS) if len(args) > 2 else 0
        return name, [fd, args[1].value, flags], fd  # type: ignore[union-attr]
    if name == "write":
        return name, [fd, _data(args[1])], fd
    if name == "send":
        flags = _flags(args[2], MSG_FLAGS) if len(args) > 2 else 0
        return name, [fd, _data(args[1]), flags], fd
    if name == "sendto":
        address = _address(lab, proc, args[2], name)
        flags = _flags(args[3], MSG_FLAGS) if len(args) > 3 else 0
        family = int(socket.AF_INET6 if address.is_ipv6 else socket.AF_INET)
        return name, [fd, _data(args[1]), flags, family, address.host, address.port], fd
    if name == "writev":
        return name, [fd, [_data(a) for a in args[1:]]], fd
    if name == "shutdown":
        return name, [fd, SHUT_HOW[args[1].name]], fd  # type: ignore[union-attr]
    if name == "poll":
        return name, [fd, _flags(args[1], POLL_EVENTS), args[2].value], fd  # type: ignore[union-attr]
    raise LabError(f"{name} is not implemented")  # pragma: no cover


def _data(arg: Arg) -> bytes:
    assert isinstance(arg, DataArg)
    return bytes(arg.value)  # built here, as the call is sent, and not kept
