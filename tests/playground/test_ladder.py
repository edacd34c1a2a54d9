"""The ladder diagram: real connections in the lab's namespace, and the state machine on made-up segments."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from playground.capture import Packet
from playground.events import CallDone, CallPending
from playground.executor import run_typed_line
from playground.lab import Lab
from playground.ladder import (
    CallNote,
    Ladder,
    LadderRecorder,
    LadderSet,
    build_ladder,
    build_ladders,
    connections,
    infer,
    ladder_svg,
    ladder_text,
    samples_from_kernel,
)
from playground.ladder.model import BLOCKED_NS
from tests.helpers import REPO, connected_pair, drawn_call, whole_calls

WAIT = 5.0
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
async def recorder(lab: Lab) -> AsyncIterator[LadderRecorder]:
    if lab.capture is None:
        pytest.skip(f"no packet capture here: {lab.capture_reason}")
    rec = LadderRecorder(lab)
    yield rec
    rec.close()


async def first_ladder(rec: LadderRecorder, predicate: Callable[[Ladder], bool], what: str) -> Ladder:
    """The first connection's ladder once predicate holds (bounded wait)."""
    ok = await rec.until(lambda ladders: bool(ladders) and predicate(ladders[0]), WAIT)
    if not ok:
        shown = "\n".join(ladder_text(rec.ladders[0], 100)) if rec.ladders else "no connection"
        pytest.fail(f"{what}; the ladder is:\n{shown}")
    return rec.ladders[0]


def index_of(ladder: Ladder, predicate: Callable) -> int:
    return next(i for i, row in enumerate(ladder.rows) if predicate(row))


def calls(ladder: Ladder, side: int | None = None) -> list[str]:
    return [r.text for r in ladder.rows if r.kind == "call" and (side is None or r.side == side)]


def closed(la: Ladder, states: tuple[str, str] = ("TIME-WAIT", "CLOSED")) -> bool:
    """Both FINs seen and acknowledged (the kernel's view alone may get there before the capture does)."""
    fins = [s for s in la.segments if "FIN" in s.flags]
    return la.states == states and {s.side for s in fins} == {0, 1} and la.segments[-1].flags == ("ACK",)


def kernel_states(lab: Lab) -> dict[tuple, str]:
    return {(tuple(s.local), tuple(s.peer)): s.state for _p, _l, s in lab.kernel_sockets()}


# On the real kernel.


async def test_handshake_rows_states_and_calls(lab: Lab, recorder: LadderRecorder) -> None:
    await connected_pair(lab)
    ladder = await first_ladder(
        recorder, lambda la: len(la.segments) >= 3 and any("accept" in t for t in calls(la)), "no handshake"
    )
    assert [c.name for c in ladder.columns] == ["client.c", "server.a"]
    assert ladder.initial == ("CLOSED", "LISTEN")
    syn, syn_ack, ack = ladder.segments[:3]
    assert [s.text for s in (syn, syn_ack, ack)] == ["SYN seq 0", "SYN|ACK seq 0 ack 1", "ACK seq 1 ack 1"]
    assert [s.side for s in (syn, syn_ack, ack)] == [0, 1, 0]
    assert syn.states == ("SYN-SENT", "SYN-RECV")
    assert syn_ack.states == ("ESTABLISHED", "SYN-RECV")
    assert ack.states == ("ESTABLISHED", "ESTABLISHED")
    assert syn.changed == (True, True) and syn_ack.changed == (True, False) and ack.changed == (False, True)
    assert whole_calls(ladder, 0)[:2] == ["c = socket(tcp) = 3", "connect(c, server.l) = 0"]
    assert calls(ladder, 1)[0].startswith("a = accept(l) = 4 from 127.0.0.1:")
    connect = index_of(ladder, lambda r: r.text.startswith("connect("))
    accept = index_of(ladder, lambda r: r.text.startswith("a = accept("))
    rows = ladder.rows
    assert connect < rows.index(syn) and accept > rows.index(ack)
    # Times: ms since the lab's t0, in order.
    assert all(r.t_ms == pytest.approx((r.t_ns - lab.t0) / 1e6) for r in rows)
    assert [r.t_ns for r in rows] == sorted(r.t_ns for r in rows) and rows[0].t_ms > 0


