"""Remote hosts (issue 14): lab processes on a real machine over OpenSSH, against a real sshd (tests/sshd.py).

The 'remote' machine is this one, reached over 127.0.0.1 through the test sshd as root:
its processes run as the agent forks them there, not as sockplay starts local ones.
"""

from __future__ import annotations

import asyncio
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from playground.events import CallStarted, Event, Notice, ProcessEnded, RemoteHostConnected
from playground.lab import Lab
from playground.recording import Recorder, read_header
from playground.runner import Runner, run_script
from playground.script.errors import ScriptError
from playground.script.model import Step
from playground.script.parser import parse_script
from tests.helpers import REPO, outcome
from tests.sshd import Sshd, oldest_python

BOUND = 15.0  # seconds any wait here may take at most


async def until(check: object, timeout: float = BOUND) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        await asyncio.sleep(0.02)
    return bool(check())  # type: ignore[operator]


@pytest.fixture
async def net_lab(sshd: Sshd) -> AsyncIterator[Lab]:
    """A lab allowed onto the network, its local processes on this machine's network (to reach 127.0.0.1 there)."""
    lab = await Lab.start(allow_network=True, host_network=True)
    try:
        yield lab
    finally:
        await lab.shutdown()


async def run(lab: Lab, text: str) -> list[tuple[str, str]]:
    report = await Runner(lab, 10.0).run(parse_script(text))
    return [(s.text, s.divergence or s.error or "") for s in report.steps]


def problems(steps: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(text, why) for text, why in steps if why]


LOCAL_TO_REMOTE = """sockplay 1
host far ssh remote
spawn server on far
spawn client
server: l = socket(tcp)                  = 3
server: bind(l, 0.0.0.0:0)               = 0
server: listen(l, 8)                     = 0
client: c = socket(tcp)                  = 3
client: connect(c, server.l)             = 0
server: a = accept(l)                    = 4
server: read(a, 100) ...
client: write(c, "hi")                   = 2
server: ... = 2 "hi"
server: signal(SIGPIPE, catch)           = 0
client: close(c)                         = 0
server: write(a, "x")                    = 1
sleep 0.1
server: write(a, "x")                    = -1 EPIPE ! SIGPIPE
"""


async def test_a_local_process_connects_to_a_remote_one(net_lab: Lab, sshd: Sshd) -> None:
    seen: list[Event] = []
    net_lab.subscribe(seen.append)
    assert problems(await run(net_lab, LOCAL_TO_REMOTE)) == []
    server = net_lab.process("server")
    assert server.remote is not None and net_lab.process("client").remote is None
    assert server.pid in sshd.agents_and_workers()  # it runs where the agent forked it
    connected = [e for e in seen if isinstance(e, RemoteHostConnected)]
    assert [(e.host, e.destination) for e in connected] == [("far", "remote")]
    assert connected[0].kernel.startswith("Linux") and connected[0].rtt_ms > 0


async def test_the_wildcard_bind_resolves_to_where_ssh_reached_the_host_or_the_address_given(
    net_lab: Lab, sshd: Sshd
) -> None:
    text = "sockplay 1\nhost far ssh remote address 127.0.0.9\nspawn server on far\nspawn client\n"
    text += "server: l = socket(tcp)\nserver: bind(l, 0.0.0.0:0)\nserver: listen(l, 8)\nclient: c = socket(tcp)\n"
    text += "client: connect(c, server.l) = 0\nclient: getpeername(c)\n"
    steps = await run(net_lab, text)
    assert problems(steps) == []
    assert "127.0.0.9:" in steps[-1][0]  # the address given, not where ssh reached it (127.0.0.1)
    assert net_lab.lifecycle.remote_hosts.address_of("far") == "127.0.0.9"


async def test_pending_calls_fork_waitpid_and_kill_on_a_remote_host(net_lab: Lab, sshd: Sshd) -> None:
    text = """sockplay 1
host far ssh remote
spawn server on far
server: l = socket(tcp) = 3
server: bind(l, 127.0.0.1:0) = 0
server: listen(l, 8) = 0
server: a = accept(l) ...
server: kid = fork()
kid: c = socket(tcp) = 4
kid: connect(c, server.l) = 0
server: ... = 4
kid: write(c, "from the child") = 14
server: read(a, 100) = 14 "from the child"
kid: exit(3)
server: waitpid(kid, 0)
server: r = socket(udp) = 5
server: recv(r, 10) ...
kill server SIGKILL
server: ... = killed SIGKILL
"""
    assert problems(await run(net_lab, text)) == []
    assert net_lab.process("kid").death is not None and str(net_lab.process("kid").death) == "exited 3"
    assert await until(lambda: not sshd.agents_and_workers() or sshd.agents_and_workers() == [_agent(sshd)])


