"""The switch's channel: messages cut from a byte stream however it arrives; nonsense gets an answer, not a crash."""

from __future__ import annotations

import json

import pytest

from playground.netlab.channel import COMMAND, FEED, MAX_MESSAGE, MessageBuffer, message, read_records, record
from playground.netlab.controller import Switch, SwitchError
from tests.netlab.world import World


def test_messages_come_whole_whatever_the_chunks() -> None:
    stream = b"".join(message(COMMAND, json.dumps({"id": n}).encode()) for n in range(300))
    stream += message(FEED, record(5, None, "lost-loss", 0, None, b"frame") + record(6, 9, "delivered", 1, 0, b"x"))
    for size in (1, 7, 4096, len(stream)):
        buffer = MessageBuffer()
        got = [m for start in range(0, len(stream), size) for m in buffer.feed(stream[start : start + size])]
        assert [json.loads(body)["id"] for kind, body in got[:-1]] == list(range(300))
        kind, body = got[-1]
        assert kind == FEED and not buffer.data
        first, second = read_records(body, {0: "alpha", 1: "beta"})
        assert (first.entered_ns, first.delivered_ns, first.fate, first.port_in, first.port_out) == (
            5,
            None,
            "lost-loss",
            "alpha",
            None,
        )
        assert first.frame == b"frame" and first.lost
        assert (second.port_in, second.port_out, second.delivered_ns, second.lost) == ("beta", "alpha", 9, False)


def test_a_message_longer_than_any_the_switch_sends_is_refused() -> None:
    with pytest.raises(ValueError, match="bytes on the switch's channel"):
        MessageBuffer().feed((MAX_MESSAGE + 1).to_bytes(4, "big") + b"C")


async def test_the_switch_answers_nonsense_and_keeps_forwarding(world: World, switch: Switch) -> None:
    with pytest.raises(SwitchError, match="no command 'fly'"):
        await switch._ask("fly", port="alpha")
    switch._writer.write(message(COMMAND, b"{not json"))
    with pytest.raises(SwitchError, match="no port 'nobody'"):
        await switch.counters("nobody")
    assert (await switch.counters("alpha")).sent >= 0
