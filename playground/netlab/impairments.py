"""A cable's impairments: what a script's `cable HOST ...` words ask for, checked and bounded.

`out` is the way frames leave the host, `in` the way towards it; with no
direction a setting applies to both. Settings add up across `cable` lines
(`cable alpha delay 100ms`, then `cable alpha loss 5%` keeps the delay);
`cable HOST clear` removes them all. The meanings follow netem's: jitter is
uniform within ±jitter around the delay, reorder is the share of frames sent
at once while the rest wait for the delay (so it needs a delay), rate is a
queue of at most QUEUE_LIMIT frames emptied at that many bits per second.
Jitter that would make a delay negative makes it zero; as with netem, jitter
larger than the gap between frames reorders them.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

DIRECTIONS = ("in", "out")
MAX_DELAY_NS = 60 * 1_000_000_000
MIN_RATE = 1_000
MAX_RATE = 100_000_000_000
QUEUE_LIMIT = 1000  # frames waiting for the rate, as netem's default limit
_TIME_UNITS = {"us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000}
_RATE_UNITS = {"bit": 1, "kbit": 1_000, "mbit": 1_000_000, "gbit": 1_000_000_000}
_NUMBER = re.compile(r"^(\d+(?:\.\d+)?)([a-zµ%]*)$")
_WORDS = ("delay", "jitter", "loss", "duplicate", "reorder", "rate")


class ImpairmentError(ValueError):
    """A cable setting that cannot be: the message says which word and why."""


@dataclass(frozen=True)
class Impairment:
    """One direction of one cable. Zero everywhere: a perfect cable."""

    delay_ns: int = 0
    jitter_ns: int = 0
    loss: float = 0.0  # percent
    duplicate: float = 0.0  # percent
    reorder: float = 0.0  # percent
    rate: int = 0  # bit/s; 0: as fast as the switch goes

    @property
    def clear(self) -> bool:
        return self == Impairment()

    def merged(self, change: dict[str, float | int]) -> Impairment:
        """These settings with `change` (field name: value) laid over them, checked as a whole."""
        values = {**self.to_dict(), **change}
        result = Impairment.from_dict(values)
        if result.reorder and not result.delay_ns:
            raise ImpairmentError(
                f"reorder {_percent(result.reorder)} needs a delay: the frames it sends at once overtake the "
                "delayed rest (for example `delay 10ms reorder 25%`)"
            )
        return result

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, float | int]) -> Impairment:
        return cls(
            delay_ns=int(data.get("delay_ns", 0)),
            jitter_ns=int(data.get("jitter_ns", 0)),
            loss=float(data.get("loss", 0.0)),
            duplicate=float(data.get("duplicate", 0.0)),
            reorder=float(data.get("reorder", 0.0)),
            rate=int(data.get("rate", 0)),
        )

    def describe(self) -> str:
        """`delay 100ms jitter 10ms loss 5%`, or `clear`."""
        parts = []
        if self.delay_ns:
            parts.append(f"delay {_duration(self.delay_ns)}")
        if self.jitter_ns:
            parts.append(f"jitter {_duration(self.jitter_ns)}")
        for name in ("loss", "duplicate", "reorder"):
            value = getattr(self, name)
            if value:
                parts.append(f"{name} {_percent(value)}")
        if self.rate:
            parts.append(f"rate {_rate(self.rate)}")
        return " ".join(parts) or "clear"


@dataclass(frozen=True)
class CableChange:
    """One `cable` line: which directions, and either `clear` or the settings it names."""

    directions: tuple[str, ...]
    settings: dict[str, float | int]
    clear: bool = False

    def apply(self, current: Impairment) -> Impairment:
        return Impairment() if self.clear else current.merged(self.settings)


def parse_cable(words: list[str]) -> CableChange:
    """The words after `cable HOST`: `[in|out] delay 100ms loss 5% ...` or `[in|out] clear`."""
    rest = list(words)
    directions: tuple[str, ...] = DIRECTIONS
    if rest and rest[0] in DIRECTIONS:
        directions = (rest.pop(0),)
    if not rest:
        raise ImpairmentError("cable needs a setting: delay, jitter, loss, duplicate, reorder, rate, or clear")
    if rest == ["clear"]:
        return CableChange(directions, {}, clear=True)
    settings: dict[str, float | int] = {}
    while rest:
        word = rest.pop(0)
        if word == "clear":
            raise ImpairmentError("`clear` stands alone: `cable HOST clear` or `cable HOST in clear`")
        if word not in _WORDS:
            raise ImpairmentError(f"unknown cable setting {word!r}: use delay, jitter, loss, duplicate, reorder, rate")
        if not rest:
            raise ImpairmentError(f"{word} needs a value, for example `{word} {_EXAMPLES[word]}`")
        name, value = _setting(word, rest.pop(0))
        if name in settings:
            raise ImpairmentError(f"{word} is given twice")
        settings[name] = value
    return CableChange(directions, settings)


_EXAMPLES = {
    "delay": "100ms",
    "jitter": "10ms",
    "loss": "5%",
    "duplicate": "1%",
    "reorder": "25%",
    "rate": "1mbit",
}


def _setting(word: str, text: str) -> tuple[str, float | int]:
    match = _NUMBER.match(text.lower())
    if word in ("delay", "jitter"):
        unit = match.group(2) if match else ""
        if match is None or unit not in _TIME_UNITS:
            raise ImpairmentError(f"{word} {text}: give a time with its unit (us, ms or s), for example `{word} 10ms`")
        ns = round(float(match.group(1)) * _TIME_UNITS[unit])
        if ns > MAX_DELAY_NS:
            raise ImpairmentError(f"{word} {text} is too long: at most 60s")
        return f"{word}_ns", ns
    if word == "rate":
        unit = match.group(2) if match else ""
        if match is None or unit not in _RATE_UNITS:
            raise ImpairmentError(f"rate {text}: give bits per second with a unit (bit, kbit, mbit, gbit), e.g. 1mbit")
        bits = round(float(match.group(1)) * _RATE_UNITS[unit])
        if not MIN_RATE <= bits <= MAX_RATE:
            raise ImpairmentError(f"rate {text} is out of range: from 1kbit to 100gbit")
        return "rate", bits
    if match is None or match.group(2) != "%":
        raise ImpairmentError(f"{word} {text}: give a percentage, for example `{word} {_EXAMPLES[word]}`")
    percent = float(match.group(1))
    if percent > 100:
        raise ImpairmentError(f"{word} {text} is more than 100%")
    return word, percent


def _duration(ns: int) -> str:
    if ns % 1_000_000_000 == 0:
        return f"{ns // 1_000_000_000}s"
    if ns % 1_000_000 == 0:
        return f"{ns // 1_000_000}ms"
    if ns % 1_000 == 0:
        return f"{ns // 1_000}us"
    return f"{ns / 1_000_000:g}ms"


def _percent(value: float) -> str:
    return f"{value:g}%"


def _rate(bits: int) -> str:
    for unit, size in (("gbit", 1_000_000_000), ("mbit", 1_000_000), ("kbit", 1_000)):
        if bits % size == 0:
            return f"{bits // size}{unit}"
    return f"{bits}bit"
