"""The wire in the TUI: packets in the log, the kernel's hidden sockets, the ladder, SVG and pcap exports.

Real app, real engine, real packets on the lab's loopback; every wait is bounded and ends as
soon as the screen shows what is awaited.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from playground.session.wire import PACKET_MARK
from tests.helpers import drawn_call
from tests.widgets.helpers import connected_pair, log_lines, log_text, ready, run_line, select, tree_text, wait_for
from widgets.app import SockplayApp

SIZE = (120, 40)


def _need_capture(app: SockplayApp) -> None:
    lab = app.session.lab
    if lab.capture is None:
        pytest.skip(f"no packet capture here: {lab.capture_reason}")


async def _focus_tree(pilot) -> None:
    """Keys go to the screen's bindings, not to the command line a typed line left focused."""
    from widgets.lab_tree import LabTree

    tree = pilot.app.screen.query_one(LabTree)
    tree.focus()
    await wait_for(pilot, lambda: tree.has_focus, "the Lab pane to have focus")


def _index(lines: list[str], fragment: str) -> int:
    return next(i for i, line in enumerate(lines) if fragment in line)


async def _closed_both_ways(pilot) -> None:
    await run_line(pilot, "client: close(c)", "close(c) = 0")
    await run_line(pilot, "server: close(a)", "close(a) = 0")


async def test_packets_interleave_with_calls_and_the_toggle_hides_them():
    app = SockplayApp()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        _need_capture(app)
        await connected_pair(pilot)
        handshake = (
            "client.c > server.a SYN seq 0",
            "server.a > client.c SYN|ACK seq 0 ack 1",
            "client.c > server.a ACK seq 1 ack 1",
        )
        await wait_for(pilot, lambda: all(h in log_text(app) for h in handshake), "the handshake in the log")
        lines = log_lines(app)
        connect, syn, synack, ack = (_index(lines, f) for f in ("connect(c, server.l) = 0", *handshake))
        assert connect < syn < synack < ack, lines
        assert lines[syn].split()[2] == PACKET_MARK and lines[syn].split()[1] == "client"
        await run_line(pilot, "client: close(c)", "close(c) = 0")
        await wait_for(pilot, lambda: "client.c > server.a FIN|ACK seq 1 ack 1" in log_text(app), "the FIN")
        lines = log_lines(app)
        assert _index(lines, "close(c) = 0") < _index(lines, "FIN|ACK seq 1 ack 1")

        await _focus_tree(pilot)
        await pilot.press("t")  # calls only
        await wait_for(pilot, lambda: not any(f" {PACKET_MARK} " in line for line in log_lines(app)), "no packets")
        assert "connect(c, server.l) = 0" in log_text(app)
        await pilot.press("t")  # packets only
        await wait_for(pilot, lambda: "connect(c" not in log_text(app) and "SYN|ACK" in log_text(app), "packets only")
        assert "packets only" in app.screen.query_one("#events").border_subtitle
        await pilot.press("t")  # both
        await wait_for(pilot, lambda: "connect(c" in log_text(app) and "SYN|ACK" in log_text(app), "both again")


