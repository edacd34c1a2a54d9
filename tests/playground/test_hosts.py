"""The network lab on the real kernel: hosts in namespaces of their own, cut, mend, crash and boot."""

from __future__ import annotations

import asyncio
import ctypes
import os
import re
import socket
import threading
import time
from pathlib import Path

import pytest
from pyroute2 import IPRoute

from playground.capture import PACKET_OUTGOING, decode
from playground.cli.replay import load_recording
from playground.errors import LabError
from playground.executor import run_typed_line
from playground.lab import Lab
from playground.netlab.wiring import dup
from playground.recording import Recorder
from playground.runner import RunReport, run_script
from playground.script.parser import parse_script
from tests.helpers import process_exists

HOSTS = """sockplay 1
host alpha 192.0.2.1
host beta 198.51.100.7
spawn server on alpha
spawn client on beta
server: l = socket(tcp)                  = 3
server: bind(l, 0.0.0.0:7000)            = 0
server: listen(l, 8)                     = 0
client: c = socket(tcp)                  = 3
client: connect(c, alpha:7000)           = 0
server: a = accept(l)                    = 4
"""


def with_hosts(tail: str) -> str:
    return HOSTS + tail


async def run(text: str, step_timeout: float = 10.0) -> RunReport:
    report = await run_script(parse_script(text), step_timeout=step_timeout)
    assert [(s.line.number, s.text, s.divergence or s.error) for s in report.divergences] == []
    return report


def netns_inode(pid: int) -> str:
    return os.readlink(f"/proc/{pid}/ns/net")


def processes_in(namespaces: set[str]) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink(f"/proc/{entry}/ns/net") in namespaces:
                    found.append(int(entry))
            except OSError:
                pass
    return found


async def test_hosts_reach_each_other_across_ranges_and_by_name() -> None:
    report = await run(
        with_hosts(
            """client: write(c, "hi")                  = 2
server: read(a, 10)                      = 2 "hi"
client: getpeername(c)                   = 192.0.2.1:7000
server: getsockname(a)                   = 192.0.2.1:7000
"""
        )
    )
    assert report.exit_code == 0


async def test_a_wildcard_bind_on_a_host_is_reached_at_its_address() -> None:
    report = await run(
        with_hosts("").replace("connect(c, alpha:7000)", "connect(c, server.l)")
        + "client: getpeername(c)                   = 192.0.2.1:7000\n"
    )
    assert report.exit_code == 0


async def test_each_host_is_its_own_namespace_with_its_fixed_mac() -> None:
    lab = await Lab.start()
    try:
        await run_typed_line(lab, "host alpha 192.0.2.1")
        await run_typed_line(lab, "host beta 192.0.2.2")
        await run_typed_line(lab, "spawn a on alpha")
        await run_typed_line(lab, "spawn b on beta")
        await run_typed_line(lab, "spawn plain")
        spaces = {netns_inode(lab.processes[n].pid) for n in ("a", "b", "plain")}
        assert len(spaces) == 3
        assert lab.network.hosts is not None
        alpha = lab.network.hosts.get("alpha")
        assert alpha.mac == "02:00:c0:00:02:01" and alpha.namespace is not None
        links, addresses, routes = await asyncio.to_thread(inside_view, alpha.namespace.inner)
        assert set(links) == {"lo", "eth0"}
        assert links["eth0"] == ("02:00:c0:00:02:01", "up")
        assert addresses == {("192.0.2.1", 24)}
        assert {("198.51.100.0", 24), ("203.0.113.0", 24)} <= routes
    finally:
        await lab.shutdown()


def inside_view(route: socket.socket) -> tuple[dict, set, set]:
    """A host's links, eth0's addresses and its routes, through its namespace's netlink socket (pyroute2 runs
    a loop of its own: called in a thread)."""
    with IPRoute(use_socket=dup(route)) as inside:
        links = {link.get("ifname"): (link.get("address"), link.get("state")) for link in inside.get_links()}
        eth0 = inside.link_lookup(ifname="eth0")[0]
        addresses = {(a.get("address"), a["prefixlen"]) for a in inside.get_addr(index=eth0)}
        routes = {(r.get("dst"), r["dst_len"]) for r in inside.get_routes(oif=eth0)}
    return links, addresses, routes