async def test_orderly_close_fin_wait_close_wait_last_ack_time_wait(lab: Lab, recorder: LadderRecorder) -> None:
    await connected_pair(lab)
    await run_typed_line(lab, "client: close(c)")
    ladder = await first_ladder(recorder, lambda la: any("FIN" in s.flags for s in la.segments), "no FIN")
    fin = next(s for s in ladder.segments if "FIN" in s.flags)
    assert fin.side == 0 and fin.text == "FIN|ACK seq 1 ack 1 len 0"
    assert fin.states == ("FIN-WAIT-1", "CLOSE-WAIT")
    close = index_of(ladder, lambda r: r.text in ("close(c) = 0", "close(c) ..."))  # (where it began)
    assert ladder.rows[close].side == 0 and close < ladder.rows.index(fin)
    # The server's kernel acknowledges the FIN by itself (a delayed ACK): FIN-WAIT-2.
    ladder = await first_ladder(
        recorder,
        lambda la: any(s.side == 1 and s.flags == ("ACK",) and s.ack == fin.seq + 1 for s in la.segments),
        "the FIN was never acknowledged",
    )
    ack = next(s for s in ladder.segments if s.side == 1 and s.flags == ("ACK",) and s.ack == 2)
    assert ack.states == ("FIN-WAIT-2", "CLOSE-WAIT")
    assert (await run_typed_line(lab, "server: read(a, 100)")).outcome.value == 0
    await run_typed_line(lab, "server: close(a)")
    ladder = await first_ladder(recorder, closed, "not closed")
    server_fin = next(s for s in ladder.segments if s.side == 1 and "FIN" in s.flags)
    assert server_fin.states == ("TIME-WAIT", "LAST-ACK")
    assert ladder.history(0) == ["CLOSED", "SYN-SENT", "ESTABLISHED", "FIN-WAIT-1", "FIN-WAIT-2", "TIME-WAIT"]
    assert ladder.history(1) == ["LISTEN", "SYN-RECV", "ESTABLISHED", "CLOSE-WAIT", "LAST-ACK", "CLOSED"]
    # The kernel agrees (the client's socket sits in TIME-WAIT), so it corrects nothing.
    client = (ladder.columns[0].address, ladder.columns[1].address)
    assert kernel_states(lab)[client] == "TIME-WAIT"
    recorder.sample()
    assert not [r for r in recorder.ladders[0].rows if r.kind == "kernel"]
    # The text shows the same story.
    text = "\n".join(ladder_text(recorder.ladders[0], 80))
    for state in ("FIN-WAIT-1", "FIN-WAIT-2", "TIME-WAIT", "CLOSE-WAIT", "LAST-ACK"):
        assert state in text
    assert drawn_call(text, "close(c) = 0") and "FIN|ACK seq 1 ack 1 len 0" in text


async def test_fin_acknowledged_by_the_peers_fin(lab: Lab, recorder: LadderRecorder) -> None:
    """The server closes before its delayed ACK leaves: its FIN|ACK acknowledges the client's FIN too."""
    await connected_pair(lab)
    await run_typed_line(lab, "client: close(c)")
    await run_typed_line(lab, "server: close(a)")
    ladder = await first_ladder(recorder, closed, "not closed")
    client_fin = next(s for s in ladder.segments if s.side == 0 and "FIN" in s.flags)
    server_fin = next(s for s in ladder.segments if s.side == 1 and "FIN" in s.flags)
    acked_alone = any(
        s.side == 1 and s.flags == ("ACK",) and s.ack == client_fin.seq + 1 and s.t_ns < server_fin.t_ns
        for s in ladder.segments
    )
    if acked_alone:  # the delayed ACK left first after all (a slow machine): the usual path
        assert ladder.history(0)[3:] == ["FIN-WAIT-1", "FIN-WAIT-2", "TIME-WAIT"]
    else:
        assert server_fin.ack == client_fin.seq + 1
        assert server_fin.states == ("TIME-WAIT", "LAST-ACK")  # FIN-WAIT-1 straight to TIME-WAIT
        assert ladder.history(0)[3:] == ["FIN-WAIT-1", "TIME-WAIT"]
    assert ladder.history(1)[3:] == ["CLOSE-WAIT", "LAST-ACK", "CLOSED"]


async def test_close_with_unread_data_sends_rst_and_leaves_no_time_wait(lab: Lab, recorder: LadderRecorder) -> None:
    await connected_pair(lab)
    await run_typed_line(lab, 'client: write(c, "hello")')
    await first_ladder(recorder, lambda la: any(s.length == 5 for s in la.segments), "no data")
    await run_typed_line(lab, "server: close(a)")
    ladder = await first_ladder(recorder, lambda la: any("RST" in s.flags for s in la.segments), "no RST")
    data = next(s for s in ladder.segments if s.length == 5)
    assert data.text == "PSH|ACK seq 1 ack 1 len 5" and data.label == 'PSH|ACK seq 1 ack 1 len 5 "hello"'
    assert data.states == ("ESTABLISHED", "ESTABLISHED")  # data changes no state
    rst = next(s for s in ladder.segments if "RST" in s.flags)
    assert rst.side == 1 and "FIN" not in rst.flags and rst.states == ("CLOSED", "CLOSED")
    assert not [s for s in ladder.segments if "FIN" in s.flags]
    assert index_of(ladder, lambda r: r.text in ("close(a) = 0", "close(a) ...")) < ladder.rows.index(rst)
    assert ladder.history(1) == ["LISTEN", "SYN-RECV", "ESTABLISHED", "CLOSED"]
    assert ladder.history(0) == ["CLOSED", "SYN-SENT", "ESTABLISHED", "CLOSED"]
    ends = {c.address for c in ladder.columns}
    assert not [
        state for (local, _peer), state in kernel_states(lab).items() if local in ends and state != "LISTEN"
    ]  # no TIME-WAIT anywhere: the RST ended the connection
    recorder.sample()
    assert not [r for r in recorder.ladders[0].rows if r.kind == "kernel"]