async def test_time_wait_under_its_process_with_a_timer_and_the_ladder(tmp_path):
    app = SockplayApp()
    app.export_dir = tmp_path  # type: ignore[attr-defined]
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        _need_capture(app)
        assert "private namespace" in app.session.wire.network_text or "host" in app.session.wire.network_text
        await connected_pair(pilot)
        await _closed_both_ways(pilot)

        # The client closed first: its socket sits in TIME-WAIT with no descriptor, under client.
        pattern = re.compile(r"^  c no fd tcp TIME-WAIT .*time-wait (\d+\.\d) s$", re.M)
        await wait_for(pilot, lambda: pattern.search(tree_text(app)), "TIME-WAIT under client")
        text = tree_text(app)
        assert text.index("client  pid") < pattern.search(text).start()  # type: ignore[union-attr]
        first = float(pattern.search(text).group(1))  # type: ignore[union-attr]
        await wait_for(
            pilot,
            lambda: float(pattern.search(tree_text(app)).group(1)) < first,  # type: ignore
            "the timer to count down",
        )
        hidden = next(h for h in app.lab_view.hidden if h.process == "client")
        assert hidden.state == "TIME-WAIT" and hidden.timer == "time-wait" and 0 < hidden.expires_ms <= 60_000
        await select(pilot, hidden.key)
        inspector = app.screen.query_one("#inspector")
        await wait_for(pilot, lambda: "client.c" in str(inspector.border_title), "the Inspector on client.c")
        body = str(app.screen.query_one("#kernel-body").render())
        assert "time-wait" in body

        # The ladder of that connection: its arrows and each side's states.
        await _focus_tree(pilot)
        await pilot.press("d")
        from widgets.ladder_view import LadderLines, LadderScreen

        await wait_for(pilot, lambda: isinstance(app.screen, LadderScreen), "the ladder screen")
        view = app.screen.query_one(LadderLines)
        for fragment in (
            "SYN seq 0",
            "SYN|ACK seq 0 ack 1",
            "FIN|ACK seq 1 ack 1",
            "ESTABLISHED",
            "FIN-WAIT-1",
            "TIME-WAIT",
            "CLOSE-WAIT",
            "LAST-ACK",
        ):
            await wait_for(pilot, lambda f=fragment: f in view.plain, f"{fragment!r} in the ladder")
        # (a close that ran a millisecond or more with its FIN inside it, as on a busy machine, is drawn
        # where it began and where it returned: `close(c) ...`, then `... = 0`)
        await wait_for(pilot, lambda: drawn_call(view.plain, "close(c) = 0"), "close(c) in the ladder")
        assert "▶│" in view.plain and "│◀" in view.plain
        await pilot.press("s")
        await wait_for(pilot, lambda: list(tmp_path.glob("*.svg")), "the SVG file")
        svg = next(tmp_path.glob("*.svg"))
        root = ET.parse(svg).getroot()
        assert root.tag.endswith("svg")
        assert "SYN" in svg.read_text()
        await wait_for(
            pilot,
            lambda: str(svg) in str(app.screen.query_one("#ladder-title").render()),
            "where the SVG went, in the title",
        )
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, LadderScreen), "back on the main screen")

        # The packets so far, as pcap.
        await _focus_tree(pilot)
        await pilot.press("o")
        await wait_for(
            pilot,
            lambda: list(tmp_path.glob("*.pcap")) and "pcap" in log_text(app) and "written to" in log_text(app),
            "the pcap file",
        )
        dpkt = pytest.importorskip("dpkt")
        pcap = next(tmp_path.glob("*.pcap"))
        assert str(pcap) in log_text(app)
        with pcap.open("rb") as f:
            frames = [dpkt.ethernet.Ethernet(buf) for _ts, buf in dpkt.pcap.Reader(f)]
        tcp = [frame.data.data for frame in frames if isinstance(frame.data.data, dpkt.tcp.TCP)]
        assert len(tcp) >= 7  # handshake (3), FIN and ACK both ways (4)
        assert tcp[0].flags & dpkt.tcp.TH_SYN and not tcp[0].flags & dpkt.tcp.TH_ACK


async def test_pcap_option_writes_every_packet(tmp_path):
    path = tmp_path / "session.pcap"
    app = SockplayApp(pcap=str(path))  # what `sockplay --pcap FILE` passes
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        _need_capture(app)
        await connected_pair(pilot)
        await wait_for(pilot, lambda: "SYN|ACK" in log_text(app), "the handshake in the log")
    dpkt = pytest.importorskip("dpkt")
    with path.open("rb") as f:
        frames = [dpkt.ethernet.Ethernet(buf) for _ts, buf in dpkt.pcap.Reader(f)]
    tcp = [frame.data.data for frame in frames if isinstance(frame.data.data, dpkt.tcp.TCP)]
    assert len(tcp) >= 3 and tcp[0].flags & dpkt.tcp.TH_SYN