async def test_a_cut_is_silent_a_blocked_read_stays_blocked_and_a_write_succeeds() -> None:
    await run(
        with_hosts(
            """server: read(a, 100) ...
cut beta
client: write(c, "anyone?")              = 7
sleep 1
state client.c ESTABLISHED
state server.a ESTABLISHED
"""
        )
    )


async def test_keepalive_finds_a_cut_cable() -> None:
    start = time.monotonic()
    report = await run(
        with_hosts(
            """client: setsockopt(c, SO_KEEPALIVE, 1)  = 0
client: setsockopt(c, TCP_KEEPIDLE, 1)   = 0
client: setsockopt(c, TCP_KEEPINTVL, 1)  = 0
client: setsockopt(c, TCP_KEEPCNT, 3)    = 0
client: read(c, 100) ...
cut beta
client: ... = -1 ETIMEDOUT
"""
        ),
        step_timeout=20,
    )
    completion = report.steps[-1]
    assert completion.result is not None
    # About 1 s idle, then 3 probes 1 s apart: a wide window, not a timing test.
    assert 2.0e9 < completion.result.duration_ns < 15e9
    assert time.monotonic() - start < 30


async def test_after_mend_a_retransmission_delivers() -> None:
    await run(
        with_hosts(
            """server: read(a, 100) ...
cut beta
client: write(c, "anyone?")              = 7
~ lost client.c > server.a len 7
sleep 0.5
state client.c ESTABLISHED
mend beta
server: ... = 7 "anyone?"
"""
        )
    )


class Tap:
    """Frames the lab's switch sends towards a host (its port's outgoing side), read in a thread."""

    def __init__(self, lab: Lab, host: str) -> None:
        assert lab.network.hosts is not None and lab.network.holder_pid is not None
        self.sock = _packet_socket_in(lab.network.holder_pid)
        self.sock.bind((lab.network.hosts.get(host).outside, 0))
        self.sock.settimeout(0.05)
        self.frames: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                frame, address = self.sock.recvfrom(65600)
            except TimeoutError:
                continue
            except OSError:
                return
            if address[2] == PACKET_OUTGOING:
                self.frames.append(frame)

    def close(self) -> list[bytes]:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()
        return self.frames


def _packet_socket_in(holder: int) -> socket.socket:
    """An AF_PACKET socket in the lab's namespace: a thread enters it (a network namespace is per thread)."""
    made: list[socket.socket] = []
    errors: list[BaseException] = []

    def enter() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(f"/proc/{holder}/ns/net", os.O_RDONLY)
        try:
            if libc.setns(fd, 0x40000000) != 0:
                raise OSError(ctypes.get_errno(), "setns")
            made.append(socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003)))
        except BaseException as exc:  # noqa: BLE001 - reported to the test below
            errors.append(exc)
        finally:
            os.close(fd)

    thread = threading.Thread(target=enter)  # the thread ends in the lab's namespace, and goes with it
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return made[0]


async def connected_pair(lab: Lab) -> None:
    for line in parse_script(with_hosts("client: read(c, 100) ...\n")).lines:
        await run_typed_line(lab, line.text)


