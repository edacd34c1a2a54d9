"""Timing claims: `after 30ms` or `within 5ms` at the end of a step, split off before the step is parsed.

A claim is the line's last two words, outside any string; the duration is a
number and a unit with nothing between (ns, us or µs, ms, s).
"""

from __future__ import annotations

import re
from dataclasses import replace

from playground.constants import MAX_SLEEP_SECONDS
from playground.script.errors import LineError
from playground.script.model import Completion, Node, Step, Timing

UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000}
BOUNDS = ("after", "within")

# `after` or `within` as the line's last word or last but one. What follows must begin like a
# number (or be missing), so that a name `after` inside a call, as in `close( after )`, is no claim.
_CLAIM = re.compile(r"(?:^|[ \t])(after|within)(?:[ \t]+([0-9.\-][^ \t\r]*))?[ \t\r]*\Z")
_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)([A-Za-zµ]*)\Z")


def split_timing(body: str) -> tuple[str, Timing | None]:
    """The line without its timing claim, and the claim (None if it has none)."""
    if "after" not in body and "within" not in body:  # most lines: one look, no regex
        return body, None
    m = _CLAIM.search(body)
    if m is None or _inside_string(body, m.start(1)):
        return body, None
    bound, text = m.group(1), m.group(2)
    if text is None and body[: m.start(1)].split() in (["spawn"], ["kill"]):
        return body, None  # a process named so: the parser says the name is reserved
    if text is None:
        raise LineError(m.start(1) + 1, f"'{bound}' needs a duration, as in '{bound} 30ms'")
    column = m.start(2) + 1
    return body[: m.start(1)], Timing(bound, duration_ns(text, column), text, m.start(1) + 1)


def with_timing(node: Node, timing: Timing) -> Node:
    """The step or completion with its claim; any other line (or a step left blocked) cannot have one."""
    if (isinstance(node, Step) and not node.blocks) or isinstance(node, Completion):
        return replace(node, timing=timing)
    where = "the line that states its outcome ('NAME: ... = ...')" if isinstance(node, Step) else "a step"
    raise LineError(timing.column, f"a timing claim ('{timing}') belongs on {where}")


def duration_ns(text: str, column: int) -> int:
    """Nanoseconds of a duration as `30ms`, `0.5s` or `200µs`; LineError at `column` if it is none."""
    m = _DURATION.match(text)
    if m is None:
        raise LineError(column, f"{text!r} is not a duration: a number and a unit, as in 30ms")
    number, unit = m.groups()
    if unit not in UNITS:
        shown = repr(unit) if unit else "no unit"
        raise LineError(column + len(number), f"{shown} is not a unit of time: use ns, us (or µs), ms or s")
    ns = round(float(number) * UNITS[unit])
    if ns > MAX_SLEEP_SECONDS * 1e9:
        raise LineError(column, f"{text} is longer than {MAX_SLEEP_SECONDS:g} seconds")
    return ns


def format_ns(ns: float) -> str:
    """A measured duration, short: `0.2ms`, `41.3ms`, `1.2s`, `850ns`."""
    if ns >= 1e9:
        return f"{ns / 1e9:.3g}s"
    if ns >= 1e5:
        return f"{ns / 1e6:.3g}ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.3g}µs"
    return f"{ns:.0f}ns"


def _inside_string(text: str, at: int) -> bool:
    """Whether text[at] lies inside a string literal."""
    inside = False
    i = 0
    while i < at:
        if inside and text[i] == "\\":
            i += 2
            continue
        if text[i] == '"':
            inside = not inside
        i += 1
    return inside