async def test_so_linger_zero_makes_close_send_rst(lab: Lab, recorder: LadderRecorder) -> None:
    await connected_pair(lab)
    await run_typed_line(lab, "client: setsockopt(c, SO_LINGER, {1, 0})")
    await run_typed_line(lab, "client: close(c)")
    ladder = await first_ladder(recorder, lambda la: any("RST" in s.flags for s in la.segments), "no RST")
    rst = next(s for s in ladder.segments if "RST" in s.flags)
    assert rst.side == 0 and rst.states == ("CLOSED", "CLOSED")
    assert not [s for s in ladder.segments if "FIN" in s.flags]
    assert "setsockopt(c, SO_LINGER, {1, 0}) = 0" in calls(ladder, 0)
    assert whole_calls(ladder, 0)[-1] == "close(c) = 0"
    assert "TIME-WAIT" not in ladder.history(0) and "TIME-WAIT" not in ladder.history(1)


async def test_connection_refused(lab: Lab, recorder: LadderRecorder) -> None:
    for line in (
        "spawn server",
        "spawn client",
        "server: l = socket(tcp)",
        "server: bind(l, 127.0.0.1:0)",
        "client: c = socket(tcp)",
    ):
        await run_typed_line(lab, line)
    result = await run_typed_line(lab, "client: connect(c, server.l)")
    assert result.outcome.errno == "ECONNREFUSED"
    ladder = await first_ladder(recorder, lambda la: len(la.segments) >= 2, "no answer to the SYN")
    assert [c.name for c in ladder.columns] == ["client.c", "server.l"]
    assert ladder.initial == ("CLOSED", "CLOSED")  # nothing listened
    syn, rst = ladder.segments
    assert syn.states == ("SYN-SENT", "CLOSED") and "RST" in rst.flags and rst.states == ("CLOSED", "CLOSED")
    # Drawn on one row; or, on a busy machine where the connect ran a millisecond or more with its
    # SYN and the RST inside it (the packets stamped inside their call), where it began and returned.
    drawn = calls(ladder, 0)
    assert "connect(c, server.l) = -1 ECONNREFUSED" in drawn or (
        result.duration_ns >= 1_000_000 and "connect(c, server.l) ..." in drawn and "... = -1 ECONNREFUSED" in drawn
    ), (drawn, result.duration_ns)


async def test_simultaneous_close_closing_and_the_kernel_wins(lab: Lab, recorder: LadderRecorder) -> None:
    """Both ends close before either sees the other's FIN: CLOSING.

    The client's FIN waits behind data the server's full window holds back, so close() puts it
    in FIN-WAIT-1 with nothing on the wire: only the kernel's view shows it. The server's FIN
    then reaches a client in FIN-WAIT-1 (CLOSING), and both end in TIME-WAIT.
    """
    for line in (
        "spawn server",
        "spawn client",
        "server: l = socket(tcp)",
        "server: setsockopt(l, SO_RCVBUF, 4096)",
        "server: bind(l, 127.0.0.1:0)",
        "server: listen(l, 8)",
        "client: c = socket(tcp)",
        "client: setsockopt(c, SO_SNDBUF, 4096)",
        "client: connect(c, server.l)",
        "server: a = accept(l)",
        "client: fcntl(c, O_NONBLOCK, 1)",
        'client: write(c, "x" * 100000)',
    ):
        result = await run_typed_line(lab, line)
        assert result is None or result.outcome.errno is None, (line, result)
    client = next(
        (local, peer)
        for (local, peer), _ in kernel_states(lab).items()
        if peer[1] and local[1] != lab.processes["server"].addresses["l"].port
    )
    await run_typed_line(lab, "client: close(c)")
    assert kernel_states(lab)[client] == "FIN-WAIT-1"
    ladder = await first_ladder(recorder, lambda la: any(r.kind == "kernel" for r in la.rows), "no kernel row")
    assert not [s for s in ladder.segments if "FIN" in s.flags]  # the FIN has not left yet
    kernel = next(r for r in ladder.rows if r.kind == "kernel")
    assert (kernel.side, kernel.text, kernel.states) == (0, "FIN-WAIT-1", ("FIN-WAIT-1", "ESTABLISHED"))
    await run_typed_line(lab, "server: shutdown(a, SHUT_WR)")
    for _ in range(100):
        if (await run_typed_line(lab, "server: read(a, 100000)")).outcome.value == 0:
            break
    ladder = await first_ladder(recorder, lambda la: closed(la, ("TIME-WAIT", "TIME-WAIT")), "not in TIME-WAIT")
    assert ladder.history(0) == ["CLOSED", "SYN-SENT", "ESTABLISHED", "FIN-WAIT-1", "CLOSING", "TIME-WAIT"]
    assert ladder.history(1) == ["LISTEN", "SYN-RECV", "ESTABLISHED", "FIN-WAIT-1", "FIN-WAIT-2", "TIME-WAIT"]
    server_fin = next(s for s in ladder.segments if s.side == 1 and "FIN" in s.flags)
    assert server_fin.states == ("CLOSING", "FIN-WAIT-1")
    assert kernel_states(lab)[client] == "TIME-WAIT"
    # From the wire alone, the client looks like the passive closer: the kernel's view is what corrects it.
    wire_only = build_ladder(lab.packets, t0_ns=lab.t0)
    assert wire_only.history(0)[3:] == ["CLOSE-WAIT", "LAST-ACK", "CLOSED"]
    with_kernel = build_ladder(lab.packets, t0_ns=lab.t0, samples=[(kernel.t_ns, client, "FIN-WAIT-1")])
    assert with_kernel.history(0)[3:] == ["FIN-WAIT-1", "CLOSING", "TIME-WAIT"]