@pytest.mark.skipif(os.geteuid() != 0, reason="the tap enters the lab's namespace as root")
async def test_a_crash_sends_nothing_the_peer_sees_nothing() -> None:
    lab = await Lab.start()
    try:
        await connected_pair(lab)
        assert lab.network.hosts is not None
        alpha = lab.network.hosts.get("alpha")
        assert alpha.namespace is not None
        alpha_netns = netns_inode(alpha.namespace.pid)
        server = lab.processes["server"]
        tap = Tap(lab, "beta")
        crash_ns = time.monotonic_ns()
        await run_typed_line(lab, "crash alpha")
        assert server.death is not None and str(server.death) == "killed SIGKILL"
        assert processes_in({alpha_netns}) == []
        await run_typed_line(lab, "sleep 0.5")
        frames = tap.close()
        packets = [p for p in (decode(f, 0) for f in frames) if p is not None and p.protocol == "TCP"]
        assert [p.summary for p in packets if {"FIN", "RST"} & set(p.flags)] == []
        assert packets == []  # nothing at all reached beta
        # The lab's own wire (the switch's feed) agrees: what alpha's dying stack put out was never sent.
        from_alpha = [p for p in lab.packets if p.src[0] == "192.0.2.1" and p.t_ns >= crash_ns]
        assert from_alpha == [], [p.summary for p in from_alpha]
        assert await lab.socket_state("client", "c") == "ESTABLISHED"
        assert lab.processes["client"].inflight  # its read still blocked
        assert lab.network.hosts.get("alpha").state == "crashed"
    finally:
        await lab.shutdown()


async def test_a_crash_shows_nothing_on_the_wire_and_what_is_sent_to_the_crashed_host_is_lost() -> None:
    await run(
        with_hosts(
            """client: write(c, "hi")                  = 2
~ client.c > server.a ACK len 2
~ server.a > client.c ACK
server: read(a, 10)                      = 2 "hi"
crash alpha
~ nothing
client: write(c, "anyone?")              = 7
~ lost client.c > server.a len 7
~ lost client.c > server.a len 7
state client.c ESTABLISHED
"""
        )
    )


async def test_after_boot_the_peers_next_write_draws_rst_and_its_read_fails_econnreset() -> None:
    report = await run(
        with_hosts(
            """client: read(c, 100) ...
crash alpha
boot alpha
client: write(c, "hello?")               = 6
client: ... = -1 ECONNRESET
client: signal(SIGPIPE, SIG_IGN)         = 0
client: write(c, "again")                = -1 EPIPE
"""
        )
    )
    assert report.exit_code == 0


async def test_a_booted_host_runs_nothing_until_spawn_and_keeps_its_address() -> None:
    lab = await Lab.start()
    try:
        await run_typed_line(lab, "host alpha 192.0.2.1")
        await run_typed_line(lab, "spawn old on alpha")
        assert lab.network.hosts is not None
        first = lab.network.hosts.get("alpha").namespace
        assert first is not None
        first_netns = netns_inode(first.pid)
        await run_typed_line(lab, "crash alpha")
        with pytest.raises(Exception, match="alpha is crashed"):
            await run_typed_line(lab, "spawn new on alpha")
        await run_typed_line(lab, "boot alpha")
        second = lab.network.hosts.get("alpha").namespace
        # A fresh namespace (its number may be the old one's again: the kernel reuses them once freed).
        assert second is not None and second.pid != first.pid and not process_exists(first.pid)
        assert processes_in({first_netns}) == [second.pid] or netns_inode(second.pid) != first_netns
        assert [p for p in lab.processes.values() if p.host == "alpha" and p.alive] == []
        await run_typed_line(lab, "spawn new on alpha")
        await run_typed_line(lab, "new: s = socket(tcp)")
        result = await run_typed_line(lab, "new: bind(s, 192.0.2.1:80)")
        assert result is not None and result.outcome.value == 0
    finally:
        await lab.shutdown()


async def test_a_closed_sockets_state_is_read_from_its_hosts_kernel() -> None:
    await run(
        with_hosts(
            """client: close(c)                         = 0
state client.c FIN-WAIT-2
state server.a CLOSE-WAIT
server: close(a)                         = 0
state client.c TIME-WAIT
"""
        )
    )


