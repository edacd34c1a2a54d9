"""Packet capture on the lab's network, pcap files, the kernel's hidden sockets, `~` lines."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from pathlib import Path

import dpkt
import pytest

from playground import executor as executor_module
from playground.capture import Packet
from playground.events import PacketsSeen
from playground.executor import run_typed_line
from playground.lab import Lab
from playground.runner import Runner
from playground.script.parser import parse_script
from tests.helpers import PAIR_SCRIPT, connected_pair

WAIT = 5.0


class Wire:
    """Collects the packets a lab reports; waits (bounded) for the ones a test needs."""

    def __init__(self, lab: Lab) -> None:
        self.packets: list[Packet] = []
        self.arrived = asyncio.Event()
        lab.subscribe(self._on_event)
        if lab.capture is None:
            pytest.skip(f"no packet capture here: {lab.capture_reason}")

    def _on_event(self, event: object) -> None:
        if isinstance(event, PacketsSeen):
            self.packets.extend(event.packets)
            self.arrived.set()

    async def until(self, predicate, timeout: float = WAIT) -> Packet:
        deadline = time.monotonic() + timeout
        while True:
            for packet in self.packets:
                if predicate(packet):
                    return packet
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(f"no such packet; saw {[p.summary for p in self.packets]}")
            self.arrived.clear()
            try:
                await asyncio.wait_for(self.arrived.wait(), remaining)
            except TimeoutError:
                pass


async def test_handshake_fin_and_rst_are_captured_once_each_with_names(lab: Lab) -> None:
    wire = Wire(lab)
    await connected_pair(lab)
    syn = await wire.until(lambda p: p.flags == ("SYN",))
    # Once accepted, the connection's packets (its handshake too) carry the accepted socket's name.
    assert syn.src_label == "client.c" and syn.dst_label == "server.a" and syn.relative_seq == 0
    await wire.until(lambda p: p.flags == ("SYN", "ACK") and p.dst_label == "client.c")
    await run_typed_line(lab, 'client: write(c, "hello")')
    data = await wire.until(lambda p: p.length == 5)
    assert data.preview == b"hello" and "PSH" in data.flags and data.relative_seq == 1
    await run_typed_line(lab, "client: close(c)")
    fin = await wire.until(lambda p: "FIN" in p.flags)
    assert (fin.src_label, fin.dst_label) == ("client.c", "server.a")
    assert fin.t_ns > data.t_ns > syn.t_ns > lab.t0
    # Loopback shows each frame twice (leaving and arriving); only one copy is kept.
    assert len([p for p in wire.packets if p.length == 5]) == 1
    await run_typed_line(lab, "server: close(a)")  # unread "hello": RST instead of FIN
    rst = await wire.until(lambda p: "RST" in p.flags)
    assert rst.src_label == "server.a" and "FIN" not in rst.flags


async def test_udp_to_a_closed_port_draws_icmp_port_unreachable(lab: Lab) -> None:
    wire = Wire(lab)
    await run_typed_line(lab, "spawn a")
    await run_typed_line(lab, "a: u = socket(udp)")
    await run_typed_line(lab, "a: connect(u, 127.0.0.1:9)")
    await run_typed_line(lab, 'a: send(u, "?")')
    icmp = await wire.until(lambda p: p.protocol == "ICMP")
    assert icmp.icmp == "port unreachable" and icmp.dst_label == "a.u"


async def test_pcap_file_reads_back_one_frame_per_segment(tmp_path: Path) -> None:
    path = tmp_path / "lab.pcap"
    lab = await Lab.start(pcap=str(path))
    try:
        wire = Wire(lab)
        await connected_pair(lab)
        await run_typed_line(lab, 'client: write(c, "pcap!")')
        await run_typed_line(lab, "client: close(c)")
        await wire.until(lambda p: "FIN" in p.flags)
        await wire.until(lambda p: "ACK" in p.flags and p.src_label == "server.a" and p.relative_ack == 7)
        before_shutdown = len(wire.packets)
    finally:
        await lab.shutdown()
    with path.open("rb") as f:
        frames = [(ts, dpkt.ethernet.Ethernet(buf)) for ts, buf in dpkt.pcap.Reader(f)]
    # One frame per segment reported, the shutdown's own (the killed server's) too: the capture reads
    # what is queued before it ends, and the file closes after its last batch.
    assert before_shutdown <= len(frames) == len(wire.packets)
    segments = [eth.data.data for _, eth in frames]
    assert all(isinstance(s, dpkt.tcp.TCP) for s in segments)
    assert segments[0].flags == dpkt.tcp.TH_SYN
    assert [s.data for s in segments if s.data] == [b"pcap!"]
    assert sum(1 for s in segments if s.flags & dpkt.tcp.TH_FIN) == 1
    if shutil.which("tshark"):
        out = subprocess.run(["tshark", "-r", str(path)], capture_output=True, text=True, timeout=30)
        assert out.returncode == 0 and len(out.stdout.splitlines()) == len(frames)


async def test_the_last_calls_segments_are_in_the_pcap_when_the_lab_ends_at_once(tmp_path: Path) -> None:
    """A replay's last line is a close: the lab ends right after it, and its FIN is reported and written."""
    for attempt in range(3):  # (the capture thread may be anywhere in its loop when the lab ends)
        path = tmp_path / f"lab{attempt}.pcap"
        lab = await Lab.start(pcap=str(path))
        try:
            wire = Wire(lab)
            await connected_pair(lab)
            await run_typed_line(lab, "client: close(c)")
        finally:
            await lab.shutdown()
        assert any("FIN" in p.flags and p.src_label == "client.c" for p in wire.packets), attempt
        with path.open("rb") as f:
            flags = [dpkt.ethernet.Ethernet(buf).data.data.flags for _, buf in dpkt.pcap.Reader(f)]
        assert flags[0] == dpkt.tcp.TH_SYN and any(f & dpkt.tcp.TH_FIN for f in flags), attempt
        assert len(flags) == len(wire.packets)


