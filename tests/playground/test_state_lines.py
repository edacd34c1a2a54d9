"""`state PROC.VAR STATE` lines: the kernel's own TCP state, with or without a descriptor."""

from __future__ import annotations

import pytest

from playground.lab import Lab
from playground.runner import Runner
from playground.script.errors import ScriptError
from playground.script.parser import parse_script

CLOSE_SEQUENCE = """sockplay 1
spawn server
spawn client
server: l = socket(tcp)
state server.l CLOSED
server: bind(l, 127.0.0.1:0)
server: listen(l, 8)
state server.l LISTEN
client: c = socket(tcp)
client: connect(c, server.l)
server: a = accept(l)
state client.c ESTABLISHED
client: close(c)
state client.c FIN-WAIT-2
state server.a CLOSE-WAIT
server: close(a)
state server.a CLOSED
state client.c TIME-WAIT
"""


async def test_states_through_a_close_hold() -> None:
    lab = await Lab.start()
    try:
        report = await Runner(lab).run(parse_script(CLOSE_SEQUENCE, "close.sockplay"))
        assert [(s.line.number, s.divergence) for s in report.divergences] == []
    finally:
        await lab.shutdown()


async def test_a_wrong_state_diverges_with_what_the_kernel_says() -> None:
    lab = await Lab.start()
    try:
        wrong = CLOSE_SEQUENCE.replace("state client.c FIN-WAIT-2", "state client.c ESTABLISHED")
        report = await Runner(lab).run(parse_script(wrong, "wrong.sockplay"))
        [diverged] = report.divergences
        assert diverged.line.number == 14
        assert diverged.divergence == "expected client.c in ESTABLISHED, the kernel says FIN-WAIT-2"
    finally:
        await lab.shutdown()


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("state server.x LISTEN", "server has no socket named 'x'"),
        ("state server.l LISTENING", "'LISTENING' is not a TCP state; did you mean LISTEN?"),
        ("state nobody.l LISTEN", "no process named 'nobody'"),
    ],
)
def test_bad_state_lines(line: str, message: str) -> None:
    with pytest.raises(ScriptError, match=message):
        parse_script(f"sockplay 1\nspawn server\nserver: l = socket(tcp)\n{line}\n", "x")
