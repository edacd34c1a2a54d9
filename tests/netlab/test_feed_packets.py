"""The switch's feed as the lab's packets: a segment a cut dropped is a lost packet, the retransmission delivered."""

from __future__ import annotations

import asyncio
import socket
from xml.etree import ElementTree

from playground.capture import Packet
from playground.ladder import build_ladder, ladder_svg, ladder_text
from playground.netlab.capture_feed import SwitchCapture
from playground.netlab.channel import FrameFate
from playground.netlab.controller import Switch
from playground.netlab.impairments import parse_cable
from playground.netlab.wire import FeedPackets
from tests.netlab.traffic import nothing_waiting, udp, until
from tests.netlab.world import World


async def test_a_lost_segment_is_a_lost_packet_and_its_retransmission_a_delivered_one(
    world: World, switch: Switch
) -> None:
    decoder = FeedPackets()
    packets: list[Packet] = []
    await switch.subscribe(lambda records: packets.extend(decoder.packets(records)))
    listener = world.on("beta", lambda: socket.create_server(("0.0.0.0", 7000)))
    client = world.on("alpha", lambda: socket.create_connection(("192.0.2.2", 7000), timeout=5))
    accepted, _ = listener.accept()
    await switch.cut("beta")
    client.sendall(b"anyone?")

    async def lost() -> bool:
        await switch.flush()
        return any(p.lost and p.length == 7 for p in packets)

    await until(lost, "the segment the cut dropped")
    await switch.mend("beta")
    accepted.settimeout(10)
    assert await asyncio.to_thread(accepted.recv, 100) == b"anyone?"
    await switch.flush()

    syn = packets[0]
    assert syn.flags == ("SYN",) and syn.src[0] == "192.0.2.1" and syn.dst == ("192.0.2.2", 7000)
    assert syn.fate == "delivered" and syn.delivered_ns is not None and syn.delivered_ns >= syn.t_ns
    data = [p for p in packets if p.length == 7]
    first = data[0]
    assert first.fate == "lost-cut" and first.delivered_ns is None and first.relative_seq == 1
    assert first.summary.startswith("lost 192.0.2.1:") and first.summary.endswith('len 7 "anyone?"')
    assert data[-1].fate == "delivered" and data[-1].relative_seq == 1  # the retransmission
    assert all(p.wall_ns - p.t_ns == packets[0].wall_ns - packets[0].t_ns for p in packets[:3])

    # The ladder draws the lost segment crossed out short of its receiver, and the retransmission arriving.
    ladder = build_ladder(packets)
    lost_rows = [row for row in ladder.rows if row.lost]
    assert lost_rows and all(row.label.startswith("lost PSH|ACK seq 1") for row in lost_rows)
    text = "\n".join(ladder_text(ladder, width=100))
    assert "✕  │" in text and "▶│" in text
    assert text.count("lost PSH|ACK seq 1 ack 1 len 7") == len(lost_rows)
    assert "stroke-dasharray" in ladder_svg(ladder)
    assert ladder.rows[-1].states == ("ESTABLISHED", "ESTABLISHED")


async def test_a_flush_answers_after_the_frames_before_it(world: World, switch: Switch) -> None:
    decoder = FeedPackets()
    packets: list[Packet] = []
    await switch.subscribe(lambda records: packets.extend(decoder.packets(records)))
    await switch.impair("alpha", parse_cable(["out", "duplicate", "100%"]))
    receiver, sender = udp(world, "beta", 9000), udp(world, "alpha")
    sender.sendto(b"one", ("192.0.2.2", 9000))
    receiver.settimeout(5)
    assert receiver.recv(10) == b"one"
    await switch.flush()
    assert sorted(p.fate or "" for p in packets) == ["delivered", "duplicate"]
    assert all(p.protocol == "UDP" and p.preview == b"one" for p in packets)