async def test_time_wait_appears_under_its_owner_and_vanishes(lab: Lab) -> None:
    await run_typed_line(lab, "spawn server")
    await run_typed_line(lab, "spawn client")
    for line in (
        "server: l = socket(tcp)",
        "server: bind(l, 127.0.0.1:0)",
        "server: listen(l, 8)",
        "client: c = socket(tcp)",
        "client: setsockopt(c, SO_REUSEADDR, 1)",
        "client: bind(c, 127.0.0.1:0)",
        "client: connect(c, server.l)",
        "server: a = accept(l)",
        "server: close(a)",  # the server closes first: its end waits in TIME-WAIT
        "client: read(c, 10)",
        "client: close(c)",
    ):
        await run_typed_line(lab, line)

    def time_wait():
        return [(owner, label, s) for owner, label, s in lab.kernel_sockets() if s.state == "TIME-WAIT"]

    deadline = time.monotonic() + WAIT
    while not time_wait() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    [(owner, label, sock)] = time_wait()
    assert (owner, label) == ("server", "server.a") and sock.orphan
    assert sock.timer == "time-wait" and 0 < sock.expires_ms <= 60_000
    # A new SYN from the same client port ends that TIME-WAIT at once (RFC 1122's exception).
    await run_typed_line(lab, "client: c2 = socket(tcp)")
    await run_typed_line(lab, "client: setsockopt(c2, SO_REUSEADDR, 1)")
    await run_typed_line(lab, "client: bind(c2, client.c)")
    result = await run_typed_line(lab, "client: connect(c2, server.l)")
    assert result is not None and result.outcome.value == 0
    assert time_wait() == []


async def test_fin_wait_2_orphan_is_listed_with_its_timer(lab: Lab) -> None:
    await connected_pair(lab)
    await run_typed_line(lab, "client: close(c)")
    deadline = time.monotonic() + WAIT
    found = []
    while not found and time.monotonic() < deadline:
        found = [(label, s) for _, label, s in lab.kernel_sockets() if s.state == "FIN-WAIT-2"]
        await asyncio.sleep(0.01)
    [(label, sock)] = found
    assert label == "client.c" and sock.orphan


SCRIPT = """sockplay 1
spawn server
spawn client
server: l = socket(tcp)
server: bind(l, 127.0.0.1:0)
server: listen(l, 8)
client: c = socket(tcp)
client: connect(c, server.l)
~ client.c > server SYN
~ server > client.c SYN|ACK
server: a = accept(l)
server: shutdown(a, SHUT_RD)
~ nothing
client: close(c)
~ client.c > server.a FIN
~ no RST
"""


async def test_wire_lines_hold_and_a_wrong_one_diverges() -> None:
    lab = await Lab.start()
    try:
        if lab.capture is None:
            pytest.skip(f"no packet capture here: {lab.capture_reason}")
        report = await Runner(lab).run(parse_script(SCRIPT, "wire.sockplay"))
        assert [(s.line.number, s.divergence) for s in report.divergences] == []
        wrong = SCRIPT.replace("~ client.c > server.a FIN", "~ client.c > server.a RST")
    finally:
        await lab.shutdown()
    lab = await Lab.start()
    try:
        report = await Runner(lab).run(parse_script(wrong, "wire.sockplay"))
        [diverged] = report.divergences
        assert diverged.line.number == 15
        assert "expected client.c > server.a RST, saw client.c > server.a FIN|ACK" in (diverged.divergence or "")
    finally:
        await lab.shutdown()


