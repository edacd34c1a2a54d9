"""`~ lost A > B len N`: a claim that the cable dropped a segment, read, written back and matched."""

from __future__ import annotations

import pytest

from playground.capture import Packet
from playground.executor import segment_matches
from playground.script.errors import ScriptError
from playground.script.format import format_node
from playground.script.model import Segment, Wire
from playground.script.parser import parse_script

HEADER = (
    "sockplay 1\nspawn client\nspawn server\nspawn lost\n"
    "client: c = socket(tcp)\nserver: a = socket(tcp)\nlost: s = socket(tcp)\n"
)


def wire(line: str) -> Wire:
    node = parse_script(HEADER + line + "\n", "t.sockplay").lines[-1].node
    assert isinstance(node, Wire)
    return node


def test_lost_lines_read_and_write_back_as_written() -> None:
    for line in (
        "~ lost client.c > server.a len 7",
        "~ lost client.c > server.a",
        "~ lost client > server",
        "~ lost len 0",
        "~ lost client.c > server.a FIN",
        "~ lost client.c > server.a UDP len 3",
    ):
        parsed = wire(line)
        assert parsed.segment is not None and parsed.segment.lost
        assert format_node(parsed) == line
    assert wire("~ lost client.c > server.a len 7").segment == Segment(
        "TCP", "client.c", "server.a", length=7, lost=True
    )


def test_a_process_named_lost_is_still_an_end() -> None:
    assert wire("~ lost > server SYN").segment == Segment("TCP", "lost", "server", ("SYN",))
    assert wire("~ lost.s > server SYN").segment == Segment("TCP", "lost.s", "server", ("SYN",))
    assert format_node(wire("~ client > server PSH|ACK len 2")) == "~ client > server PSH|ACK len 2"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("~ lost client.c > server.a len", "a payload length after 'len'"),
        ("~ lost client.c > server.a len 7 more", "unexpected 'more'"),
        ("~ lost client.c > nobody len 7", "nobody"),
    ],
)
def test_bad_lost_lines_say_why(line: str, message: str) -> None:
    with pytest.raises(ScriptError, match=message):
        parse_script(HEADER + line + "\n", "t.sockplay")


def test_a_lost_claim_matches_only_a_lost_segment_and_a_plain_claim_any() -> None:
    def segment(fate: str | None) -> Packet:
        packet = Packet(0, "TCP", ("192.0.2.2", 40000), ("192.0.2.1", 7000), 7, ("PSH", "ACK"), fate=fate)
        packet.src_label, packet.dst_label = "client.c", "server.a"
        return packet

    lost, plain = wire("~ lost client.c > server.a len 7").segment, wire("~ client.c > server.a PSH|ACK len 7").segment
    assert lost is not None and plain is not None
    assert segment_matches(lost, segment("lost-cut")) and segment_matches(lost, segment("lost-loss"))
    assert not segment_matches(lost, segment("delivered")) and not segment_matches(lost, segment(None))
    assert all(segment_matches(plain, segment(fate)) for fate in (None, "delivered", "lost-cut"))
    assert segment("lost-queue").summary.startswith("lost client.c > server.a PSH|ACK")