async def test_forked_child_and_its_exit_are_drawn_on_the_parents_column(lab: Lab, recorder: LadderRecorder) -> None:
    await connected_pair(lab)
    await run_typed_line(lab, "server: kid = fork()")
    await run_typed_line(lab, "server: close(a)")  # the child still holds the socket: no FIN
    await run_typed_line(lab, 'kid: write(a, "hi")')
    await run_typed_line(lab, "kid: exit(0)")  # its end closes the last descriptor: the FIN
    ladder = await first_ladder(recorder, lambda la: any("FIN" in s.flags for s in la.segments), "no FIN")
    ladder = await first_ladder(recorder, lambda la: any(r.kind == "end" for r in la.rows), "no end")
    texts = [(r.kind, r.side, r.text) for r in ladder.rows if r.kind in ("call", "end")]
    # A call the lab reported pending (over 10 ms, as under a heavy load) is drawn twice, as a blocked one.
    closed = "close(a) = 0" if ("call", 1, "close(a) = 0") in texts else "... = 0"
    assert ("call", 1, closed) in texts and (closed == "close(a) = 0" or ("call", 1, "close(a) ...") in texts)
    assert ("call", 1, 'write(a, "hi") = 2') in texts and ("end", 1, "kid exited 0") in texts
    kid_write = index_of(ladder, lambda r: r.text == 'write(a, "hi") = 2')
    assert ladder.rows[kid_write].process == "kid"
    data = index_of(ladder, lambda r: r.kind == "segment" and r.length == 2)
    end = index_of(ladder, lambda r: r.kind == "end")
    fin = index_of(ladder, lambda r: r.kind == "segment" and "FIN" in r.flags)
    assert kid_write < data < end < fin
    assert index_of(ladder, lambda r: r.text == closed and r.process == "server") < kid_write
    assert 'kid: write(a, "hi") = 2' in "\n".join(ladder_text(ladder, 80))


async def test_a_call_answered_late_but_not_blocked_in_the_kernel_is_drawn_once(
    lab: Lab, recorder: LadderRecorder
) -> None:
    """The lab reports a call pending after 10 ms; a process scheduled late (here: stopped) did not block in it."""
    await connected_pair(lab)
    pending: list[CallPending] = []
    done: list[CallDone] = []
    lab.subscribe(lambda e: pending.append(e) if isinstance(e, CallPending) else None)
    lab.subscribe(lambda e: done.append(e) if isinstance(e, CallDone) else None)
    server = lab.process("server")
    os.kill(server.pid, signal.SIGSTOP)
    try:
        close = asyncio.create_task(run_typed_line(lab, "server: close(a)"))
        deadline = time.monotonic() + 5
        while not pending and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        assert pending, "the lab never reported the close pending"
    finally:
        os.kill(server.pid, signal.SIGCONT)
    result = await asyncio.wait_for(close, 5)
    assert result is not None and result.duration_ns < 10_000_000  # it ran at once, once the process ran
    (event,) = [e for e in done if e.text == "server: close(a)"]
    note = CallNote.from_event(event, lab)
    assert event.was_pending and note is not None and not note.blocked
    ladder = await first_ladder(recorder, lambda la: any("FIN" in s.flags for s in la.segments), "no FIN")
    drawn = calls(ladder, 1)
    if result.duration_ns < BLOCKED_NS:
        assert "close(a) = 0" in drawn and "close(a) ..." not in drawn, drawn
    else:  # a busy machine: it ran a millisecond or more with its FIN inside it, drawn as any such call is
        assert drawn_call("\n".join(drawn), "close(a) = 0"), (drawn, result.duration_ns)


async def test_svg_is_valid_xml_with_the_labels_escaped(lab: Lab, recorder: LadderRecorder, tmp_path: Path) -> None:
    await connected_pair(lab)
    await run_typed_line(lab, 'client: write(c, "<a & \\"b\\">\\x01")')  # 10 bytes
    await run_typed_line(lab, "client: close(c)")
    await first_ladder(recorder, lambda la: any("FIN" in s.flags for s in la.segments), "no FIN")
    out = tmp_path / "ladder.svg"
    assert await recorder.save(str(out)) == 1
    root = ET.parse(out).getroot()
    assert root.tag == f"{SVG}svg"
    texts = ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]
    for label in (
        "client.c",
        "server.a",
        "SYN seq 0",
        "SYN|ACK seq 0 ack 1",
        "FIN|ACK seq 11 ack 1 len 0",
        "FIN-WAIT-1",
        "CLOSE-WAIT",
        "ESTABLISHED",
        "LISTEN",
    ):
        assert label in texts, label
    assert drawn_call("\n".join(texts), "close(c) = 0")
    assert 'PSH|ACK seq 1 ack 1 len 10 "<a & \\"b\\">\\x01"' in texts
    assert any(t.startswith('write(c, "<a & \\"b\\">\\x01") = 10') for t in texts)
    assert len(list(root.iter(f"{SVG}line"))) >= 2 + 5  # the two columns, an arrow per segment
    source = out.read_text()
    assert "href" not in source and "<script" not in source  # standalone: nothing fetched, nothing run