FLOOD = (
    PAIR_SCRIPT
    + """client: fcntl(c, O_NONBLOCK, 1)
client: write(c, "x" * 1000000)
~ server.a > client.c RST
"""
)


async def test_the_packets_kept_for_wire_lines_are_bounded_and_a_divergence_names_a_few(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A step that floods the wire is not kept twice (the lab keeps every packet; `~` lines only the first)."""
    if lab.capture is None:
        pytest.skip(f"no packet capture here: {lab.capture_reason}")
    monkeypatch.setattr(executor_module, "STEP_PACKETS", 3)
    monkeypatch.setattr(executor_module, "SAID_PACKETS", 2)
    monkeypatch.setattr(executor_module, "WIRE_WAIT", 0.2)
    runner = Runner(lab)
    report = await runner.run(parse_script(FLOOD, "flood.sockplay"))
    [diverged] = report.divergences
    why = diverged.divergence or ""
    assert why.startswith("expected server.a > client.c RST, saw "), why
    assert why.endswith("; and 1 more (only the first 3 packets after a call are kept for `~` lines)"), why
    assert why.count("; ") == 2, why
    assert len(runner.packets) == 3
    assert len(lab.packets) > 3 + 3  # (the handshake, then the write's segments and their ACKs)
    # `--wire` prints every packet of a step: then all are kept.
    other = await Lab.start()
    try:
        printing = Runner(other)
        printing.settle_wire = True
        await printing.run(parse_script(FLOOD, "flood.sockplay"))
        assert len(printing.packets) > 3
    finally:
        await other.shutdown()


async def test_a_calls_packets_fall_inside_its_window_on_the_timeline(lab: Lab) -> None:
    """The SYN, SYN|ACK and ACK lie inside the connect that made them, the FIN inside or after the close.

    Checked on the engine's figures (the call's start and duration against the kernel's packet
    stamps) and on the TUI's timeline (the event book's entries), with the client idle long
    enough before each call to doze, as an idle lab process does: a call's entry must start
    when the call did, not when its request was sent.
    """
    from playground.events import CallDone
    from playground.session.wire import WireBook
    from playground.worker.main import DOZE_AFTER_NS

    wire = Wire(lab)
    book = WireBook(lab.t0)
    done: dict[str, CallDone] = {}

    def on_event(event: object) -> None:
        book.add(event)  # type: ignore[arg-type]
        if isinstance(event, CallDone):
            done[event.text] = event

    lab.subscribe(on_event)
    for line in ("spawn server", "spawn client", "server: l = socket(tcp)", "server: bind(l, 127.0.0.1:0)"):
        await run_typed_line(lab, line)
    await run_typed_line(lab, "server: listen(l, 64)")
    idle = DOZE_AFTER_NS / 1e9 * 1.5  # the scenario, not a synchronisation: a client that has dozed off
    for round_ in range(3):
        c = f"client.c{round_}"
        await run_typed_line(lab, f"client: c{round_} = socket(tcp)")
        await asyncio.sleep(idle)
        connect = await run_typed_line(lab, f"client: connect(c{round_}, server.l)")
        await asyncio.sleep(idle)
        close = await run_typed_line(lab, f"client: close(c{round_})")
        assert connect is not None and close is not None and connect.outcome.value == 0
        syn = await wire.until(lambda p, c=c: p.flags == ("SYN",) and p.src_label == c)
        syn_ack = await wire.until(lambda p, c=c: p.flags == ("SYN", "ACK") and p.dst_label == c)
        ack = await wire.until(lambda p, c=c: p.flags == ("ACK",) and p.src_label == c and p.relative_seq == 1)
        fin = await wire.until(lambda p, c=c: "FIN" in p.flags and p.src_label == c)
        start, end = connect.start_ns, connect.start_ns + connect.duration_ns
        for packet in (syn, syn_ack, ack):
            assert start <= packet.t_ns <= end, (round_, packet.summary, packet.t_ns - start, end - start)
        assert fin.t_ns >= close.start_ns, (round_, fin.summary, fin.t_ns - close.start_ns)
        # The TUI's timeline: the calls' entries start when the calls did.
        for text, result in ((f"client: connect(c{round_}, server.l)", connect), (f"client: close(c{round_})", close)):
            entry = next(e for e in book.entries if e.call_id == done[text].call_id)
            assert entry.t_ns <= syn.t_ns if result is connect else entry.t_ns <= fin.t_ns
            assert entry.t_ns + (entry.duration_ns or 0) >= (ack.t_ns if result is connect else entry.t_ns)
