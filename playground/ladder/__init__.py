"""The ladder diagram: one TCP connection as every textbook draws it.

Two columns, one per endpoint (`client.c`, `server.a`); an arrow per segment,
labelled with its flags, relative seq/ack and payload length; the calls that
caused them written beside their column at the time they were made; and each
side's TCP state between the arrows, inferred with RFC 793's state machine
from the segments that side sent and received, and corrected by the kernel's
own view (sock_diag samples) where one is given.

Plain data, no UI: `build_ladder` / `build_ladders` from captured packets and
the lab's CallDone events; `LadderSet` does the same incrementally (rows are
appended as packets and calls arrive; `Ladder.take_changes()` says from which
row a view must redraw); `LadderRecorder` attaches to a live lab;
`ladder_text` and `ladder_svg` draw a ladder.

Times are CLOCK_MONOTONIC nanoseconds, the event log's clock, shown as
milliseconds since the lab's t0.
"""

from __future__ import annotations

from playground.ladder.builder import LadderBuilder
from playground.ladder.connections import (
    Connection,
    LadderSet,
    build_ladder,
    build_ladders,
    connections,
    samples_from_inspect,
    samples_from_kernel,
)
from playground.ladder.model import CallNote, Column, Ladder, Row
from playground.ladder.recorder import LadderRecorder
from playground.ladder.states import infer, segment_label
from playground.ladder.svg import ladder_svg
from playground.ladder.text import ladder_text

__all__ = [
    "CallNote",
    "Column",
    "Connection",
    "Ladder",
    "LadderBuilder",
    "LadderRecorder",
    "LadderSet",
    "Row",
    "build_ladder",
    "build_ladders",
    "connections",
    "infer",
    "ladder_svg",
    "ladder_text",
    "samples_from_inspect",
    "samples_from_kernel",
    "segment_label",
]
