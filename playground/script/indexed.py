"""Indexed names: `s[i]` in a `repeat N as i` block, `s[7]` anywhere, `s[*]` for every name of the family.

To the parser an indexed name is one name token (`s[7]`); a family `s` is known once
any `s[...]` is named. Inside a `repeat N as i` block the index variable stands for
the run's number: each run carries out its lines with `[i]` replaced by that number
(`at_index`), so everything after the parser (the lab, the outcomes, recordings,
`--json`) sees ordinary names such as `s[7]`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable

from playground.script.errors import LineError
from playground.script.model import (
    Arg,
    Completion,
    Line,
    NameArg,
    Node,
    Outcome,
    RefArg,
    Segment,
    SetArg,
    StateCheck,
    Step,
    Wire,
)

# The largest index a name may have: a repeat block has at most 100,000 runs (parser.MAX_REPEAT).
MAX_INDEX = 99_999
INDEXED = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\[([0-9]+|[A-Za-z_][A-Za-z0-9_]*|\*)\]\Z")
ALL = "*"


def split(name: str) -> tuple[str, str] | None:
    """(family, index as written) of an indexed name, or None for a plain one."""
    if "[" not in name:
        return None
    match = INDEXED.match(name)
    return (match.group(1), match.group(2)) if match else None


def family_marker(base: str) -> str:
    """The entry a scope keeps for a family once any of its names is bound."""
    return f"{base}[]"


def knows_family(base: str, names: Iterable[str]) -> bool:
    marker = family_marker(base)
    prefix = base + "["
    return any(n == marker or n.startswith(prefix) for n in names)


def check_index(name: str, column: int, index_var: str | None, allow_all: bool = False) -> tuple[str, str]:
    """The (family, index) of an indexed name written where it may stand, or LineError saying why not."""
    parts = split(name)
    if parts is None:
        raise LineError(column, f"{name!r} is not a name, as in s, s[7] or s[i]")
    base, index = parts
    if index == ALL:
        if not allow_all:
            raise LineError(
                column, f"{name} is a set of descriptors: it goes where a set does, as in poll({name}, POLLIN, 0)"
            )
    elif index.isdigit():
        if int(index) > MAX_INDEX:
            raise LineError(column, f"index {index} is out of range (0 to {MAX_INDEX})")
    elif index != index_var:
        where = f"'repeat N as {index_var}' numbers the runs here" if index_var else "no 'repeat N as VAR' is open here"
        raise LineError(column, f"{index!r} is not the index of this block ({where}); write a number, as in {base}[0]")
    return base, index


def check_known(
    name: str, column: int, names: set[str], index_var: str | None, owner: str, allow_all: bool = False
) -> None:
    """An indexed name used as a socket: its index may stand here and its family has been named."""
    base, _ = check_index(name, column, index_var, allow_all)
    if name in names or family_marker(base) in names or knows_family(base, names):
        return
    raise LineError(column, f"{owner} has no socket named {name!r} (no name of the family {base}[...] yet)")


def bind(name: str, column: int, names: set[str], index_var: str | None) -> None:
    """`s[i] = ...`: the name and its family become known."""
    base, index = check_index(name, column, index_var)
    if index.isdigit():  # `s[i]` stands for every run's own name: the family alone is known
        names.add(name)
    names.add(family_marker(base))


def is_marker(name: str) -> bool:
    return name.endswith("[]")


def shown(names: Iterable[str]) -> str:
    """The names a process has, for a message: a family as `c[...]`."""
    return ", ".join(sorted(f"{n[:-2]}[...]" if is_marker(n) else n for n in names)) or "none yet"


# Each run of a `repeat N as VAR` block: its lines with `[VAR]` replaced by the run's number.


def mentions(line: Line, var: str) -> bool:
    return f"[{var}]" in line.text


def at_index(line: Line, var: str, index: int) -> Line:
    """The line as run number `index` (0-based) of its block carries it out."""
    if not mentions(line, var):
        return line
    rename = _Rename(f"[{var}]", f"[{index}]")
    return Line(line.number, rename.node(line.node), line.text, line.comment, line.leading)


class _Rename:
    """Replaces `[VAR]` with `[N]` in every name a line holds."""

    __slots__ = ("old", "new")

    def __init__(self, old: str, new: str) -> None:
        self.old, self.new = old, new

    def name(self, text: str) -> str:
        return text.replace(self.old, self.new) if self.old in text else text

    def maybe(self, text: str | None) -> str | None:
        return None if text is None else self.name(text)

    def node(self, node: Node) -> Node:
        if isinstance(node, Step):
            args = tuple(self.arg(arg) for arg in node.call.args)
            call = node.call if args == node.call.args else dataclasses.replace(node.call, args=args)
            return dataclasses.replace(node, call=call, var=self.maybe(node.var), expect=self.outcome(node.expect))
        if isinstance(node, Completion):
            return dataclasses.replace(node, expect=self.outcome(node.expect))
        if isinstance(node, StateCheck):
            return dataclasses.replace(node, var=self.maybe(node.var))
        if isinstance(node, Wire) and node.segment is not None:
            seg: Segment = node.segment
            return dataclasses.replace(
                node, segment=dataclasses.replace(seg, src=self.maybe(seg.src), dst=self.maybe(seg.dst))
            )
        return node

    def arg(self, arg: Arg) -> Arg:
        if isinstance(arg, (NameArg, RefArg)):
            return dataclasses.replace(arg, name=self.name(arg.name)) if self.old in arg.name else arg
        if isinstance(arg, SetArg):
            return dataclasses.replace(arg, members=tuple(self.name(m) for m in arg.members))
        return arg

    def outcome(self, outcome: Outcome | None) -> Outcome | None:
        if outcome is None or not outcome.ready or not any(self.old in who for who, _ in outcome.ready):
            return outcome
        return dataclasses.replace(outcome, ready=tuple((self.name(who), events) for who, events in outcome.ready))