async def test_text_fits_the_width_asked_for(lab: Lab, recorder: LadderRecorder) -> None:
    await connected_pair(lab)
    await run_typed_line(lab, 'client: write(c, "' + "y" * 300 + '")')
    await run_typed_line(lab, "client: close(c)")
    ladder = await first_ladder(recorder, lambda la: any("FIN" in s.flags for s in la.segments), "no FIN")
    for width in (24, 40, 60, 80, 100, 132, 200):
        lines = ladder_text(ladder, width)
        assert max(len(line) for line in lines) <= width, (width, lines)
        assert sum(1 for line in lines if "▶" in line or "◀" in line) == len(ladder.segments)
    lines = ladder_text(ladder, 80)
    assert lines[0].split() == ["client.c", "server.a"]
    assert any("├" in line and "SYN seq 0" in line and line.rstrip().endswith("▶│") for line in lines)
    assert any("│◀" in line and "SYN|ACK seq 0 ack 1" in line and line.rstrip().endswith("┤") for line in lines)
    assert any(line.split() == ["FIN-WAIT-1", "│", "│", "CLOSE-WAIT"] for line in lines)
    assert any(line.strip().startswith(("│ close(c) = 0", "│ close(c) ...")) for line in lines)
    # Wide enough: times (ms since t0) in a gutter; rendering from a row on gives just those rows' lines.
    wide = ladder_text(ladder, 120)
    assert f"{ladder.rows[0].t_ms:9.3f}" in wide[3]
    tail = ladder_text(ladder, 80, start=len(ladder.rows) - 1)
    assert tail[0] == lines[-len(tail)]
    with pytest.raises(ValueError):
        ladder_text(ladder, 20)


