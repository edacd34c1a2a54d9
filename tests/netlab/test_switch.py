"""The lab's switch on the real kernel: two hosts (namespaces) cabled to it, real UDP and TCP through it."""

from __future__ import annotations

import asyncio
import os
import select
import socket
import subprocess
import sys
import time

import pytest

from playground.netlab import links
from playground.netlab.channel import FrameFate
from playground.netlab.controller import Switch, SwitchError
from playground.netlab.impairments import parse_cable
from tests.helpers import REPO
from tests.netlab.traffic import PORT, nothing_waiting, plug_in_all, receive_numbers, send_numbered, settled, udp, until
from tests.netlab.world import World, in_namespace, make_world

BETA = ("192.0.2.2", PORT)


def tcp_pair(world: World) -> tuple[socket.socket, socket.socket]:
    """(alpha's connected socket, beta's accepted one)."""
    listener = world.on("beta", lambda: socket.create_server(("0.0.0.0", 7000)))
    client = world.on("alpha", lambda: socket.create_connection(("192.0.2.2", 7000), timeout=5))
    listener.settimeout(5)
    accepted, _ = listener.accept()
    listener.close()
    accepted.settimeout(10)
    return client, accepted


async def test_udp_and_tcp_cross_the_switch_and_the_feed_tells_each_frame(world: World, switch: Switch) -> None:
    feed: list[FrameFate] = []
    await switch.subscribe(feed.extend)
    receiver = udp(world, "beta", PORT)
    sender = udp(world, "alpha")
    before = time.monotonic_ns()
    sender.sendto(b"hello", BETA)
    sent = time.monotonic_ns()
    assert receiver.recv(100) == b"hello"
    client, accepted = await asyncio.to_thread(tcp_pair, world)
    payload = os.urandom(200_000)
    client.sendall(payload)
    got = bytearray()
    while len(got) < len(payload):
        got += accepted.recv(65536)
    assert bytes(got) == payload
    after = time.monotonic_ns()

    await until(lambda: _true(len(feed) > 10), "the feed")
    assert {record.fate for record in feed} == {"delivered"}
    assert {(record.port_in, record.port_out) for record in feed} == {("alpha", "beta"), ("beta", "alpha")}
    # On the calls' clock: every frame entered after the first send; the data left the switch before its last read.
    assert all(before <= r.entered_ns <= (r.delivered_ns or 0) for r in feed)
    # The datagram reached the switch during the call that sent it (the kernel stamps it in that call),
    # give or take the clocks' offset: well inside a millisecond, not the 5 ms a skewed offset once gave.
    assert feed[0].frame.endswith(b"hello") and feed[0].entered_ns <= sent + 1_000_000
    # Each data segment's first delivery, that is: a copy the sender sends again under load (a tail loss
    # probe, a spurious timeout) may pass after the read, as on any wire.
    first: dict[int, int] = {}
    for r in sorted((r for r in feed if len(r.frame) > 1000), key=lambda r: r.delivered_ns or 0):
        first.setdefault(_tcp_seq(r.frame), r.delivered_ns or 0)
    assert len(first) > 100 and all(delivered <= after for delivered in first.values())
    assert max(len(record.frame) for record in feed) <= 1514  # offloads off: no 64 KB frames
    # Each frame one port sent is delivered at the other; one still inside the switch (a late ACK on a
    # busy machine) is counted sent, not yet delivered: wait until none is in flight.
    counted: list = []

    async def balanced() -> bool:
        alpha, beta = await switch.counters("alpha"), await switch.counters("beta")
        counted[:] = [alpha, beta]
        if alpha.dropped or beta.dropped:
            return True  # (said below)
        return alpha.sent == beta.delivered and beta.sent == alpha.delivered

    await until(balanced, "every frame sent to be delivered")
    alpha, beta = counted
    assert alpha.sent > 100 and beta.sent > 10
    assert alpha.dropped == beta.dropped == 0


def _tcp_seq(frame: bytes) -> int:
    """The sequence number of an Ethernet frame carrying IPv4 and TCP."""
    header = (frame[14] & 0x0F) * 4
    return int.from_bytes(frame[14 + header + 4 : 14 + header + 8], "big")


async def _true(value: bool) -> bool:
    return value