ON_PYTHON_38 = """sockplay 1
host far ssh python38
spawn server on far
spawn client
server: l = socket(tcp) = 3
server: setsockopt(l, SO_REUSEADDR, 1) = 0
server: bind(l, 127.0.0.1:0) = 0
server: listen(l, 8) = 0
server: a = accept(l) ...
client: c = socket(tcp) = 3
client: connect(c, server.l) = 0
server: ... = 4
server: ep = epoll_create1(0) = 5
server: epoll_ctl(ep, EPOLL_CTL_ADD, a, EPOLLIN) = 0
client: write(c, "on 3.8") = 6
server: epoll_wait(ep, 8, 1000) = 1 {a: EPOLLIN}
server: poll({l, a}, POLLIN, 0) = 1 {a: POLLIN}
server: d = read(a, 100) = 6 "on 3.8"
server: write(a, d) = 6
client: read(c, 100) = 6 "on 3.8"
server: kid = fork()
kid: exit(7)
server: waitpid(kid, 0)
server: getrlimit(RLIMIT_NOFILE)
server: shutdown(a, SHUT_WR) = 0
client: read(c, 100) = 0
"""


async def test_a_remote_host_whose_python3_is_3_8_runs_the_same_lab_process(net_lab: Lab, sshd: Sshd) -> None:
    if oldest_python() is None:
        pytest.skip("no Python 3.8 on this machine (python3.8 on PATH, or pyenv's 3.8) to be the remote's python3")
    seen: list[Event] = []
    net_lab.subscribe(seen.append)
    assert problems(await run(net_lab, ON_PYTHON_38)) == []
    connected = [e for e in seen if isinstance(e, RemoteHostConnected)]
    assert connected and connected[0].python.startswith("3.8.")
    assert str(net_lab.process("kid").death) == "exited 7"


def _agent(sshd: Sshd) -> int | None:
    """The agent itself (the oldest of what runs there), which lives until the lab ends."""
    found = sorted(sshd.agents_and_workers())
    return found[0] if found else None


async def test_every_remote_process_ends_with_the_lab(sshd: Sshd) -> None:
    lab = await Lab.start(allow_network=True)
    try:
        assert problems(await run(lab, "sockplay 1\nhost far ssh remote\nspawn a on far\nspawn b on far\n")) == []
        assert len(sshd.agents_and_workers()) == 3  # the agent and its two lab processes
    finally:
        await lab.shutdown()
    assert await until(lambda: sshd.agents_and_workers() == [])


@pytest.mark.parametrize(
    ("destination", "said"),
    [
        ("nowhere", "nowhere (nowhere): cannot be reached (ssh: connect to host 127.0.0.1 port"),
        ("stranger", "authentication refused (root@127.0.0.1: Permission denied (publickey))"),
        ("nopython", "there is no python3 on it"),
        ("oldpython", "its python3 is 3.6.9; sockplay needs Python 3.8 or newer there"),
    ],
)
async def test_a_host_that_cannot_be_used_says_why(sshd: Sshd, destination: str, said: str) -> None:
    text = f"sockplay 1\nhost {destination} ssh {destination}\nspawn server on {destination}\n"
    report = await run_script(parse_script(text), allow_network=True)
    errors = [s.error for s in report.steps if s.error]
    assert len(errors) == 1 and said in errors[0], errors
    assert report.exit_code != 0
    assert sshd.agents_and_workers() == []


async def test_remote_hosts_need_allow_network(sshd: Sshd) -> None:
    report = await run_script(parse_script("sockplay 1\nhost far ssh remote\nspawn server on far\n"))
    assert "remote hosts need --allow-network" in (report.steps[0].error or "")
    assert sshd.agents_and_workers() == []


def test_a_destination_ssh_would_read_as_an_option_is_refused() -> None:
    for bad, why in [
        ("-oProxyCommand=touch${IFS}/tmp/x", "ssh would read it as an option"),
        ("a;b", "';' has no place in an ssh destination"),
    ]:
        with pytest.raises(ScriptError, match="ssh would read it|has no place") as caught:
            parse_script(f"sockplay 1\nhost far ssh {bad}\n")
        assert why in str(caught.value)


