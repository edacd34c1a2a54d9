"""A script's `cable` words: what they set, and a clear message for every bad one."""

from __future__ import annotations

import pytest

from playground.netlab.impairments import CableChange, Impairment, ImpairmentError, parse_cable


def test_every_setting_is_read_with_its_unit() -> None:
    change = parse_cable("delay 100ms jitter 500us loss 5% duplicate 1% reorder 25% rate 1mbit".split())
    assert change.directions == ("in", "out")
    impairment = change.apply(Impairment())
    assert impairment == Impairment(100_000_000, 500_000, 5.0, 1.0, 25.0, 1_000_000)
    assert impairment.describe() == "delay 100ms jitter 500us loss 5% duplicate 1% reorder 25% rate 1mbit"


def test_a_direction_limits_the_change_and_settings_add_up_across_lines() -> None:
    first = parse_cable(["out", "delay", "1.5s"])
    assert first.directions == ("out",)
    after = parse_cable(["loss", "0.5%"]).apply(first.apply(Impairment()))
    assert after == Impairment(delay_ns=1_500_000_000, loss=0.5)
    assert parse_cable(["in", "clear"]) == CableChange(("in",), {}, clear=True)
    assert parse_cable(["clear"]).apply(after).clear


@pytest.mark.parametrize(
    ("words", "message"),
    [
        ("", "cable needs a setting"),
        ("in", "cable needs a setting"),
        ("delay", "delay needs a value, for example `delay 100ms`"),
        ("delay 10", "give a time with its unit"),
        ("delay fast", "give a time with its unit"),
        ("delay 61s", "too long: at most 60s"),
        ("jitter 2min", "give a time with its unit"),
        ("loss 5", "give a percentage"),
        ("loss 101%", "more than 100%"),
        ("duplicate -1%", "give a percentage"),
        ("rate 999bit", "out of range: from 1kbit"),
        ("rate 1mbps", "give bits per second with a unit"),
        ("speed 1mbit", "unknown cable setting 'speed'"),
        ("loss 1% loss 2%", "loss is given twice"),
        ("delay 1ms clear", "`clear` stands alone"),
        ("reorder 25%", "reorder 25% needs a delay"),
    ],
)
def test_bad_words_get_a_clear_message(words: str, message: str) -> None:
    with pytest.raises(ImpairmentError, match=message.replace("(", r"\(")):
        parse_cable(words.split()).apply(Impairment())
