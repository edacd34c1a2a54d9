"""The kernel's own view of the lab's sockets."""

from __future__ import annotations

import asyncio
import time

from playground.constants import TCP_STATES
from playground.executor import run_typed_line
from playground.lab import Lab
from tests.helpers import connected_pair


def by_fd(snapshot: dict, process: str, fd: int) -> dict:
    return next(s for s in snapshot[process] if s["fd"] == fd)


async def state_of(lab: Lab, process: str, fd: int, want: str, timeout: float = 5.0) -> str:
    """Poll the kernel (bounded) until the socket reaches a state; return the last one seen."""
    deadline = time.monotonic() + timeout
    while True:
        snap = await lab.inspect()
        state = TCP_STATES.get(by_fd(snap, process, fd)["state"], "?")
        if state == want or time.monotonic() > deadline:
            return state
        await asyncio.sleep(0.01)


async def test_inspect_reports_kind_addresses_state_options_and_queues(lab: Lab) -> None:
    await connected_pair(lab)
    await run_typed_line(lab, "server: setsockopt(a, TCP_NODELAY, 1)")
    await run_typed_line(lab, 'client: write(c, "12345")')
    snap = await lab.inspect()
    listener = by_fd(snap, "server", 3)
    assert listener["listening"] and TCP_STATES[listener["state"]] == "LISTEN"
    accepted = by_fd(snap, "server", 4)
    assert TCP_STATES[accepted["state"]] == "ESTABLISHED"
    assert accepted["options"]["TCP_NODELAY"] == 1 and accepted["options"]["SO_REUSEADDR"] == 0
    assert accepted["options"]["SO_LINGER"] == [0, 0] and accepted["options"]["O_NONBLOCK"] == 0
    assert accepted["inq"] == 5 and accepted["outq"] == 0
    client = by_fd(snap, "client", 3)
    assert tuple(client["peer"]) == tuple(accepted["local"]) and tuple(client["local"]) == tuple(accepted["peer"])
    assert client["tcp"]["snd_cwnd"] > 0 and "rtt" in client["tcp"]


async def test_states_follow_the_kernel_after_close(lab: Lab) -> None:
    await connected_pair(lab)
    await run_typed_line(lab, "client: close(c)")
    assert await state_of(lab, "server", 4, "CLOSE-WAIT") == "CLOSE-WAIT"
    await run_typed_line(lab, "server: close(a)")
    snap = await lab.inspect()
    assert [s["fd"] for s in snap["server"]] == [3]