async def test_a_cut_drops_silently_both_ways_and_after_mend_a_retransmission_delivers(
    world: World, switch: Switch
) -> None:
    client, accepted = await asyncio.to_thread(tcp_pair, world)
    feed: list[FrameFate] = []
    await switch.subscribe(feed.extend)
    await switch.cut("alpha")
    assert switch.is_cut("alpha")
    assert client.send(b"anyone?") == 7  # into the send buffer: nobody is told

    async def retransmitted() -> bool:
        return (await switch.counters("alpha")).dropped_cut >= 2

    await until(retransmitted, "the segment and a retransmission to be dropped")
    assert nothing_waiting(accepted)
    assert accepted.send(b"back") == 4  # the other way is cut too
    await until(lambda: _true(any(r.port_in == "beta" and r.fate == "lost-cut" for r in feed)), "beta's segment lost")
    assert client.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
    assert accepted.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
    assert all(r.delivered_ns is None for r in feed if r.fate == "lost-cut")

    await switch.mend("alpha")
    assert await asyncio.to_thread(accepted.recv, 100) == b"anyone?"
    client.settimeout(10)
    assert await asyncio.to_thread(client.recv, 100) == b"back"


async def test_loss_drops_about_that_share_and_the_counters_add_up(world: World, switch: Switch) -> None:
    receiver, sender = udp(world, "beta", PORT), udp(world, "alpha")
    await switch.impair("alpha", parse_cable(["out", "loss", "30%"]))
    await send_numbered(switch, sender, "alpha", BETA, 2000)
    alpha, beta = await settled(switch, "alpha", "beta")
    assert alpha.sent == 2000
    assert 450 <= alpha.dropped_loss <= 750  # 30% of 2000 is 600
    assert beta.delivered == 2000 - alpha.dropped_loss
    numbers = receive_numbers(receiver, beta.delivered)
    assert len(set(numbers)) == beta.delivered and nothing_waiting(receiver)


async def test_duplicate_sends_about_that_share_twice(world: World, switch: Switch) -> None:
    receiver, sender = udp(world, "beta", PORT), udp(world, "alpha")
    await switch.impair("beta", parse_cable(["in", "duplicate", "20%"]))
    await send_numbered(switch, sender, "alpha", BETA, 2000)
    alpha, beta = await settled(switch, "alpha", "beta")
    assert 250 <= beta.duplicated <= 550  # 20% of 2000 is 400
    numbers = receive_numbers(receiver, beta.delivered)
    assert beta.delivered == 2000 + beta.duplicated
    assert len(numbers) - len(set(numbers)) == beta.duplicated


async def test_reorder_sends_about_that_share_at_once_past_the_delayed_rest(world: World, switch: Switch) -> None:
    receiver, sender = udp(world, "beta", PORT), udp(world, "alpha")
    await switch.impair("alpha", parse_cable(["out", "delay", "20ms", "reorder", "25%"]))
    await send_numbered(switch, sender, "alpha", BETA, 2000)
    _, beta = await settled(switch, "alpha", "beta")
    numbers = receive_numbers(receiver, beta.delivered)
    assert sorted(numbers) == list(range(2000))
    early, lowest = 0, 1 << 32
    for number in reversed(numbers):  # early: a later-sent datagram arrived before an earlier-sent one
        early += number > lowest
        lowest = min(lowest, number)
    assert 0.15 * 2000 <= early <= 0.35 * 2000


async def test_delay_adds_at_least_the_delay(world: World, switch: Switch) -> None:
    feed: list[FrameFate] = []
    await switch.subscribe(feed.extend)
    await switch.impair("alpha", parse_cable(["out", "delay", "60ms"]))
    await switch.impair("beta", parse_cable(["in", "delay", "20ms", "jitter", "10ms"]))
    started = time.monotonic()
    client, accepted = await asyncio.to_thread(tcp_pair, world)
    assert time.monotonic() - started >= 0.070  # the SYN crossed both cables: 60 ms + 20 ms ± 10 ms
    client.sendall(b"x")
    assert accepted.recv(1) == b"x"
    held = [r.delivered_ns - r.entered_ns for r in feed if r.port_in == "alpha" and r.delivered_ns is not None]
    assert held and min(held) >= 70_000_000
    # beta's own frames cross no delay: had beta's `in` delay (20 ms ± 10) been put on them, none would pass in
    # under 10 ms. (Not every one: a loaded machine may keep the switch from running for a while.)
    from_beta = [r.delivered_ns - r.entered_ns for r in feed if r.port_in == "beta" and r.delivered_ns]
    assert from_beta and min(from_beta) < 10_000_000
    assert (await switch.counters("alpha")).delayed >= len(held)