async def test_a_cable_delays_what_its_host_sends_and_clear_ends_it() -> None:
    report = await run(
        with_hosts(
            """cable beta out delay 200ms
server: read(a, 10) ...
client: write(c, "slow")                 = 4
~ client.c > server.a PSH|ACK len 4
server: ... = 4 "slow" after 150ms
cable beta clear
server: read(a, 10) ...
client: write(c, "quick")                = 5
server: ... = 5 "quick" within 150ms
"""
        )
    )
    assert report.exit_code == 0


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (["host alpha 192.0.2.1", "boot alpha"], "alpha is up: only a crashed host boots"),
        (["host alpha 192.0.2.1", "mend alpha"], "alpha's cable is not cut"),
        (["host alpha 192.0.2.1", "cut alpha", "cut alpha"], "cut already"),
        (["host alpha 192.0.2.1", "crash alpha", "cut alpha"], "alpha is crashed"),
        (["host alpha 192.0.2.1", "crash alpha", "crash alpha"], "alpha is crashed"),
        (["host alpha 192.0.2.1", "crash alpha", "cable alpha loss 5%"], "alpha is crashed"),
    ],
)
async def test_faults_out_of_order_are_refused_clearly(lines: list[str], message: str) -> None:
    lab = await Lab.start()
    try:
        for line in lines[:-1]:
            await run_typed_line(lab, line)
        with pytest.raises(Exception, match=message):
            await run_typed_line(lab, lines[-1])
    finally:
        await lab.shutdown()


async def test_quitting_leaves_no_namespace_veth_or_process() -> None:
    lab = await Lab.start()
    await run_typed_line(lab, "host alpha 192.0.2.1")
    await run_typed_line(lab, "host beta 192.0.2.2")
    await run_typed_line(lab, "spawn a on alpha")
    await run_typed_line(lab, "crash beta")
    await run_typed_line(lab, "boot beta")
    assert lab.network.hosts is not None
    pids = lab.all_pids() + lab.network.hosts.holder_pids()
    spaces = {netns_inode(pid) for pid in pids}
    assert len(spaces) == 3  # the lab's, alpha's, beta's (booted)
    await lab.shutdown()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and processes_in(spaces):
        time.sleep(0.02)
    assert processes_in(spaces) == []
    assert [pid for pid in pids if process_exists(pid)] == []


async def test_a_recorded_session_with_hosts_replays(tmp_path: Path) -> None:
    path = tmp_path / "hosts.sockplay"
    lab = await Lab.start()
    recorder = Recorder(lab, path)
    try:
        for line in parse_script(with_hosts('client: write(c, "hi") = 2\nserver: read(a, 10) = 2 "hi"\n')).lines:
            await run_typed_line(lab, line.text)
        for line in ("cut beta", "mend beta", "cable beta out delay 10ms", "crash alpha", "boot alpha"):
            await run_typed_line(lab, line)
    finally:
        recorder.close()
        await lab.shutdown()
    raw = [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
    lines = [re.sub(r"^\+[0-9.]+ ", "", line.split("#")[0]).strip() for line in raw]
    assert lines[1:5] == [
        "host alpha 192.0.2.1",
        "host beta 198.51.100.7",
        "spawn server on alpha",
        "spawn client on beta",
    ]
    assert lines[-5:] == ["cut beta", "mend beta", "cable beta out delay 10ms", "crash alpha", "boot alpha"]
    report = await run_script(load_recording(str(path)))
    assert [(s.line.number, s.divergence or s.error) for s in report.divergences] == []


async def test_without_a_namespace_a_host_line_fails_with_one_clear_message() -> None:
    lab = await Lab.start(host_network=True)
    try:
        with pytest.raises(LabError, match="hosts need network namespaces, and this lab has none"):
            await run_typed_line(lab, "host alpha 192.0.2.1")
        assert lab.network.hosts is None
    finally:
        await lab.shutdown()


async def test_a_crash_ends_the_forked_children_on_the_host_too() -> None:
    lab = await Lab.start()
    try:
        for line in ("host alpha 192.0.2.1", "host beta 192.0.2.2", "spawn server on alpha", "spawn other on beta"):
            await run_typed_line(lab, line)
        await run_typed_line(lab, "server: kid = fork()")
        kid = lab.processes["kid"]
        assert kid.host == "alpha"
        assert netns_inode(kid.pid) == netns_inode(lab.processes["server"].pid)
        await run_typed_line(lab, "crash alpha")
        assert str(kid.death) == "killed SIGKILL" and str(lab.processes["server"].death) == "killed SIGKILL"
        assert lab.processes["other"].alive
    finally:
        await lab.shutdown()