def test_cli_run_writes_the_ladder(tmp_path: Path) -> None:
    script = tmp_path / "fin.sockplay"
    script.write_text(
        "sockplay 1\nspawn server\nspawn client\nserver: l = socket(tcp)\nserver: bind(l, 127.0.0.1:0)\n"
        "server: listen(l, 8)\nclient: c = socket(tcp)\nclient: connect(c, server.l)\nserver: a = accept(l)\n"
        "client: close(c)\nserver: read(a, 100) = 0\nserver: close(a)\n"
        "client: d = socket(tcp)\nclient: connect(d, server.l)\nserver: b = accept(l)\n"
        "client: setsockopt(d, SO_LINGER, {1, 0})\nclient: close(d)\n"
    )
    out = tmp_path / "ladder.svg"
    result = subprocess.run(
        [sys.executable, "-m", "playground.cli", "run", "--ladder", str(out), str(script)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    if "no ladder written" in result.stderr:
        pytest.skip(result.stderr.strip())
    root = ET.parse(out).getroot()
    texts = ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]
    assert sum(1 for t in texts if "client.c ⇄ server.a" in t) == 1
    assert sum(1 for t in texts if "client.d ⇄ server.b" in t) == 1
    assert "TIME-WAIT" in texts and "close(d) = 0" in texts
    assert any(t.startswith("RST") for t in texts)


async def test_kernel_samples_from_a_live_lab_name_both_ends(lab: Lab, recorder: LadderRecorder) -> None:
    await connected_pair(lab)
    samples = samples_from_kernel(lab.kernel_sockets(), lab.now_ns())
    ladder = await first_ladder(recorder, lambda la: len(la.segments) >= 3, "no handshake")
    ends = {(c.address, o.address) for c, o in (ladder.columns, ladder.columns[::-1])}
    assert {side for _t, side, state in samples if state == "ESTABLISHED"} == ends


# The state machine on made-up segments.

A, B = ("10.0.0.1", 40000), ("10.0.0.2", 80)


def seg(
    t: float, src: tuple, flags: str, seq: int, ack: int = 0, length: int = 0, raw_seq: int | None = None
) -> Packet:
    """A segment at t ms."""
    dst = B if src == A else A
    names = {A: "client.c", B: "server.a"}
    return Packet(
        t_ns=int(t * 1e6),
        protocol="TCP",
        src=src,
        dst=dst,
        length=length,
        flags=tuple(flags.split("|")),
        seq=seq if raw_seq is None else raw_seq,
        ack=ack,
        relative_seq=seq,
        relative_ack=ack,
        window=512,
        src_label=names[src],
        dst_label=names[dst],
    )


HANDSHAKE = [seg(1, A, "SYN", 0), seg(2, B, "SYN|ACK", 0, 1), seg(3, A, "ACK", 1, 1)]


def test_machine_a_lost_segment_changes_only_its_sender() -> None:
    lost_syn_ack = seg(2, B, "SYN|ACK", 0, 1)
    lost_syn_ack.fate = "lost-loss"
    lost_fin = seg(4, A, "FIN|ACK", 1, 1)
    lost_fin.fate = "lost-cut"
    lost_rst = seg(5, B, "RST", 1)
    lost_rst.fate = "lost-cut"
    assert infer([seg(1, A, "SYN", 0), lost_syn_ack, *HANDSHAKE[1:], lost_fin, lost_rst]) == [
        ("SYN-SENT", "SYN-RECV"),
        ("SYN-SENT", "SYN-RECV"),  # the client never saw the SYN|ACK
        ("ESTABLISHED", "SYN-RECV"),
        ("ESTABLISHED", "ESTABLISHED"),
        ("FIN-WAIT-1", "ESTABLISHED"),  # nor the server the FIN
        ("FIN-WAIT-1", "CLOSED"),  # the RST closed its sender only
    ]


def test_machine_orderly_close_and_data_change_nothing() -> None:
    packets = HANDSHAKE + [
        seg(4, A, "PSH|ACK", 1, 1, 3),
        seg(5, B, "ACK", 1, 4),
        seg(6, A, "FIN|ACK", 4, 1),
        seg(7, B, "ACK", 1, 5),
        seg(8, B, "FIN|ACK", 1, 5),
        seg(9, A, "ACK", 5, 2),
    ]
    assert infer(packets) == [
        ("SYN-SENT", "SYN-RECV"),
        ("ESTABLISHED", "SYN-RECV"),
        ("ESTABLISHED", "ESTABLISHED"),
        ("ESTABLISHED", "ESTABLISHED"),
        ("ESTABLISHED", "ESTABLISHED"),
        ("FIN-WAIT-1", "CLOSE-WAIT"),
        ("FIN-WAIT-2", "CLOSE-WAIT"),
        ("TIME-WAIT", "LAST-ACK"),
        ("TIME-WAIT", "CLOSED"),
    ]


def test_machine_an_ack_below_the_fin_does_not_acknowledge_it() -> None:
    packets = HANDSHAKE + [seg(4, A, "FIN|PSH|ACK", 1, 1, 10), seg(5, B, "ACK", 1, 6), seg(6, B, "ACK", 1, 12)]
    assert [s[0] for s in infer(packets)[3:]] == ["FIN-WAIT-1", "FIN-WAIT-1", "FIN-WAIT-2"]


def test_machine_simultaneous_open() -> None:
    packets = [seg(1, A, "SYN", 0), seg(2, B, "SYN", 0), seg(3, A, "SYN|ACK", 0, 1), seg(4, B, "SYN|ACK", 0, 1)]
    ladder = build_ladder(packets)
    assert ladder.initial == ("CLOSED", "CLOSED")
    # One capture sees one order: A's SYN reaches B before B's own leaves (B: still CLOSED), then
    # B's SYN finds A in SYN-SENT (SYN-RECV), A's SYN|ACK finds B in SYN-SENT (ESTABLISHED), and so on.
    assert [r.states for r in ladder.segments] == [
        ("SYN-SENT", "CLOSED"),
        ("SYN-RECV", "SYN-SENT"),
        ("SYN-RECV", "ESTABLISHED"),
        ("ESTABLISHED", "ESTABLISHED"),
    ]


def test_machine_crossing_fins_go_through_closing() -> None:
    # B's FIN does not acknowledge A's (ack 1): it was sent before A's FIN arrived. A capture sees
    # one order only: A's FIN first (B: CLOSE-WAIT), then B's, which finds A in FIN-WAIT-1 with its
    # FIN unacknowledged: CLOSING, until B's ACK of it (TIME-WAIT).
    packets = HANDSHAKE + [
        seg(4, A, "FIN|ACK", 1, 1),
        seg(5, B, "FIN|ACK", 1, 1),
        seg(6, A, "ACK", 2, 2),
        seg(7, B, "ACK", 2, 2),
    ]
    assert infer(packets)[3:] == [
        ("FIN-WAIT-1", "CLOSE-WAIT"),
        ("CLOSING", "LAST-ACK"),
        ("CLOSING", "CLOSED"),
        ("TIME-WAIT", "CLOSED"),
    ]


def test_machine_rst_closes_both_and_refused_connect() -> None:
    assert infer(HANDSHAKE + [seg(4, B, "RST|ACK", 1, 1)])[-1] == ("CLOSED", "CLOSED")
    refused = [seg(1, A, "SYN", 0), seg(2, B, "RST|ACK", 0, 1)]
    ladder = build_ladder(refused)
    assert ladder.initial == ("CLOSED", "CLOSED") and ladder.history(0) == ["CLOSED", "SYN-SENT", "CLOSED"]
    # An RST in TIME-WAIT ends it (Linux, net.ipv4.tcp_rfc1337 = 0).
    late = HANDSHAKE + [
        seg(4, A, "FIN|ACK", 1, 1),
        seg(5, B, "FIN|ACK", 1, 2),
        seg(6, A, "ACK", 2, 2),
        seg(7, B, "RST", 2),
    ]
    assert [s[0] for s in infer(late)[-3:]] == ["TIME-WAIT", "TIME-WAIT", "CLOSED"]


def test_machine_from_mid_connection() -> None:
    assert infer([seg(1, A, "ACK", 5, 5), seg(2, A, "FIN|ACK", 5, 5), seg(3, B, "ACK", 5, 6)]) == [
        ("ESTABLISHED", "ESTABLISHED"),
        ("FIN-WAIT-1", "CLOSE-WAIT"),
        ("FIN-WAIT-2", "CLOSE-WAIT"),
    ]


def test_connections_by_four_tuple_and_a_new_syn_starts_a_new_one() -> None:
    other = ("10.0.0.1", 40001)
    first = HANDSHAKE + [seg(4, A, "FIN|ACK", 1, 1), seg(5, B, "FIN|ACK", 1, 2), seg(6, A, "ACK", 2, 2)]
    third = Packet(
        t_ns=5_500_000,
        protocol="TCP",
        src=other,
        dst=B,
        length=0,
        flags=("SYN",),
        src_label="client.d",
        dst_label="server.b",
    )
    again = [seg(7, A, "SYN", 0, raw_seq=999), seg(8, B, "SYN|ACK", 0, 1, raw_seq=555)]
    udp = Packet(t_ns=5_600_000, protocol="UDP", src=A, dst=B, length=3)
    found = connections([*first, third, udp, *again])
    assert [c.labels for c in found] == [("client.c", "server.a"), ("client.d", "server.b"), ("client.c", "server.a")]
    assert [len(c.packets) for c in found] == [6, 1, 2]
    assert found[0].until_ns == again[0].t_ns and found[2].until_ns is None
    ladders = build_ladders([*first, third, *again])
    assert ladders[2].history(0) == ["CLOSED", "SYN-SENT", "ESTABLISHED"]


def note(t: float, text: str, var: str = "c", process: str = "client", **kw) -> CallNote:
    """A call made at t ms (returning at `end` ms)."""
    name = text.split("(")[0].split("= ")[-1]
    return CallNote(
        t_ns=int(t * 1e6),
        process=process,
        text=text,
        sockets=(var,),
        name=name,
        end_ns=int(kw.pop("end", t) * 1e6),
        outcome="= " + text.rsplit("= ", 1)[-1],
        **kw,
    )


def test_calls_are_tied_to_their_connection_and_placed_by_time() -> None:
    calls = [
        note(0, "c = socket(tcp) = 3", defines="c"),
        note(0.5, "connect(c, server.l) = 0", local=A, end=0.9),
        note(4, "a = accept(l) = 4", var="a", process="server", defines="a", local=B, peer=A),
        note(5, "close(c) = 0"),
        note(5.5, "read(c, 10) = -1 EBADF"),  # after close: not about the connection
        note(6, "c = socket(tcp) = 3", defines="c"),  # a new life of c, not connected
        note(7, "close(c) = 0"),
    ]
    packets = HANDSHAKE + [seg(5.2, A, "FIN|ACK", 1, 1)]
    ladder = build_ladder(packets, calls, t0_ns=0)
    rows = [(r.kind, r.side, r.text) for r in ladder.rows]
    assert rows == [
        ("call", 0, "c = socket(tcp) = 3"),
        ("call", 0, "connect(c, server.l) = 0"),
        ("segment", 0, "SYN seq 0"),
        ("segment", 1, "SYN|ACK seq 0 ack 1"),
        ("segment", 0, "ACK seq 1 ack 1"),
        ("call", 1, "a = accept(l) = 4"),
        ("call", 0, "close(c) = 0"),
        ("segment", 0, "FIN|ACK seq 1 ack 1 len 0"),
    ]
    assert ladder.rows[-1].t_ms == pytest.approx(5.2)


def test_a_call_a_segment_arrived_during_is_drawn_where_it_began_and_where_it_returned() -> None:
    calls = [
        note(0, "c = socket(tcp) = 3", defines="c"),
        note(0.5, "connect(c, server.l) = 0", local=A),
        note(10, 'read(c, 100) = 2 "hi"', end=2000),
        note(3000, "read(c, 100) = 0", end=3002),
    ]
    packets = HANDSHAKE + [seg(1500, B, "PSH|ACK", 1, 1, 2)]
    ladder = build_ladder(packets, calls, t0_ns=0)
    texts = [r.text for r in ladder.rows if r.kind != "segment"]
    assert texts[2:] == ["read(c, 100) ...", '... = 2 "hi"', "read(c, 100) = 0"]
    kinds = [r.kind for r in ladder.rows][-4:]
    assert kinds == ["call", "segment", "call", "call"]


def test_incremental_rows_and_the_kernel_wins() -> None:
    ladders = LadderSet(t0_ns=0)
    ladders.add_packet(HANDSHAKE[0])
    ladder = ladders.ladders[0]
    assert ladder.take_changes() == 0 and ladder.take_changes() is None
    for packet in HANDSHAKE[1:]:
        ladders.add_packet(packet)
    assert ladder.take_changes() == 1 and len(ladder.rows) == 3
    # A call reported after the segments it caused goes in before them: redraw from there.
    ladders.add_call(note(0, "c = socket(tcp) = 3", defines="c"))
    ladders.add_call(note(0.5, "connect(c, server.l) = 0", local=A, end=0.9))
    assert ladder.take_changes() == 0 and [r.kind for r in ladder.rows][:2] == ["call", "call"]
    # The kernel says FIN-WAIT-1 with no FIN on the wire (its FIN is queued behind data): it wins.
    ladders.add_sample(10_000_000, (A, B), "FIN-WAIT-1")
    assert ladder.take_changes() == 5
    assert (ladder.rows[-1].kind, ladder.rows[-1].text, ladder.states) == (
        "kernel",
        "FIN-WAIT-1",
        ("FIN-WAIT-1", "ESTABLISHED"),
    )
    ladders.add_packet(seg(20, B, "FIN|ACK", 1, 1))
    assert ladder.states == ("CLOSING", "FIN-WAIT-1")
    # A sample taken just after a segment (the kernel may not have processed it yet) is not trusted.
    ladders.add_sample(20_100_000, (B, A), "ESTABLISHED")
    assert ladder.states == ("CLOSING", "FIN-WAIT-1")
    # Nor is one that agrees drawn at all.
    before = len(ladder.rows)
    ladders.add_sample(30_000_000, "server.a", "fin_wait-1")
    assert len(ladder.rows) == before
    svg = ladder_svg(ladder, title="made up")
    root = ET.fromstring(svg)
    assert "kernel: FIN-WAIT-1" in ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]


