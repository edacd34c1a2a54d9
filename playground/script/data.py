"""A data argument as the script wrote it: runs of a unit repeated a count of times.

`"network programming" * 1000000` is 19 MB as bytes but one run here: a
script keeps its data as runs, so that parsing, checking and printing cost
the length of the text, and the bytes are built only when a call sends them.
"""

from __future__ import annotations

from collections.abc import Iterable

Run = tuple[bytes, int]


class Data:
    """Immutable bytes held as (unit, count) runs; equal to any Data or bytes of the same content."""

    __slots__ = ("runs", "size")

    runs: tuple[Run, ...]
    size: int

    def __init__(self, runs: Iterable[Run] = ()) -> None:
        kept: list[Run] = []
        literal: list[bytes] = []  # juxtaposed literals, joined once: "a" "b" "c" ... stays linear
        for unit, count in runs:
            if not unit or count <= 0:
                continue
            if count == 1 and (literal or not kept or kept[-1][0] != unit):
                literal.append(unit)
                continue
            if literal:
                kept.append((b"".join(literal), 1))
                literal = []
            if kept and kept[-1][0] == unit:  # "a" * 4 + "a" * 4 is "a" * 8
                kept[-1] = (unit, kept[-1][1] + count)
            else:
                kept.append((unit, count))
        if literal:
            kept.append((b"".join(literal), 1))
        self.runs = tuple(kept)
        self.size = sum(len(unit) * count for unit, count in kept)

    @classmethod
    def of(cls, data: bytes) -> Data:
        """One literal: most data in a script (built without __init__'s merging, which it does not need)."""
        made = cls.__new__(cls)
        made.runs = ((bytes(data), 1),) if data else ()
        made.size = len(data)
        return made

    def __bytes__(self) -> bytes:
        runs = self.runs
        if len(runs) == 1:
            unit, count = runs[0]
            return unit * count
        return b"".join(unit * count for unit, count in runs)

    def head(self, limit: int) -> bytes:
        """The first `limit` bytes, built without the rest."""
        out = bytearray()
        for unit, count in self.runs:
            if len(out) >= limit:
                break
            need = limit - len(out)
            out += unit * min(count, need // len(unit) + 1)
        return bytes(out[:limit])

    def __len__(self) -> int:
        return self.size

    def __bool__(self) -> bool:
        return self.size > 0

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Data):
            return self.size == other.size and (self.runs == other.runs or bytes(self) == bytes(other))
        if isinstance(other, (bytes, bytearray)):
            return self.size == len(other) and bytes(self) == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.size)

    def __repr__(self) -> str:
        return f"Data({list(self.runs)!r})"
