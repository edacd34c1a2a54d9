"""Every example in script.md (the contract) runs, with its outcomes, on loopback."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sys
import time
from pathlib import Path

import pytest

from playground.events import CallObserved, Event
from playground.lab import Lab
from playground.runner import Runner, run_script
from playground.script.model import Sleep
from playground.script.parser import parse_script
from tests.helpers import PAIR_SCRIPT, REPO
from tests.sshd import Sshd

CONTRACT = next(
    (p for p in (REPO.parent / "shared" / "docs" / "script.md", REPO / "docs" / "script.md") if p.is_file()),
)

# The pending example uses server's `a` and client's `c` without setting them up.
PRELUDE = PAIR_SCRIPT

# The timing claim's example needs its request to wait for a delayed ACK: a few requests end the
# connection's quick-ACK start, then a 1-byte write is read but (in ping-pong mode) not yet
# acknowledged, so Nagle holds the request back until the delayed-ACK timer (40 ms or more) fires.
NAGLE_PRELUDE = (
    PAIR_SCRIPT
    + """repeat 4
client: write(c, "GET /x\\r\\n")
client: write(c, "\\r\\n")
server: recv(a, 10, MSG_WAITALL) = 10
server: write(a, "+OK\\r\\n")
client: recv(c, 5, MSG_WAITALL) = 5
end
client: write(c, "X") = 1
server: read(a, 1) = 1 "X"
client: write(c, "GET /x\\r\\n\\r\\n") = 10
"""
)
# The outside program's example makes its client's first socket: the client alone comes before it;
# the remote hosts' example starts its own processes.
PRELUDES = {" after 30ms": NAGLE_PRELUDE, "exec --trace": "sockplay 1\nspawn client\n", " ssh ": "sockplay 1\n"}


def examples() -> list[tuple[str, str]]:
    text = CONTRACT.read_text()
    blocks = re.findall(r"```\n(.*?)```", text, flags=re.S)
    out = []
    for i, block in enumerate(blocks):
        if "[+DELAY]" in block:
            continue  # the grammar itself, not an example
        prelude = next((p for marker, p in PRELUDES.items() if marker in block), PRELUDE)
        script = block if block.startswith("sockplay 1") else prelude + block
        out.append((f"example{i + 1}", script))
    return out


def test_the_contract_has_examples() -> None:
    assert len(examples()) >= 2


def cases() -> list:
    return [
        pytest.param(name, text, id=name)
        for name, text in examples()
        if " ssh " not in text and " exec --trace " not in text
    ]


def remote_cases() -> list:
    return [pytest.param(name, text, id=name) for name, text in examples() if " ssh " in text]


@pytest.mark.parametrize(("name", "text"), remote_cases())
async def test_remote_example_runs_against_the_test_sshd(name: str, text: str, sshd: Sshd) -> None:
    """A real machine over OpenSSH (tests/sshd.py): the example's destination is the test config's alias."""
    # `user@` would beat the config's `User root`, and this machine has no user called `user`.
    script = parse_script(text.replace("user@machine.example", "machine.example"), f"{CONTRACT}:{name}")
    report = await run_script(script, allow_network=True)
    assert [(s.line.number, s.divergence or s.error) for s in report.divergences] == []
    assert report.exit_code == 0
    assert [s.text for s in report.steps] == ["host far ssh machine.example", "spawn server on far"]


@pytest.mark.parametrize(("name", "text"), cases())
async def test_example_runs_with_its_outcomes(name: str, text: str, tmp_path: Path) -> None:
    script = parse_script(text, f"{CONTRACT}:{name}")
    report = await run_script(script, allow_exec=True)
    assert [(s.line.number, s.divergence or s.error) for s in report.divergences] == []
    assert report.exit_code == 0
    stated = [s for s in report.steps if s.line.node.__class__.__name__ in ("Step", "Completion")]
    assert stated and all(s.text for s in stated)


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed (apt-get install strace)")
async def test_the_outside_program_example_runs_as_written_and_only_its_read_differs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The example runs line by line as written; the one line Linux does not agree with diverges, saying why.

    http.server (Python 3.3 and later) sends its status line and headers in one sendto (155 bytes), so
    `read(c, 100)` gets 100 of them, not the 17 the contract states (with `read(c, 17)` it holds: test_outside.py).
    The example's `sleep 0.5` guesses how long the server takes to listen; the test waits for its observed
    listen() too, so a busy machine cannot make the connect come first.
    """
    (name, text) = next((n, t) for n, t in examples() if " exec --trace " in t)
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}:{os.environ['PATH']}")  # python3, not a shim
    lab = await Lab.start()
    lab.lifecycle.outside.allowed = True
    events: list[Event] = []
    lab.subscribe(events.append)
    runner = Runner(lab)
    reports = []
    try:
        for line in parse_script(text, f"{CONTRACT}:{name}").lines:
            reports.append(await runner.run_line(line))
            if isinstance(line.node, Sleep):
                await bounded(lambda: any(isinstance(e, CallObserved) and "listen(3, " in e.text for e in events))
    finally:
        await lab.shutdown()
    differs = [(r.line.text.split("=")[0].strip(), r.divergence or r.error) for r in reports if r.divergence or r.error]
    assert len(differs) == 1, differs
    line, why = differs[0]
    assert line == "client: read(c, 100)"
    assert why is not None and why.startswith('expected = 17 "HTTP/1.0 200 OK\\r\\n", got = 100 "HTTP/1.0 200 OK\\r\\n')
    accepted = [e.text for e in events if isinstance(e, CallObserved) and e.text.startswith("accept4(3, ...) = 4 from")]
    assert accepted, "the server's accept4 was not observed"


async def bounded(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "the traced server did not listen within 30 s"
        await asyncio.sleep(0.01)
