"""Sets of descriptors in a script: `{a, c[7]}` and `c[*]` as arguments, `{a: POLLIN, b: read}` as outcomes.

Also the checks of the arguments poll over a set, select and epoll take (registered
with the other argument checks in checks.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from playground import calls as P
from playground.readiness import EPOLL_EVENTS, EPOLL_FLAGS, EPOLL_OPS, MAX_EPOLL_EVENTS, READY_WORDS
from playground.script import indexed
from playground.script.cursor import Cursor
from playground.script.errors import LineError
from playground.script.lexer import Token
from playground.script.model import Arg, FlagsArg, IntArg, NameArg, PairArg, SetArg

# The most members a set written out in braces may have (a family `c[*]` counts as one).
MAX_SET_MEMBERS = 1024


class _Names(Protocol):
    @property
    def fds(self) -> set[str]: ...


class _ScopeIndex(Protocol):
    @property
    def index(self) -> str | None: ...


class _Where(Protocol):  # checks._Where, as these checks read it
    @property
    def actor(self) -> str: ...

    @property
    def proc(self) -> _Names: ...

    @property
    def scope(self) -> _ScopeIndex: ...


def read_set(cursor: Cursor, brace: Token) -> SetArg:
    """`{` read already: `}` or names (`a`, `c[7]`, `c[*]`) or descriptor numbers, separated by commas."""
    members: list[str] = []
    if cursor.at("}"):
        cursor.next()
        return SetArg((), brace.column)
    while True:
        tok = cursor.next()
        if tok is None or tok.kind not in ("name", "int"):
            column = tok.column if tok is not None else cursor.end_column
            raise LineError(column, "expected a descriptor's name in the set, as in {a, c[7]}")
        members.append(tok.text)
        if len(members) > MAX_SET_MEMBERS:
            raise LineError(tok.column, f"a set holds at most {MAX_SET_MEMBERS} names; write a family as c[*]")
        if cursor.at(","):
            cursor.next()
            continue
        cursor.expect("}", "',' or '}' closing the set")
        return SetArg(tuple(members), brace.column)


def read_ready(cursor: Cursor) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """An outcome's ready set after its value: `{a: POLLIN, c[7]: EPOLLIN|EPOLLRDHUP, b: read}` or `{}`."""
    cursor.expect("{", "'{'")
    ready: list[tuple[str, tuple[str, ...]]] = []
    seen: set[str] = set()
    if cursor.at("}"):
        cursor.next()
        return ()
    while True:
        who = cursor.next()
        if who is None or who.kind not in ("name", "int"):
            column = who.column if who is not None else cursor.end_column
            raise LineError(column, "expected a descriptor's name and its events, as in {a: POLLIN}")
        if who.text in seen:
            raise LineError(who.column, f"{who.text} is listed twice")
        seen.add(who.text)
        cursor.expect(":", f"':' and the events of {who.text}")
        events = [_event(cursor)]
        while cursor.at("|"):
            cursor.next()
            events.append(_event(cursor))
        ready.append((who.text, tuple(events)))
        if cursor.at(","):
            cursor.next()
            continue
        cursor.expect("}", "',' or '}' closing the set")
        return tuple(ready)


def _event(cursor: Cursor) -> str:
    tok = cursor.expect("name", "an event, as in POLLIN, EPOLLIN or read")
    if tok.text not in READY_WORDS:
        raise LineError(tok.column, f"{tok.text!r} is not an event (POLLIN, EPOLLIN, EPOLLRDHUP, read, write, ...)")
    return tok.text


def format_set(arg: SetArg) -> str:
    if not arg.braced and len(arg.members) == 1:
        return arg.members[0]
    return "{" + ", ".join(arg.members) + "}"


def format_ready(ready: tuple[tuple[str, tuple[str, ...]], ...]) -> str:
    return "{" + ", ".join(f"{who}: {'|'.join(events)}" for who, events in ready) + "}"


# The argument checks.


def check_member(name: str, column: int, where: _Where) -> None:
    """A name in a set: one of the actor's descriptors, an indexed one, or a family `c[*]`."""
    if name.isdigit() or name in where.proc.fds:
        return
    if "[" in name:
        indexed.check_known(name, column, where.proc.fds, where.scope.index, where.actor, allow_all=True)
        return
    known = indexed.shown(where.proc.fds)
    raise LineError(column, f"{where.actor} has no socket named {name!r} (its names: {known})")


def _fdset(arg: Arg, where: _Where, kind: str) -> Arg:
    """One descriptor (as today), a set `{a, b}`, or a family `c[*]` (made a set)."""
    if isinstance(arg, IntArg):
        return arg
    if isinstance(arg, SetArg):
        for member in arg.members:
            check_member(member, arg.column, where)
        return arg
    if isinstance(arg, PairArg):  # `{3, 4}` reads as a pair of numbers: here it is a set of two descriptors
        return SetArg((str(arg.value.first), str(arg.value.second)), arg.column)
    if isinstance(arg, NameArg):
        check_member(arg.name, arg.column, where)
        if arg.name.endswith("[*]"):
            return SetArg((arg.name,), arg.column, braced=False)
        return arg
    raise LineError(arg.column, "expected a descriptor, a set {a, b} or a family c[*]")


def _epoll_op(arg: Arg, where: _Where, kind: str) -> Arg:
    if isinstance(arg, NameArg) and arg.name in EPOLL_OPS:
        return arg
    raise LineError(arg.column, "expected EPOLL_CTL_ADD, EPOLL_CTL_MOD or EPOLL_CTL_DEL")


def _flags_in(table: dict[str, int], what: str) -> Callable[[Arg, _Where, str], Arg]:
    def check(arg: Arg, where: _Where, kind: str) -> Arg:
        if isinstance(arg, IntArg) and arg.value == 0:
            return FlagsArg((), arg.column)
        names = (arg.name,) if isinstance(arg, NameArg) else arg.names if isinstance(arg, FlagsArg) else None
        if names is None:
            raise LineError(arg.column, f"expected {what}, as in {' | '.join(list(table)[:2])}, or 0")
        for name in names:
            if name not in table:
                raise LineError(arg.column, f"{name!r} is not one of the {what} ({', '.join(table)})")
        return FlagsArg(tuple(names), arg.column)

    return check


def _max_events(arg: Arg, where: _Where, kind: str) -> Arg:
    # 0 and negatives are the kernel's to refuse (EINVAL); a huge MAX is the lab process's room.
    if not isinstance(arg, IntArg) or not -(2**31) <= arg.value <= MAX_EPOLL_EVENTS:
        raise LineError(arg.column, f"epoll_wait's MAX is an integer up to {MAX_EPOLL_EVENTS}")
    return arg


CHECKS: dict[str, Callable[[Arg, _Where, str], Arg]] = {
    P.FDSET: _fdset,
    P.EPOLLOP: _epoll_op,
    P.EPOLLEVENTS: _flags_in(EPOLL_EVENTS, "epoll events"),
    P.EPOLLFLAGS: _flags_in(EPOLL_FLAGS, "epoll_create1 flags"),
    P.MAXEVENTS: _max_events,
}

RESERVED_WORDS = frozenset(EPOLL_EVENTS) | frozenset(EPOLL_OPS) | frozenset(EPOLL_FLAGS)