async def test_a_switch_capture_delivers_packets_and_says_when_drained(world: World, switch: Switch) -> None:
    batches: list[list[Packet]] = []
    drained = asyncio.Event()
    capture = SwitchCapture(switch, batches.append, drained.set)
    await capture.start()
    await switch.impair("alpha", parse_cable(["out", "loss", "100%"]))
    receiver, sender = udp(world, "beta", 9000), udp(world, "alpha")
    for _ in range(3):
        sender.sendto(b"gone", ("192.0.2.2", 9000))
    await until(lambda: _sent(switch, 3), "the switch to read the datagrams")
    capture.flush()
    await asyncio.wait_for(drained.wait(), 10)
    packets = [p for batch in batches for p in batch]
    assert [p.fate for p in packets] == ["lost-loss"] * 3 and capture.count == 3
    assert all(p.summary.startswith("lost 192.0.2.1:") for p in packets)
    assert nothing_waiting(receiver)
    capture.stop()
    await switch.clear("alpha")
    sender.sendto(b"after", ("192.0.2.2", 9000))
    receiver.settimeout(5)
    assert receiver.recv(10) == b"after"
    await switch.flush()
    assert capture.count == 3  # stopped: nothing more delivered


async def _sent(switch: Switch, count: int) -> bool:
    return (await switch.counters("alpha")).sent >= count


async def test_a_failing_subscriber_leaves_the_feed_to_the_others(world: World, switch: Switch) -> None:
    failures: list[BaseException] = []
    asyncio.get_running_loop().set_exception_handler(lambda loop, context: failures.append(context["exception"]))

    def broken(records: list[FrameFate]) -> None:
        raise RuntimeError("a bug")

    seen: list[FrameFate] = []
    await switch.subscribe(broken)
    await switch.subscribe(seen.extend)
    receiver, sender = udp(world, "beta", 9000), udp(world, "alpha")
    for word in (b"one", b"two"):
        sender.sendto(word, ("192.0.2.2", 9000))
        receiver.settimeout(5)
        assert receiver.recv(10) == word
        await switch.flush()
    assert len(seen) == 2 and failures and isinstance(failures[0], RuntimeError)


async def test_with_no_subscriber_left_the_switch_stops_the_feed_and_a_new_one_starts_it(
    world: World, switch: Switch
) -> None:
    first: list[FrameFate] = []
    unsubscribe = await switch.subscribe(first.extend)
    receiver, sender = udp(world, "beta", 9000), udp(world, "alpha")
    receiver.settimeout(5)

    async def send(word: bytes) -> None:
        sender.sendto(word, ("192.0.2.2", 9000))
        assert receiver.recv(10) == word
        await switch.flush()

    await send(b"one")
    unsubscribe()
    await send(b"two")
    second: list[FrameFate] = []
    await switch.subscribe(second.extend)
    await send(b"three")
    assert [r.frame[-3:] for r in first] == [b"one"] and [r.frame[-5:] for r in second] == [b"three"]
    assert (await switch.counters("alpha")).feed_dropped == 0  # stopped, not dropped


async def test_the_svg_ladder_draws_a_held_segment_arriving_further_down(world: World, switch: Switch) -> None:
    decoder = FeedPackets()
    packets: list[Packet] = []
    await switch.subscribe(lambda records: packets.extend(decoder.packets(records)))
    listener = world.on("beta", lambda: socket.create_server(("0.0.0.0", 7000)))
    client = world.on("alpha", lambda: socket.create_connection(("192.0.2.2", 7000), timeout=5))
    accepted, _ = listener.accept()
    await switch.impair("alpha", parse_cable(["out", "delay", "50ms"]))
    client.sendall(b"slow")  # held 50 ms on alpha's cable, while beta's window update and more go by
    accepted.settimeout(5)
    assert accepted.recv(10) == b"slow"
    accepted.sendall(b"back")
    assert client.recv(10) == b"back"
    await switch.flush()

    ladder = build_ladder(packets)
    document = ElementTree.fromstring(ladder_svg(ladder))
    drops = [
        float(line.get("y2", 0)) - float(line.get("y1", 0))
        for line in document.iter("{http://www.w3.org/2000/svg}line")
        if line.get("marker-end")
    ]
    assert drops and max(drops) > 18  # the held one slants down past the rows after it
    assert sorted(drops)[0] == 18  # the others cross straight over
    assert "the cable held it" in ladder_svg(ladder)