async def test_rate_spaces_frames_out(world: World, switch: Switch) -> None:
    feed: list[FrameFate] = []
    await switch.subscribe(feed.extend)
    receiver, sender = udp(world, "beta", PORT), udp(world, "alpha")
    await switch.impair("alpha", parse_cable(["out", "rate", "1mbit"]))
    await send_numbered(switch, sender, "alpha", BETA, 100)
    _, beta = await settled(switch, "alpha", "beta")
    assert beta.delivered == 100 and len(receive_numbers(receiver, 100)) == 100
    await switch.flush()
    # 100 frames of 106 bytes at 1 Mbit/s: the last leaves at least 100 x 0.848 ms after the first came.
    spent = max(r.delivered_ns or 0 for r in feed) - min(r.entered_ns for r in feed)
    assert spent >= 100 * 106 * 8 * 1000


async def test_a_full_rate_queue_drops_what_does_not_fit(world: World, switch: Switch) -> None:
    sender = udp(world, "alpha")
    await switch.impair("alpha", parse_cable(["out", "rate", "1kbit"]))  # 0.85 s a frame: the queue only fills
    await send_numbered(switch, sender, "alpha", BETA, 1100)
    alpha = await switch.counters("alpha")
    assert alpha.sent == 1100 and alpha.delayed + alpha.dropped_queue == 1100
    assert 1100 - 1000 - 3 <= alpha.dropped_queue <= 1100 - 1000  # the queue holds 1000 frames


async def test_clear_removes_every_impairment(world: World, switch: Switch) -> None:
    await switch.impair("alpha", parse_cable(["loss", "100%"]))
    receiver, sender = udp(world, "beta", PORT), udp(world, "alpha")
    await send_numbered(switch, sender, "alpha", BETA, 10)
    assert (await switch.counters("alpha")).dropped_loss == 10
    await switch.clear("alpha")
    assert switch.impairments("alpha")["out"].clear
    sender.sendto(b"\0\0\0\x0bthrough", BETA)
    receiver.settimeout(5)
    assert receiver.recv(100).endswith(b"through")


async def test_bad_requests_get_clear_messages(world: World, switch: Switch) -> None:
    with pytest.raises(SwitchError, match="no interface 'nothere' in the lab's network"):
        await switch.add_port("gamma", "nothere")
    with pytest.raises(SwitchError, match="alpha already has a port"):
        await switch.add_port("alpha", "sw-alpha")
    with pytest.raises(SwitchError, match="reorder 25% needs a delay"):
        await switch.impair("alpha", parse_cable(["reorder", "25%"]))
    assert switch.impairments("alpha")["out"].clear  # nothing changed
    with pytest.raises(SwitchError, match="no port 'gamma'"):
        await switch.counters("gamma")
    with pytest.raises(SwitchError, match="no port 'gamma'"):
        await switch.cut("gamma")
    counters = await switch.remove_port("beta")
    assert counters.dropped == 0
    with pytest.raises(SwitchError, match="no port 'beta'"):
        await switch.counters("beta")


async def test_close_ends_the_switch_process(world: World) -> None:
    switch = await Switch.start(world.netns)
    await switch.add_port("alpha", "sw-alpha")
    await switch.close()
    assert switch.process.poll() is not None
    with pytest.raises(SwitchError, match="stopped"):
        await switch.counters("alpha")


_OWNER = """
import asyncio, sys
sys.path.insert(0, sys.argv[1])
from playground.netlab.controller import Switch
async def main():
    switch = await Switch.start(None)
    print(switch.pid, flush=True)
    await asyncio.sleep(60)
asyncio.run(main())
"""


def test_killing_sockplay_leaves_no_switch_process() -> None:
    owner = subprocess.Popen([sys.executable, "-c", _OWNER, str(REPO)], stdout=subprocess.PIPE)
    assert owner.stdout is not None
    try:
        ready, _, _ = select.select([owner.stdout], [], [], 20)
        assert ready, "the switch did not start"
        pid = int(owner.stdout.readline())
        watch = os.pidfd_open(pid)
    finally:
        owner.kill()
        owner.wait()
    try:
        gone, _, _ = select.select([watch], [], [], 10)  # a pidfd turns readable when its process ends
        assert gone, "the switch outlived sockplay"
    finally:
        os.close(watch)


