"""What the panes ask the session (LabSession's queries), answered from a live lab on the real kernel."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from playground.session.lab_session import LabSession
from playground.session.lines import complete

WAIT = 8.0


@pytest.fixture
async def session() -> AsyncIterator[LabSession]:
    session = LabSession()
    try:
        yield session
    finally:
        await session.shutdown()


async def _run(session: LabSession, line: str) -> None:
    """Run a line and wait until its call returned."""
    run = await session.run_line(line)
    if run.handle is not None:
        await asyncio.wait_for(run.handle.future, WAIT)


async def test_queries_before_the_lab_starts_answer_without_failing(session: LabSession) -> None:
    assert not session.started and session.process_count == 0
    assert session.names_of("server") == {} and not session.has_process("server")
    assert session.fresh_var("server", "s") == "s" and session.fresh_process_name("peer") == "peer"
    assert session.packets() == [] and not session.capture_on and session.no_capture_reason is None
    assert session.now_ns() > 0
    session.kill_all_now()  # nothing to kill


async def test_names_fresh_names_and_connect_targets_follow_the_lab(session: LabSession) -> None:
    await session.start()
    await session.spawn_defaults()
    assert session.has_process("server") and session.has_process("client") and session.process_count == 2
    assert session.fresh_process_name("server") == "server2"
    await _run(session, "server: l = socket(tcp)")
    await _run(session, "server: bind(l, 127.0.0.1:0)")
    await _run(session, "client: c = socket(tcp)")
    assert session.names_of("server") == {"l": 3}
    assert session.fresh_var("server", "l") == "l2"
    assert session.fresh_var("server", "a", also_taken=("a",)) == "a2"
    await session.refresh()
    view = session.view()
    client_socket = view.socket("client", 3)
    assert client_socket is not None
    assert session.connect_targets(client_socket, view) == []  # bound, not listening yet
    await _run(session, "server: listen(l, 8)")
    await session.refresh()
    view = session.view()
    assert session.connect_targets(client_socket, view) == ["server.l"]
    listener = view.socket("server", 3)
    assert listener is not None and session.connect_targets(listener, view) == []  # not itself


async def test_capture_and_packets_as_the_lab_has_them(session: LabSession) -> None:
    await session.start()
    await session.spawn_defaults()
    if not session.capture_on:
        reason = session.no_capture_reason
        assert reason, "no capture, and no reason given"
        pytest.skip(f"no packet capture here: {reason}")
    assert session.no_capture_reason is None
    for line in (
        "server: l = socket(tcp)",
        "server: bind(l, 127.0.0.1:0)",
        "server: listen(l, 8)",
        "client: c = socket(tcp)",
        "client: connect(c, server.l)",
    ):
        await _run(session, line)
    handshake = asyncio.Event()  # SYN, SYN|ACK, ACK
    session.on_event = lambda event: len(session.packets()) >= 3 and handshake.set()
    if len(session.packets()) < 3:
        await asyncio.wait_for(handshake.wait(), WAIT)
    assert all(packet.frame for packet in session.packets())
    kind, _sysctls = session.environment()
    assert kind


async def test_completion_offers_unix_kinds_and_a_bound_unix_socket_as_an_address(session: LabSession) -> None:
    await session.start()
    await session.spawn_defaults()
    await _run(session, "server: u = socket(unix)")
    await _run(session, 'server: bind(u, "srv.sock")')
    ctx = session.completion_context("client")
    assert {"unix", "unix_dgram", "AF_UNIX"} <= set(complete("client: c = socket(", None, ctx).candidates)
    assert "server.u" in complete("client: connect(c, ", None, ctx).candidates
