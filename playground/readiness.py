"""Readiness over many descriptors: the words of poll over a set, select and epoll, and their outcomes.

A lab process answers `ready: [[fd, bits], ...]` (the ready descriptors with their
events as the kernel gave them); the lab names each descriptor (`c[7]`) and the
outcome lists them with their events by name: `= 2 {a: EPOLLIN, c[7]: EPOLLIN|EPOLLRDHUP}`.
"""

from __future__ import annotations

import select

from playground.constants import POLL_EVENTS

EPOLL_EVENTS: dict[str, int] = {
    "EPOLLIN": select.EPOLLIN,
    "EPOLLPRI": select.EPOLLPRI,
    "EPOLLOUT": select.EPOLLOUT,
    "EPOLLRDHUP": select.EPOLLRDHUP,
    "EPOLLERR": select.EPOLLERR,
    "EPOLLHUP": select.EPOLLHUP,
    "EPOLLET": select.EPOLLET,
    "EPOLLONESHOT": select.EPOLLONESHOT,
    "EPOLLEXCLUSIVE": select.EPOLLEXCLUSIVE,
}
# What epoll_wait reports (the others are only asked for).
EPOLL_REPORTED = ("EPOLLIN", "EPOLLPRI", "EPOLLOUT", "EPOLLRDHUP", "EPOLLERR", "EPOLLHUP")
EPOLL_OPS: dict[str, int] = {"EPOLL_CTL_ADD": 1, "EPOLL_CTL_DEL": 2, "EPOLL_CTL_MOD": 3}
EPOLL_FLAGS: dict[str, int] = {"EPOLL_CLOEXEC": 0o2000000}
# select's sets, as its outcome names them (the bits the lab process reports: worker/readiness.py's do_select).
SELECT_READ, SELECT_WRITE = 1, 2
SELECT_WORDS: dict[str, int] = {"read": SELECT_READ, "write": SELECT_WRITE}
# epoll_wait's MAX: the lab process makes room for this many events at most (worker/readiness.py has its own copy:
# a lab process imports as little as it can).
MAX_EPOLL_EVENTS = 100_000
# Every word that may name an event in a ready set's outcome.
READY_WORDS = frozenset(POLL_EVENTS) | frozenset(EPOLL_EVENTS) | frozenset(SELECT_WORDS)

# The calls whose outcome may be a ready set, and the words for their event bits.
_WORDS_FOR: dict[str, tuple[tuple[str, int], ...]] = {
    "poll": tuple(POLL_EVENTS.items()),
    "epoll_wait": tuple((name, EPOLL_EVENTS[name]) for name in EPOLL_REPORTED),
    "select": tuple(SELECT_WORDS.items()),
}


def event_words(call: str, bits: int) -> tuple[str, ...]:
    """The names of the events set in `bits`, as `call` reports them (a bit without a name as hex)."""
    words = _WORDS_FOR.get(call, ())
    named = tuple(name for name, bit in words if bits & bit)
    rest = bits & ~sum(bit for _, bit in words)
    return named + ((f"{rest:#x}",) if rest else ())


def ready_outcome(call: str, ready: list) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The outcome's ready set from `[[name, bits], ...]`, in name order (indexed names by their number)."""
    out = [(str(who), event_words(call, bits)) for who, bits in ready]
    return tuple(sorted(out, key=lambda item: name_order(item[0])))


def name_order(name: str) -> tuple[str, int, str]:
    """Sorts `c[2]` before `c[10]`."""
    base, _, rest = name.partition("[")
    index = rest[:-1]
    return (base, int(index), "") if index.isdigit() else (base, -1, name)


def valid_ready(value: object) -> bool:
    """Whether a lab process's `ready` is a list of [descriptor, events] pairs of ints."""
    return isinstance(value, list) and all(
        isinstance(item, (list, tuple))
        and len(item) == 2
        and isinstance(item[0], int)
        and isinstance(item[1], int)
        and 0 <= item[1] < 2**32
        for item in value
    )
