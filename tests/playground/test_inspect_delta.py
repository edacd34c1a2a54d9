"""The periodic inspection reads again only the sockets that may have changed (issue 13).

Each lab process keeps its sockets in a private epoll set and reads a socket again when the
kernel woke it, when a call named it, while it is busy, and a few in turn (the sweep). These
tests hold more sockets than the sweep reads at once, so what is seen is seen for its reason.
"""

from __future__ import annotations

from playground.constants import TCP_STATES
from playground.executor import run_typed_line
from playground.lab import Lab
from playground.runner import Runner
from playground.script.parser import parse_script
from playground.worker.snapshot_delta import SWEEP

COUNT = 150  # more than SWEEP sockets in each process

SCRIPT = f"""sockplay 1
spawn server
spawn client
server: l = socket(tcp)
server: bind(l, 127.0.0.1:0)            = 0
server: listen(l, 512)                  = 0
repeat {COUNT} as i
client: s[i] = socket(tcp)
client: connect(s[i], server.l)         = 0
server: c[i] = accept(l)
end
"""


def entry(snapshot: dict, process: str, fd: int) -> dict | None:
    return next((s for s in snapshot[process] if s["fd"] == fd), None)


async def test_idle_sockets_are_not_read_again_and_every_change_is_seen_at_once(lab: Lab) -> None:
    assert SWEEP < COUNT
    report = await Runner(lab).run(parse_script(SCRIPT))
    assert report.exit_code == 0
    server, client = lab.process("server"), lab.process("client")
    first = await lab.follow_sockets()
    assert len(first["server"]) == COUNT + 1 and len(first["client"]) == COUNT
    followed = lab.inspector.followed
    assert followed["server"].read == COUNT + 1  # the first reading is whole

    again = await lab.follow_sockets()
    assert followed["server"].read <= SWEEP and followed["client"].read <= SWEEP  # idle: the sweep alone
    assert again["server"] is first["server"]  # nothing changed: the same list

    # The peer writes: the kernel wakes c[120] (not named by any call of the server's).
    c120, s7, c7 = server.names["c[120]"], client.names["s[7]"], server.names["c[7]"]
    await run_typed_line(lab, 'client: write(s[120], "hello")')
    await run_typed_line(lab, "client: close(s[7])")
    await run_typed_line(lab, "server: setsockopt(c[100], TCP_NODELAY, 1)")
    seen = await lab.follow_sockets()
    assert entry(seen, "server", c120)["inq"] == 5
    assert TCP_STATES[entry(seen, "server", c7)["state"]] == "CLOSE-WAIT"
    assert entry(seen, "client", s7) is None  # closed: gone from the list
    assert entry(seen, "server", server.names["c[100]"])["options"]["TCP_NODELAY"] == 1
    assert followed["server"].read <= SWEEP + 4

    # What it keeps agrees with a whole reading, socket by socket (but TCP_QUICKACK: the kernel's
    # quick-ack mode, which its delayed-ACK timer changes with no wake-up; the sweep sees it in time).
    whole = await lab.inspect()
    for name in ("server", "client"):
        kept = {s["fd"]: s for s in seen[name]}
        assert set(kept) == {s["fd"] for s in whole[name]}
        for sock in whole[name]:
            mine = kept[sock["fd"]]
            options = {k: v for k, v in mine["options"].items() if k != "TCP_QUICKACK"}
            assert (mine["state"], mine["inq"], mine["outq"], options) == (
                sock["state"],
                sock["inq"],
                sock["outq"],
                {k: v for k, v in sock["options"].items() if k != "TCP_QUICKACK"},
            )


async def test_a_forked_child_follows_its_own_sockets(lab: Lab) -> None:
    report = await Runner(lab).run(parse_script(SCRIPT))
    assert report.exit_code == 0
    await lab.follow_sockets()
    await run_typed_line(lab, "server: kid = fork()")
    await run_typed_line(lab, 'client: write(s[130], "x")')
    seen = await lab.follow_sockets()
    fd = lab.process("server").names["c[130]"]
    # Parent and child share the socket; each has an epoll set of its own, so both see the byte.
    assert entry(seen, "server", fd)["inq"] == 1 and entry(seen, "kid", fd)["inq"] == 1
    await run_typed_line(lab, "kid: read(c[130], 1)")
    seen = await lab.follow_sockets()
    assert entry(seen, "kid", fd)["inq"] == 0 and entry(seen, "server", fd)["inq"] == 0