async def test_the_connection_dropping_ends_the_remote_processes_and_the_recording_keeps_the_steps(
    net_lab: Lab, sshd: Sshd, tmp_path: Path
) -> None:
    seen: list[Event] = []
    net_lab.subscribe(seen.append)
    recorder = Recorder(net_lab, tmp_path / "session.sockplay")
    text = (
        "sockplay 1\nhost far ssh remote\nspawn server on far\nserver: u = socket(udp) = 3\nserver: recv(u, 10) ...\n"
    )
    assert problems(await run(net_lab, text)) == []
    server = net_lab.process("server")
    handle = net_lab.oldest_unstated("server")
    assert handle is not None and not handle.future.done()
    for pid in sshd.sessions():  # the server's side of the connection goes: as a cable pulled, for ssh
        os.kill(pid, signal.SIGKILL)
    await asyncio.wait_for(asyncio.shield(handle.future), BOUND)
    assert not server.alive
    assert any(isinstance(e, ProcessEnded) and e.process == "server" for e in seen)
    dropped = [e.message for e in seen if isinstance(e, Notice) and "dropped" in e.message]
    assert dropped and "far (remote) dropped: its processes have ended" in dropped[0]
    assert await until(lambda: sshd.agents_and_workers() == [])
    recorder.close()
    written = (tmp_path / "session.sockplay").read_text()
    assert "\n+0." in written and "host far ssh remote\n" in written and "spawn server on far" in written
    assert "server: u = socket(udp) = 3" in written and "server: recv(u, 10) ...\n" in written
    assert "exited ?" not in written and "server ended (how, nobody could see)" in written
    assert "# remote host far (remote): Linux" in written
    header = read_header(parse_script(written).header_comments)  # and the header names its kernel
    assert header["kernel far"].startswith("Linux ") and "ssh remote" in header["kernel far"]