def test_a_short_wait_for_the_peer_is_split_a_short_write_is_not() -> None:
    calls = [
        note(0, "c = socket(tcp) = 3", defines="c"),
        note(0.5, "connect(c, server.l) = 0", local=A, end=0.9),
        note(10, 'read(c, 100) = 2 "hi"', end=10.5),
        note(12, 'write(c, "yo") = 2', end=12.5),
        note(13, "d = dup(c) = 4", var="d", defines="d"),
        note(14, "close(d) = 0", var="d"),
    ]
    calls[-2] = dataclasses.replace(calls[-2], sockets=("d", "c"))
    packets = HANDSHAKE + [
        seg(10.2, B, "PSH|ACK", 1, 1, 2),
        seg(12.1, A, "PSH|ACK", 1, 3, 2),
        seg(12.2, B, "ACK", 3, 3),
    ]
    ladder = build_ladder(packets, calls, t0_ns=0)
    rows = [(r.kind, r.text) for r in ladder.rows][5:]
    assert rows == [
        ("call", "read(c, 100) ..."),
        ("segment", "PSH|ACK seq 1 ack 1 len 2"),
        ("call", '... = 2 "hi"'),
        ("call", 'write(c, "yo") = 2'),
        ("segment", "PSH|ACK seq 1 ack 3 len 2"),
        ("segment", "ACK seq 3 ack 3"),
        ("call", "d = dup(c) = 4"),
        ("call", "close(d) = 0"),
    ]  # d names c's socket


