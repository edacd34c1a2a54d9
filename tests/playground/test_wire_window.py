"""`~ ... win N` and `win >N`: a claim on a TCP segment's window field, read, written back and matched on the kernel."""

from __future__ import annotations

import pytest

from playground.capture import Packet
from playground.executor import segment_matches
from playground.lab import Lab
from playground.runner import Runner
from playground.script.errors import ScriptError
from playground.script.format import format_node
from playground.script.model import Segment, Wire
from playground.script.parser import parse_script

HEADER = "sockplay 1\nspawn client\nspawn server\nclient: c = socket(tcp)\nserver: a = socket(tcp)\n"


def wire(line: str) -> Wire:
    node = parse_script(HEADER + line + "\n", "t.sockplay").lines[-1].node
    assert isinstance(node, Wire)
    return node


def test_window_lines_read_and_write_back_as_written() -> None:
    for line in (
        "~ server.a > client.c ACK win 0",
        "~ server.a > client.c ACK win >0",
        "~ server.a > client.c ACK win 4096 len 0",
        "~ client > server PSH|ACK win >100 len 5",
        "~ lost client.c > server.a ACK win 0",
    ):
        assert format_node(wire(line)) == line
    assert wire("~ server.a > client.c ACK win 0").segment == Segment("TCP", "server.a", "client.c", ("ACK",), window=0)
    assert wire("~ server.a > client.c ACK win >0").segment == Segment(
        "TCP", "server.a", "client.c", ("ACK",), window=0, window_above=True
    )
    # Either order reads; the written form puts the window first, as a captured packet's summary does.
    assert format_node(wire("~ client.c > server.a ACK len 0 win 0")) == "~ client.c > server.a ACK win 0 len 0"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("~ server.a > client.c ACK win", "a window after 'win'"),
        ("~ server.a > client.c ACK win x", "a window after 'win'"),
        ("~ server.a > client.c ACK win > ", "a window after 'win'"),
        ("~ server.a > client.c ACK win 0 win 1", "'win' is stated twice"),
        ("~ server.a > client.c ACK len 0 len 1", "'len' is stated twice"),
        ("~ * > client.c UDP win 0", "UDP and ICMP have none"),
        ("~ * > client.c ICMP port-unreachable win 0", "UDP and ICMP have none"),
        ("~ server.a > client.c ACK win 0 more", "unexpected 'more'"),
    ],
)
def test_bad_window_lines_say_why(line: str, message: str) -> None:
    with pytest.raises(ScriptError, match=message):
        parse_script(HEADER + line + "\n", "t.sockplay")


def test_a_window_claim_matches_the_window_field_exactly_or_above() -> None:
    def ack(window: int) -> Packet:
        packet = Packet(0, "TCP", ("127.0.0.1", 7000), ("127.0.0.1", 40000), 0, ("ACK",), window=window)
        packet.src_label, packet.dst_label = "server.a", "client.c"
        return packet

    zero, opened = wire("~ server.a > client.c ACK win 0").segment, wire("~ server.a > client.c ACK win >0").segment
    exact = wire("~ server.a > client.c ACK win 512").segment
    assert zero is not None and opened is not None and exact is not None
    assert segment_matches(zero, ack(0)) and not segment_matches(zero, ack(1))
    assert segment_matches(opened, ack(1)) and not segment_matches(opened, ack(0))
    assert (
        segment_matches(exact, ack(512))
        and not segment_matches(exact, ack(511))
        and not segment_matches(exact, ack(513))
    )


# A server that never reads, behind a small receive buffer: the client fills it without blocking.
SCRIPT = """sockplay 1
spawn server
spawn client
server: l = socket(tcp)
server: setsockopt(l, SO_RCVBUF, 4096)
server: bind(l, 127.0.0.1:0)
server: listen(l, 8)
client: c = socket(tcp)
client: connect(c, server.l)
server: a = accept(l)
client: write(c, "hello")
~ server.a > client.c ACK win >0
client: send(c, "x" * 100000, MSG_DONTWAIT)
~ server.a > client.c ACK win 0
server: recv(a, 100000)
~ server.a > client.c ACK win >0
"""


async def run(script: str) -> list[tuple[int, str | None]]:
    lab = await Lab.start()
    try:
        if lab.capture is None:
            pytest.skip(f"no packet capture here: {lab.capture_reason}")
        report = await Runner(lab).run(parse_script(script, "window.sockplay"))
        return [(s.line.number, s.divergence) for s in report.divergences]
    finally:
        await lab.shutdown()


async def test_a_full_receive_buffer_is_advertised_as_a_zero_window_and_reading_opens_it() -> None:
    assert await run(SCRIPT) == []


async def test_a_wrong_window_claim_diverges() -> None:
    # Before the buffer fills, the window is open: no segment with window 0 answers the 5 bytes.
    wrong = SCRIPT.replace(
        'client: write(c, "hello")\n~ server.a > client.c ACK win >0',
        'client: write(c, "hello")\n~ server.a > client.c ACK win 0',
    )
    [(number, divergence)] = await run(wrong)
    assert number == 12
    assert divergence is not None and divergence.startswith("expected server.a > client.c ACK win 0, saw ")
