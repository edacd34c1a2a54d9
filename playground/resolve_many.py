"""The lab's side of readiness over many descriptors and of data by name.

Turns poll over a set, select and epoll steps into a lab process's arguments
(a family `c[*]` becomes every live name of that family, in index order), names
the descriptors a ready set reports (`c[7]`), and keeps the bytes a read named
(`d = read(a, 100)`) for a later `write(b, d)`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING

from playground import calls as P
from playground.calls import CALLS, NAMES_DATA
from playground.constants import POLL_EVENTS
from playground.errors import LabError
from playground.readiness import EPOLL_EVENTS, EPOLL_FLAGS, EPOLL_OPS, name_order
from playground.script import indexed
from playground.script.data import Data
from playground.script.model import Arg, DataArg, FlagsArg, IntArg, NameArg, SetArg, Step

if TYPE_CHECKING:
    from playground.lab_process import Process

# The bytes all data names of one process may hold together (a script is untrusted input).
MAX_NAMED_DATA = 64 * 1024 * 1024


def _flags(arg: Arg | None, table: dict[str, int]) -> int:
    if arg is None:
        return 0
    if isinstance(arg, IntArg):
        return arg.value
    names = arg.names if isinstance(arg, FlagsArg) else (arg.name,) if isinstance(arg, NameArg) else ()
    value = 0
    for name in names:
        value |= table[name]
    return value


def _int(arg: Arg) -> int:
    assert isinstance(arg, IntArg), arg  # as the parser checked
    return arg.value


def fd_of(proc: Process, name: str) -> int:
    """The descriptor a name (or a number written as one) stands for in this process."""
    if name.lstrip("-").isdigit():
        return int(name)
    fd = proc.names.get(name)
    if fd is None:
        parts = indexed.split(name)
        if parts is not None:
            raise LabError(f"{proc.name} has no socket named {name}: {_family_range(proc, parts[0])}")
        raise LabError(f"{proc.name} has no socket named {name!r}")
    return fd


def _family_range(proc: Process, base: str) -> str:
    indices = sorted(i for i in (_index_in(base, n) for n in proc.names) if i is not None)
    if not indices:
        return f"no name of the family {base}[...] has been given yet"
    return f"the family {base} has {len(indices)} names, {base}[{indices[0]}] to {base}[{indices[-1]}]"


def _index_in(base: str, name: str) -> int | None:
    if not name.startswith(base + "[") or not name.endswith("]"):
        return None
    index = name[len(base) + 1 : -1]
    return int(index) if index.isdigit() else None


def family(proc: Process, base: str) -> list[str]:
    """Every live name of a family, in index order: named, not closed since, its number not taken by a newer name."""
    found = [
        (index, name)
        for name, fd in proc.names.items()
        if (index := _index_in(base, name)) is not None and name not in proc.closed and proc.var_for(fd) == name
    ]
    return [name for _, name in sorted(found)]


def members(proc: Process, arg: Arg) -> list[str]:
    """The names a set argument stands for, each once, in the order written (families expanded)."""
    if isinstance(arg, SetArg):
        written: tuple[str, ...] = arg.members
    elif isinstance(arg, NameArg):
        written = (arg.name,)
    else:
        assert isinstance(arg, IntArg), arg
        written = (str(arg.value),)
    out: dict[str, None] = {}
    for name in written:
        if name.endswith("[*]"):
            base = name[:-3]
            names = family(proc, base)
            if not names:
                raise LabError(f"{proc.name} has no live socket of the family {base}[...]")
            out.update(dict.fromkeys(names))
        else:
            out[name] = None
    return list(out)


def resolve_many(proc: Process, step: Step) -> tuple[str, list, int | None] | None:
    """(lab process call, arguments, descriptor acted on) of poll, select and epoll steps; None for others."""
    name, args = step.call.name, step.call.args
    if name == "poll":
        events = _flags(args[1], POLL_EVENTS)
        if isinstance(args[0], SetArg):
            entries = [[fd_of(proc, member), events] for member in members(proc, args[0])]
            return "poll_many", [entries, _int(args[2])], None
        fd = _fd_arg(proc, args[0])  # one descriptor: its outcome is its revents, as always
        return name, [fd, events, _int(args[2])], fd
    if name == "select":
        reads = [fd_of(proc, m) for m in members(proc, args[0])]
        writes = [fd_of(proc, m) for m in members(proc, args[1])]
        return "select", [reads, writes, _int(args[2])], None
    if name == "epoll_create1":
        return name, [_flags(args[0], EPOLL_FLAGS)], None
    if name == "epoll_ctl":
        epfd = _fd_arg(proc, args[0])
        op = args[1]
        assert isinstance(op, NameArg), op
        fd = _fd_arg(proc, args[2])
        events = _flags(args[3] if len(args) > 3 else None, EPOLL_EVENTS)
        return name, [epfd, EPOLL_OPS[op.name], fd, events], epfd
    if name == "epoll_wait":
        epfd = _fd_arg(proc, args[0])
        return name, [epfd, _int(args[1]), _int(args[2])], epfd
    return None


def _fd_arg(proc: Process, arg: Arg) -> int:
    if isinstance(arg, IntArg):
        return arg.value
    assert isinstance(arg, NameArg), arg
    return fd_of(proc, arg.name)


def name_ready(proc: Process, raw: dict) -> dict:
    """The result with `ready_named`: each reported descriptor by its name (its number if it has none)."""
    if "ready" not in raw:
        return raw
    named = [[proc.var_for(fd) or str(fd), bits] for fd, bits in raw["ready"]]
    named.sort(key=lambda item: name_order(item[0]))
    return {**raw, "ready_named": named}


# Data by name.


def with_named_data(proc: Process, step: Step) -> Step:
    """The step with each data name (`write(b, d)`) replaced by the bytes it names, for sending."""
    spec = CALLS[step.call.name]
    if P.DATA not in spec.required and spec.variadic != P.DATA:
        return step
    kinds = spec.required + spec.optional
    args = list(step.call.args)
    changed = False
    for i, arg in enumerate(args):
        kind = kinds[i] if i < len(kinds) else spec.variadic
        if kind == P.DATA and isinstance(arg, NameArg):
            data = proc.data.get(arg.name)
            if data is None:
                raise LabError(f"{proc.name}'s {arg.name} holds no data: no read has named it yet, or that read failed")
            args[i] = DataArg(Data.of(data), arg.column)
            changed = True
    if not changed:
        return step
    return dataclasses.replace(step, call=dataclasses.replace(step.call, args=tuple(args)))


def on_result(proc: Process, step: Step, raw: dict, notice: Callable[[str, str], None]) -> dict:
    """A call's result as the lab reads it: its ready descriptors named (`c[7]`, not 11), and what it teaches
    learned: the bytes a read named, a name closed (a notice if the data is not kept)."""
    if isinstance(raw.get("ret"), int):  # it returned (the process did not die in it)
        learn(proc, step, raw, notice)
    return name_ready(proc, raw)


def learn(proc: Process, step: Step, raw: dict, notice: Callable[[str, str], None]) -> None:
    """What a returned call teaches: the bytes a read named, a name closed (a notice if the data is not kept)."""
    name, ret = step.call.name, raw["ret"]
    if name == "close" and ret == 0 and step.call.args and isinstance(step.call.args[0], NameArg):
        proc.closed.add(step.call.args[0].name)
    elif step.var is not None and ret >= 0:
        proc.closed.discard(step.var)
    if name not in NAMES_DATA or step.var is None or ret < 0 or "data" not in raw:
        return
    data: bytes = raw["data"]
    held = proc.data_bytes - len(proc.data.pop(step.var, b""))
    if held + len(data) > MAX_NAMED_DATA:
        proc.data_bytes = held
        notice(
            f"{proc.name}'s {step.var} is not kept: its data names would hold {held + len(data)} bytes, "
            f"more than the {MAX_NAMED_DATA} a process may",
            "warning",
        )
        return
    proc.data[step.var] = data
    proc.data_bytes = held + len(data)