async def test_a_threads_calls_go_on_its_processs_side_named_by_the_thread(lab: Lab, recorder: LadderRecorder) -> None:
    await connected_pair(lab)
    await run_typed_line(lab, "thread worker in server")
    await run_typed_line(lab, 'client: write(c, "hi")')
    await run_typed_line(lab, "worker: read(a, 10)")
    ladder = await first_ladder(recorder, lambda la: any("read(" in t for t in calls(la)), "no read")
    assert [c.name for c in ladder.columns] == ["client.c", "server.a"]
    assert 'worker: read(a, 10) = 2 "hi"' in calls(ladder, 1)


def test_a_kernel_reading_beside_a_segment_that_turns_no_state_is_trusted() -> None:
    """The client's FIN waits behind data (nothing on the wire says FIN-WAIT-1); the reading that says so was
    taken 0.1 ms after the server's ACK of some data was stamped: that ACK turns no state, so the reading stands."""
    packets = HANDSHAKE + [seg(4, A, "PSH|ACK", 1, 1, 100), seg(5, B, "ACK", 1, 101)]
    ladder = build_ladder(packets, t0_ns=0, samples=[(5_100_000, A, "FIN-WAIT-1")])
    assert [(r.side, r.text) for r in ladder.rows if r.kind == "kernel"] == [(0, "FIN-WAIT-1")]
    assert ladder.history(0)[-1] == "FIN-WAIT-1"


def test_a_kernel_reading_beside_a_segment_that_turns_its_state_is_not() -> None:
    """The same reading 0.1 ms after the server's FIN was stamped: which came first cannot be told."""
    packets = HANDSHAKE + [seg(5, B, "FIN|ACK", 1, 1)]
    ladder = build_ladder(packets, t0_ns=0, samples=[(5_100_000, A, "FIN-WAIT-1")])
    assert not [r for r in ladder.rows if r.kind == "kernel"]
    assert ladder.history(0)[-1] == "CLOSE-WAIT"


def test_a_kernel_reading_behind_the_segments_drawn_is_stale() -> None:
    """FIN-WAIT-1 read after the ACK of the FIN was drawn (a busy kernel handled it late): not drawn, and the
    client does not go back."""
    packets = HANDSHAKE + [seg(4, A, "FIN|ACK", 1, 1), seg(5, B, "ACK", 1, 2)]
    ladder = build_ladder(packets, t0_ns=0, samples=[(9_000_000, A, "FIN-WAIT-1")])
    assert not [r for r in ladder.rows if r.kind == "kernel"]
    assert ladder.history(0)[3:] == ["FIN-WAIT-1", "FIN-WAIT-2"]


def test_notes_share_their_common_outcomes_and_keep_no_table_of_every_descriptor_returned() -> None:
    from playground.ladder import model

    zero = model.shared_outcome("= " + str(0))
    assert model.shared_outcome("".join(["= ", "0"])) is zero
    for fd in range(3 * model.OUTCOMES_SHARED):  # each accept's `= N` an outcome of its own
        assert model.shared_outcome(f"= {fd + 100_000}") == f"= {fd + 100_000}"
    assert len(model._OUTCOMES) <= model.OUTCOMES_SHARED