def test_sigkill_of_sockplay_ends_every_remote_process(sshd: Sshd, tmp_path: Path) -> None:
    script = tmp_path / "far.sockplay"
    script.write_text(
        "sockplay 1\nhost far ssh remote\nspawn server on far\nserver: u = socket(udp)\nserver: recv(u, 10) ...\n"
        "server: kid = fork()\nsleep 30\n"
    )
    env = {**os.environ, "SOCKPLAY_SSH_CONFIG": str(sshd.config)}
    earlier = set(sshd.agents_and_workers())  # (another test's, still ending: not this one's to count)

    def ours() -> set[int]:
        return set(sshd.agents_and_workers()) - earlier

    cli = subprocess.Popen(
        [sys.executable, "-m", "playground.cli", "run", "--allow-network", str(script)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert cli.stdout is not None
        os.set_blocking(cli.stdout.fileno(), False)
        printed, deadline = b"", time.monotonic() + BOUND
        while b"kid = fork() = " not in printed and time.monotonic() < deadline and cli.poll() is None:
            select.select([cli.stdout], [], [], 0.1)
            printed += cli.stdout.read() or b""
        assert b"kid = fork() = " in printed, (printed, cli.stderr.read() if cli.poll() is not None else b"")
        # the agent, the server and its child (and, for a moment, what the agent forks to look around)
        assert len(ours()) >= 3
    finally:
        cli.kill()
        cli.wait()
    deadline = time.monotonic() + BOUND
    while ours() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert ours() == set()


REMOTE_SCRIPT = "sockplay 1\nhost far ssh remote\nspawn server on far\nserver: l = socket(tcp) = 3\n"


@pytest.mark.parametrize("command", [["run"], ["replay", "--check"]])
def test_run_and_replay_refuse_a_remote_host_without_allow_network(command: list[str], tmp_path: Path) -> None:
    script = tmp_path / "far.sockplay"
    script.write_text(REMOTE_SCRIPT)
    done = subprocess.run(
        [sys.executable, "-m", "playground.cli", *command, str(script)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert f"{script}:2: " in done.stderr and "--allow-network" in done.stderr
    assert "real machine" in done.stderr and done.stdout == ""


@pytest.mark.parametrize("command", [["run"], ["replay", "--check"]])
def test_run_and_replay_with_allow_network_use_the_remote_host(command: list[str], sshd: Sshd, tmp_path: Path) -> None:
    script = tmp_path / "far.sockplay"
    script.write_text(REMOTE_SCRIPT)
    done = subprocess.run(
        [sys.executable, "-m", "playground.cli", *command, "--allow-network", str(script)],
        cwd=REPO,
        env={**os.environ, "SOCKPLAY_SSH_CONFIG": str(sshd.config)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert sshd.agents_and_workers() == []


async def test_the_session_shows_a_remote_process_with_its_host_destination_and_round_trip(sshd: Sshd) -> None:
    from playground.session.lab_session import LabSession
    from widgets.lab_tree import process_label
    from widgets.palette import palette_from_variables

    session = LabSession(allow_network=True)
    await session.start()
    try:
        await session.run_line("host far ssh remote")
        run = await session.run_line("spawn server on far")  # typed: the scope knows the host
        if run.task is not None:
            await asyncio.wait_for(run.task, BOUND)
        await session.run_line("spawn local")
        view = session.view()
        server, local = view.process("server"), view.process("local")
        assert server is not None and local is not None and local.remote is None
        assert server.remote is not None and (server.remote.name, server.remote.destination) == ("far", "remote")
        assert server.remote.connected and server.remote.rtt_ms is not None and server.remote.kernel
        label = process_label(server, palette_from_variables({})).plain
        assert "on far (ssh remote, rtt " in label and label.endswith(" ms)")
    finally:
        await session.shutdown()
    assert await until(lambda: sshd.agents_and_workers() == [])


async def test_a_remote_process_connects_to_a_local_one_at_this_machines_address_as_seen_from_there(
    net_lab: Lab, sshd: Sshd
) -> None:
    text = """sockplay 1
host far ssh remote
spawn server
spawn client on far
server: l = socket(tcp)                  = 3
server: bind(l, 0.0.0.0:0)               = 0
server: listen(l, 8)                     = 0
client: c = socket(tcp)                  = 3
client: connect(c, server.l)             = 0
server: a = accept(l)                    = 4
client: write(c, "up")                   = 2
server: read(a, 10)                      = 2 "up"
"""
    assert problems(await run(net_lab, text)) == []
    assert net_lab.lifecycle.remote_hosts.our_address_seen_from("far") == "127.0.0.1"


async def test_the_remote_sides_packets_join_the_timeline_named_by_their_sockets(sshd: Sshd) -> None:
    lab = await Lab.start(allow_network=True)  # its own capture is in its private namespace: these are far's
    seen: list[Event] = []
    lab.subscribe(seen.append)
    text = """sockplay 1
host far ssh remote
spawn server on far
spawn client on far
server: l = socket(tcp)
server: bind(l, 127.0.0.1:0)
server: listen(l, 8)
client: c = socket(tcp)
client: connect(c, server.l)
server: a = accept(l)
client: write(c, "hello")
server: read(a, 10) = 5 "hello"
"""
    try:
        assert problems(await run(lab, text)) == []
        wanted = ("client.c > server.a SYN seq 0", 'client.c > server.a PSH|ACK seq 1 ack 1 win 64 len 5 "hello"')
        assert await until(lambda: all(any(w in p.summary for p in lab.packets) for w in wanted)), [
            p.summary for p in lab.packets
        ]
        starts = {e.node.call.name: e.t_ns for e in seen if isinstance(e, CallStarted) and isinstance(e.node, Step)}
        syn = next(p for p in lab.packets if "SYN" in p.flags and "ACK" not in p.flags)
        # Stamped on the remote clock, offset by the measured difference: after the connect was sent.
        assert syn.t_ns > starts["connect"] - 5_000_000
    finally:
        await lab.shutdown()


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv (util-linux) drops CAP_NET_RAW for this test")
async def test_a_remote_host_where_capture_is_not_allowed_says_so_once(sshd: Sshd) -> None:
    lab = await Lab.start(allow_network=True)
    seen: list[Event] = []
    lab.subscribe(seen.append)
    text = "sockplay 1\nhost far ssh nocapture\nspawn a on far\nspawn b on far\na: u = socket(udp)\n"
    text += 'a: bind(u, 127.0.0.1:0)\nb: v = socket(udp)\nb: sendto(v, "x", a.u) = 1\na: recv(u, 10) = 1 "x"\n'
    try:
        assert problems(await run(lab, text)) == []
        said = [e.message for e in seen if isinstance(e, Notice) and "not captured" in e.message]
        assert said == ["far: its packets are not captured: capturing there needs root or CAP_NET_RAW"]
        assert not lab.packets
    finally:
        await lab.shutdown()


async def test_a_remote_host_stands_where_an_address_goes(net_lab: Lab, sshd: Sshd) -> None:
    text = """sockplay 1
host far ssh remote
spawn server on far
spawn client
server: l = socket(tcp)                  = 3
server: bind(l, 0.0.0.0:0)               = 0
server: listen(l, 8)                     = 0
"""
    assert problems(await run(net_lab, text)) == []
    port = net_lab.process("server").addresses["l"].port
    assert await outcome(net_lab, "client: c = socket(tcp)") == "= 3"
    assert await outcome(net_lab, f"client: connect(c, far:{port})") == "= 0"  # far: where ssh reached it
    assert (await outcome(net_lab, "server: a = accept(l)")).startswith("= 4")


async def test_megabytes_each_way_through_the_connection(net_lab: Lab, sshd: Sshd) -> None:
    text = """sockplay 1
host far ssh remote
spawn server on far
spawn client on far
server: l = socket(tcp)
server: bind(l, 127.0.0.1:0)
server: listen(l, 8)
client: c = socket(tcp)
client: connect(c, server.l)
server: a = accept(l)
server: recv(a, 3000000, MSG_WAITALL) ...
client: write(c, "ab" * 1500000)
server: ... = 3000000
"""
    steps = await run(net_lab, text)
    assert problems(steps) == []
    # The receiver waits for all of it (no buffer holds 3 MB back from it); the writer may or may not block.
    assert steps[-1][0] == 'server: ... = 3000000 "ab" * 1500000'
