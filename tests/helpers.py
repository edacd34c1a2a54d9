"""Helpers shared by the tests: the repository, scripts the tests start from, and looks at the lab and /proc.

Fixtures live in conftest.py; everything a test imports lives here.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playground.events import CallResult
from playground.executor import run_typed_line
from playground.lab import Lab
from playground.script.format import format_outcome

REPO = Path(__file__).resolve().parent.parent

# script.md's first example, as the contract writes it.
FIRST = """sockplay 1
# Writing to a socket whose peer has closed.
spawn server
spawn client

server: l = socket(tcp)                  = 3
server: setsockopt(l, SO_REUSEADDR, 1)   = 0
server: bind(l, 127.0.0.1:0)             = 0      # port 0: the kernel picks one
server: listen(l, 8)                     = 0
server: signal(SIGPIPE, catch)           = 0
client: c = socket(tcp)                  = 3
client: connect(c, server.l)             = 0      # the address that server's l is bound to
server: a = accept(l)                    = 4
client: close(c)                         = 0
server: read(a, 100)                     = 0      # EOF: the FIN arrived
server: write(a, "ping")                 = 4      # accepted; the peer answers with RST
sleep 0.05
server: write(a, "ping")                 = -1 EPIPE ! SIGPIPE
"""

# A server that listens, a client connected to it, and the accepted socket `a`.
PAIR_SCRIPT = """sockplay 1
spawn server
spawn client
server: l = socket(tcp)
server: bind(l, 127.0.0.1:0)
server: listen(l, 8)
client: c = socket(tcp)
client: connect(c, server.l)
server: a = accept(l)
"""


async def outcome(lab: Lab, line: str) -> str:
    """Run one line and give its outcome as the script writes it (`= 3`, `= -1 EPIPE ...`)."""
    result = await run_typed_line(lab, line)
    assert isinstance(result, CallResult), f"{line!r} gave no call result"
    text = format_outcome(result.outcome)
    # The kernel's message is shown in parentheses; tests compare the rest.
    if result.outcome.errno_message:
        text = text.replace(f" ({result.outcome.errno_message})", "")
    return text


async def until_reset(lab: Lab, process: str, var: str, timeout: float = 10.0) -> None:
    """Wait until the kernel has taken the peer's RST on a socket (its state is CLOSED).

    On loopback the RST usually comes back inside the write that drew it, but a busy machine
    may defer it to a softirq thread: a second write made before it lands still succeeds.
    """
    deadline = time.monotonic() + timeout
    while (state := await lab.socket_state(process, var)) != "CLOSED":
        if time.monotonic() > deadline:
            raise AssertionError(f"{process}.{var} still {state} after {timeout:g} s: no RST")
        await asyncio.sleep(0.005)


async def connected_pair(lab: Lab, server: str = "server", client: str = "client") -> None:
    """server has listener l and accepted a; client has c, connected to it."""
    for name in (server, client):
        if name not in lab.processes:
            await run_typed_line(lab, f"spawn {name}")
    for line in (
        f"{server}: l = socket(tcp)",
        f"{server}: bind(l, 127.0.0.1:0)",
        f"{server}: listen(l, 8)",
        f"{client}: c = socket(tcp)",
        f"{client}: connect(c, {server}.l)",
        f"{server}: a = accept(l)",
    ):
        result = await run_typed_line(lab, line)
        assert result is not None and result.outcome.errno is None, (line, result)


def process_exists(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def process_state(pid: int) -> str | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rfind(")") + 2]


def process_ended(pid: int) -> bool:
    """Whether pid has ended: no such process, or a zombie (it has exited; only its parent's wait is missing).

    Once a test has run a Lab in the test process, that process is a child subreaper (Lab.start):
    the orphans of a sockplay that a later test starts and that exits without reaping its lab
    processes (the stop watchdog's os._exit) come to it, and stay zombies until it reaps them,
    which it does here.
    """
    state = process_state(pid)
    if state == "Z":
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:  # another process's zombie: its parent reaps it
            pass
        return True
    return state is None


def children_of(pid: int) -> list[int]:
    """Pids whose parent is pid (zombies included)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rfind(")") + 2 :].split()
        if int(fields[1]) == pid:
            out.append(int(entry))
    return out


def wait_until(predicate: Callable[[], object], timeout: float, what: str) -> None:
    """Poll predicate until it holds; fail naming what was awaited after timeout seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.01)


def drawn_call(plain: str, call: str) -> bool:
    """Whether a ladder's text shows `call` (`close(c) = 0`), whole or drawn in two rows as whole_calls joins."""
    head, sep, outcome = call.rpartition(" = ")
    return call in plain or bool(sep) and f"{head} ..." in plain and f"... = {outcome}" in plain


def whole_calls(ladder: Any, side: int) -> list[str]:
    """The calls of one side, a call drawn in two rows (it ran a millisecond or more with a segment
    inside it, as on a busy machine) joined back into one: `connect(c, x) ...` + `... = 0`."""
    out: list[str] = []
    for text in [r.text for r in ladder.rows if r.kind == "call" and r.side == side]:
        if text.startswith("... ") and out and out[-1].endswith(" ..."):
            out[-1] = out[-1].removesuffix(" ...") + text.removeprefix("...")
        else:
            out.append(text)
    return out