async def test_the_switch_runs_in_a_lab_owned_by_a_user_namespace() -> None:
    try:
        world = make_world("alpha", "beta", user=True)
    except OSError as exc:
        pytest.skip(f"no user-namespace lab with cables here: {exc}")
    try:
        world.neighbours()
        assert world.netns.endswith(",user")
        switch = await Switch.start(world.netns)
        try:
            for host in world.hosts.values():
                assert (await switch.add_port(host.name, host.port_ifname)).running
                assert world.on(host.name, lambda: links.wait_running("eth0"))
            receiver, sender = udp(world, "beta", PORT), udp(world, "alpha")
            sender.sendto(b"through", BETA)
            receiver.settimeout(5)
            assert receiver.recv(100) == b"through"
        finally:
            await switch.close()
    finally:
        world.close()


async def test_the_same_seed_loses_the_same_frames(world: World) -> None:
    lost: list[list[int]] = []
    for seed in ("one", "one", "two"):
        switch = await Switch.start(world.netns, seed=seed)
        try:
            await plug_in_all(switch, world)
            await switch.impair("alpha", parse_cable(["out", "loss", "50%"]))
            receiver, sender = udp(world, "beta", PORT), udp(world, "alpha")
            await send_numbered(switch, sender, "alpha", BETA, 200)
            _, beta = await settled(switch, "alpha", "beta")
            lost.append(sorted(set(range(200)) - set(receive_numbers(receiver, beta.delivered))))
            receiver.close()
            sender.close()
        finally:
            await switch.close()
    assert lost[0] == lost[1] != lost[2]
    assert 50 <= len(lost[0]) <= 150


async def test_a_port_removed_while_a_frame_is_on_its_cable_loses_the_frame(world: World, switch: Switch) -> None:
    feed: list[FrameFate] = []
    await switch.subscribe(feed.extend)
    await switch.impair("beta", parse_cable(["in", "delay", "300ms"]))
    sender = udp(world, "alpha")
    sender.sendto(b"late", BETA)

    async def held() -> bool:
        return (await switch.counters("beta")).delayed == 1

    await until(held, "the frame to be on beta's cable")
    await switch.remove_port("beta")

    async def lost() -> bool:
        await switch.flush()
        return any(r.fate == "lost-cut" for r in feed)

    await until(lost, "the frame to be lost")
    assert [(r.port_in, r.port_out, r.delivered_ns) for r in feed] == [("alpha", "beta", None)]
    assert (await switch.counters("alpha")).sent == 1


async def test_a_frame_for_a_host_whose_port_is_gone_is_reported_lost(world: World, switch: Switch) -> None:
    # As after a crash: the host's port is removed, its MAC forgotten, and a frame for it floods to no port.
    feed: list[FrameFate] = []
    await switch.subscribe(feed.extend)
    await switch.remove_port("beta")
    sender = udp(world, "alpha")
    sender.sendto(b"anyone?", BETA)

    async def lost() -> bool:
        await switch.flush()
        return any(r.frame.endswith(b"anyone?") for r in feed)

    await until(lost, "the frame to be reported")
    (record,) = [r for r in feed if r.frame.endswith(b"anyone?")]
    assert (record.port_in, record.port_out, record.fate, record.delivered_ns) == ("alpha", None, "lost-cut", None)
    alpha = await switch.counters("alpha")
    assert alpha.sent == alpha.dropped_cut >= 1 and alpha.delivered == 0


async def test_a_dark_port_sends_nothing_at_all_and_what_is_sent_to_it_is_lost(world: World, switch: Switch) -> None:
    # A host losing power: the frames its dying stack puts out were never sent (not even reported lost).
    feed: list[FrameFate] = []
    await switch.subscribe(feed.extend)
    await switch.go_dark("alpha")
    assert switch.is_cut("alpha")
    receiver = udp(world, "beta", PORT)
    udp(world, "alpha").sendto(b"last words", BETA)
    udp(world, "beta").sendto(b"anyone?", ("192.0.2.1", PORT))

    async def both_read() -> bool:
        return (await switch.counters("alpha")).sent >= 1 and (await switch.counters("beta")).sent >= 1

    await until(both_read, "the switch to read both frames")
    await switch.flush()
    assert [(r.port_in, r.port_out, r.fate) for r in feed if r.frame.endswith(b"anyone?")] == [
        ("beta", "alpha", "lost-cut")
    ]
    assert not [r for r in feed if r.port_in == "alpha"]
    assert nothing_waiting(receiver)
    alpha = await switch.counters("alpha")
    assert alpha.dropped_cut >= 2 and alpha.delivered == 0  # its own frame, and beta's frame to it


async def test_the_switch_floods_until_it_learns_where_a_host_is() -> None:
    try:
        world = make_world("alpha", "beta", "gamma")
    except (OSError, ImportError) as exc:
        pytest.skip(f"no namespaces and veth cables here: {exc}")
    try:
        world.neighbours()
        switch = await Switch.start(world.netns)
        try:
            await plug_in_all(switch, world)
            receiver, sender = udp(world, "beta", PORT), udp(world, "alpha")
            sender.sendto(b"who", BETA)  # beta has sent nothing yet: the switch floods
            receiver.settimeout(5)
            assert receiver.recv(10) == b"who"
            await switch.flush()
            assert (await switch.counters("gamma")).delivered == 1
            answer = world.on("beta", lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
            answer.sendto(b"here", ("192.0.2.1", sender.getsockname()[1]))  # now the switch knows beta's port
            sender.settimeout(5)
            assert sender.recv(10) == b"here"
            await send_numbered(switch, sender, "alpha", BETA, 20)
            _, beta = await settled(switch, "alpha", "beta")
            assert beta.delivered == 21
            assert (await switch.counters("gamma")).delivered == 1  # alpha's MAC was learnt from "who"
        finally:
            await switch.close()
    finally:
        world.close()


async def test_removing_a_port_in_the_middle_of_its_frames_keeps_the_switch_going(world: World, switch: Switch) -> None:
    sender = udp(world, "alpha")
    sender.setblocking(False)

    def flood() -> None:
        for _ in range(20_000):
            try:
                sender.sendto(b"x" * 32, BETA)
            except BlockingIOError:
                pass

    async def flooding() -> bool:
        return (await switch.counters("alpha")).sent > 100

    flooder = asyncio.create_task(asyncio.to_thread(flood))
    await until(flooding, "alpha's frames to reach the switch")
    await switch.remove_port("alpha")  # its socket has frames waiting as the command arrives
    await flooder
    assert (await switch.counters("beta")).delivered > 0


async def test_while_a_new_port_waits_for_its_cable_the_others_keep_forwarding() -> None:
    from pyroute2 import IPRoute

    try:
        world = make_world("alpha", "beta", "gamma")
    except (OSError, ImportError) as exc:
        pytest.skip(f"no namespaces and veth cables here: {exc}")

    def unplug() -> None:
        with IPRoute() as ip:
            (index,) = ip.link_lookup(ifname="eth0")
            ip.link("set", index=index, state="down")

    try:
        world.neighbours()
        world.on("gamma", unplug)  # gamma's end is down: its cable cannot run

        def switch_end_knows() -> bool:  # the link watcher may take up to a second to mark the other end
            with IPRoute() as ip:
                (link,) = ip.get_links(ifname="sw-gamma")
                return link.get_attr("IFLA_OPERSTATE") != "UP"

        deadline = time.monotonic() + 5
        while not in_namespace(world.lab_pid, switch_end_knows):
            assert time.monotonic() < deadline, "sw-gamma still shows its cable up"
        switch = await Switch.start(world.netns)
        try:
            for name in ("alpha", "beta"):
                await switch.add_port(name, world.hosts[name].port_ifname)
            plugging = asyncio.create_task(switch.add_port("gamma", "sw-gamma"))
            receiver, sender = udp(world, "beta", PORT), udp(world, "alpha")

            async def crossed() -> bool:
                sender.sendto(b"meanwhile", BETA)
                return not nothing_waiting(receiver)

            await until(crossed, "a datagram to cross while gamma's port waits", timeout=0.8)
            assert not plugging.done()
            state = await plugging
            assert not state.running and state.offloads_on == ()
        finally:
            await switch.close()
    finally:
        world.close()
