"""Issue 13's further calls, made for real: the descriptor limit, socketpair and AF_UNIX sockets,
readv, accept4, descriptor passing (SCM_RIGHTS), TCP_SYNCNT, IP_RECVERR and TCP_INFO."""

from __future__ import annotations

import asyncio
import os
import resource
import stat

import pytest

from playground.constants import TCP_STATES, kind_name
from playground.executor import run_typed_line
from playground.lab import Lab
from playground.lab_channel import ChannelError, check_call_result
from playground.outcomes import divergence, to_outcome
from playground.runner import run_script
from playground.script.errors import ScriptError
from playground.script.format import format_node, format_outcome
from playground.script.model import Call, Step
from playground.script.parser import parse_script
from playground.session.view import format_address
from tests.helpers import connected_pair, outcome, wait_until
from tests.playground.test_blocking_signals_fork import pending
from tests.playground.test_lab_trust import machinery_fds, open_file_limit


def _hard() -> int:
    return resource.getrlimit(resource.RLIMIT_NOFILE)[1]


# The descriptor limit.


async def test_a_lab_process_starts_with_the_shells_limits(lab: Lab) -> None:
    if _hard() < 1024 + 32:
        pytest.skip("the hard open-file limit leaves no room above 1024")
    with open_file_limit(1024):
        await run_typed_line(lab, "spawn a")
    assert await outcome(lab, "a: getrlimit(RLIMIT_NOFILE)") == f"= {{1024, {_hard()}}}"


async def test_emfile_at_the_soft_limit_then_raising_it_gives_that_very_number(lab: Lab) -> None:
    hard = _hard()
    if hard < 2048 + 32:
        pytest.skip("the hard open-file limit leaves no room above 2048")
    with open_file_limit(1024):
        await run_typed_line(lab, "spawn a")
    pid = lab.processes["a"].pid
    for fd in range(3, 1024):
        assert await outcome(lab, "a: socket(udp)") == f"= {fd}"
    assert await outcome(lab, "a: s = socket(tcp)") == "= -1 EMFILE"
    assert await outcome(lab, f"a: setrlimit(RLIMIT_NOFILE, {{2048, {hard}}})") == "= 0"
    # As in C: the next socket gets 1024, and it is the script's (not refused as machinery).
    assert await outcome(lab, "a: s = socket(tcp)") == "= 1024"
    assert await outcome(lab, "a: bind(s, 127.0.0.1:0)") == "= 0"
    assert await outcome(lab, "a: t = socket(tcp)") == "= 1025"
    assert all(fd >= 2048 for fd in machinery_fds(pid) if fd >= 1024 and fd not in (1024, 1025))
    # The moved machinery still works: signals are caught, and a fork gets its channel.
    assert await outcome(lab, "a: signal(SIGUSR1, catch)") == "= 0"
    await run_typed_line(lab, "kill a SIGUSR1")
    assert await outcome(lab, "a: kid = fork()") != "= -1 EMFILE"
    assert await outcome(lab, "kid: getsockname(s)") != "= -1 EBADF"
    assert lab.processes["a"].alive


async def test_setrlimit_errors_are_the_kernels(lab: Lab) -> None:
    await run_typed_line(lab, "spawn a")
    assert await outcome(lab, "a: setrlimit(RLIMIT_NOFILE, {4096, 1024})") == "= -1 EINVAL"  # soft above hard
    nr_open = int(open("/proc/sys/fs/nr_open").read())
    # Past fs.nr_open the kernel refuses a raise even to root.
    assert await outcome(lab, f"a: setrlimit(RLIMIT_NOFILE, {{1024, {nr_open + 1}}})") == "= -1 EPERM"


async def test_lowering_the_limit_leaves_the_machinery_working(lab: Lab) -> None:
    await run_typed_line(lab, "spawn a")
    assert await outcome(lab, "a: setrlimit(RLIMIT_NOFILE, {5, 4096})") == "= 0"
    assert await outcome(lab, "a: s = socket(tcp)") == "= 3"
    assert await outcome(lab, "a: t = socket(tcp)") == "= 4"
    assert await outcome(lab, "a: u = socket(tcp)") == "= -1 EMFILE"
    assert await outcome(lab, "a: getrlimit(RLIMIT_NOFILE)") == "= {5, 4096}"
    assert await outcome(lab, "a: close(s)") == "= 0"


# socketpair and AF_UNIX.


@pytest.mark.parametrize("kind", ["unix", "AF_UNIX, SOCK_STREAM", "unix_dgram", "AF_UNIX, SOCK_DGRAM, 0"])
async def test_socketpair_names_two_connected_sockets(lab: Lab, kind: str) -> None:
    await run_typed_line(lab, "spawn a")
    assert await outcome(lab, f"a: x, y = socketpair({kind})") == "= {3, 4}"
    assert await outcome(lab, 'a: write(x, "ab")') == "= 2"
    assert await outcome(lab, "a: read(y, 10)") == '= 2 "ab"'
    assert await outcome(lab, 'a: write(y, "c")') == "= 1"
    assert await outcome(lab, "a: read(x, 10)") == '= 1 "c"'
    assert lab.processes["a"].names == {"x": 3, "y": 4}


async def test_unix_stream_server_and_client_in_the_labs_own_directory(lab: Lab) -> None:
    await run_typed_line(lab, "spawn server")
    await run_typed_line(lab, "spawn client")
    assert await outcome(lab, "server: l = socket(unix)") == "= 3"
    assert await outcome(lab, 'server: bind(l, "srv.sock")') == "= 0"
    assert await outcome(lab, 'server: bind(l, "other")') == "= -1 EINVAL"  # already bound
    assert await outcome(lab, "server: listen(l, 4)") == "= 0"
    assert await outcome(lab, "server: getsockname(l)") == '= "srv.sock"'
    assert await outcome(lab, "client: c = socket(unix)") == "= 3"
    assert await outcome(lab, 'client: connect(c, "nobody")') == "= -1 ENOENT"
    assert await outcome(lab, "client: connect(c, server.l)") == "= 0"
    assert await outcome(lab, "client: getpeername(c)") == '= "srv.sock"'
    assert await outcome(lab, "server: a = accept(l)") == "= 4"
    assert await outcome(lab, 'client: write(c, "hi")') == "= 2"
    assert await outcome(lab, "server: read(a, 10)") == '= 2 "hi"'
    assert await outcome(lab, "server: l2 = socket(unix)") == "= 5"
    assert await outcome(lab, 'server: bind(l2, "srv.sock")') == "= -1 EADDRINUSE"
    directory = lab.lifecycle.unix_dir.path
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
    assert stat.S_ISSOCK(os.stat(os.path.join(directory, "srv.sock")).st_mode)
    await lab.shutdown()
    assert not os.path.exists(directory)


async def test_unix_datagrams_carry_their_source_path(lab: Lab) -> None:
    await run_typed_line(lab, "spawn a")
    await run_typed_line(lab, "spawn b")
    assert await outcome(lab, "a: d = socket(unix_dgram)") == "= 3"
    assert await outcome(lab, 'a: bind(d, "a.sock")') == "= 0"
    assert await outcome(lab, "b: e = socket(AF_UNIX, SOCK_DGRAM)") == "= 3"
    assert await outcome(lab, 'b: bind(e, "b.sock")') == "= 0"
    assert await outcome(lab, 'b: sendto(e, "dg", a.d)') == "= 2"
    assert await outcome(lab, "a: recvmsg(d, 10)") == '= 2 "dg" from "b.sock" rights {}'
    assert await outcome(lab, 'b: sendto(e, "x", "nowhere")') == "= -1 ENOENT"


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ('"../escape"', "no '/'"),
        ('"/tmp/x"', "no '/'"),
        ('"a\\0b"', "NUL"),
        ('""', "empty"),
        ('".."', "a directory"),
        ('"' + "x" * 108 + '"', "at most 107"),
    ],
)
def test_a_unix_path_is_a_plain_name_in_the_lab_directory(path: str, words: str) -> None:
    with pytest.raises(ScriptError) as caught:
        parse_script(f"sockplay 1\nspawn a\na: u = socket(unix)\na: bind(u, {path})\n")
    assert words in str(caught.value)
    parse_script("sockplay 1\nspawn a\na: u = socket(unix)\na: bind(u, " + '"' + "x" * 107 + '")\n')


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("a: x, y = socketpair(tcp)", "socketpair takes unix"),
        ("a: x, y = socketpair(AF_INET, SOCK_STREAM)", "AF_UNIX sockets only"),
        ("a: x, y, z = socketpair(unix)", "at most 2 names"),
        ("a: x, x = socketpair(unix)", "named twice"),
        ("a: x, y = socket(unix)", "one name"),
        ("a: setrlimit(RLIMIT_NOFILE, 5)", "{SOFT, HARD}"),
        ("a: getrlimit(RLIMIT_CPU)", "RLIMIT_NOFILE"),
        ("a: accept4(3, O_NONBLOCK)", "SOCK_NONBLOCK"),
        ('a: sendmsg(3, "x"' + ", 3" * 17 + ")", "at most 16"),
        ("a: setsockopt(3, TCP_INFO, 1)", "can be read, not set"),
    ],
)
def test_bad_lines_of_the_new_calls_are_refused_with_a_reason(line: str, words: str) -> None:
    with pytest.raises(ScriptError) as caught:
        parse_script(f"sockplay 1\nspawn a\n{line}\n")
    assert words in str(caught.value)


# readv and accept4.


async def test_readv_fills_its_buffers_in_order(lab: Lab) -> None:
    await connected_pair(lab)
    assert await outcome(lab, 'client: write(c, "abcdefgh")') == "= 8"
    assert await outcome(lab, "server: readv(a, 3, 2, 10)") == '= 8 "abcdefgh"'
    assert await outcome(lab, 'client: write(c, "xyz")') == "= 3"
    assert await outcome(lab, "server: readv(a, 1, 1)") == '= 2 "xy"'
    assert await outcome(lab, "server: readv(99, 4)") == "= -1 EBADF"


async def test_accept4_sets_the_new_sockets_flags(lab: Lab) -> None:
    await run_typed_line(lab, "spawn server")
    await run_typed_line(lab, "spawn client")
    for line in ("server: l = socket(tcp)", "server: bind(l, 127.0.0.1:0)", "server: listen(l, 8)"):
        await run_typed_line(lab, line)
    assert await outcome(lab, "client: c = socket(tcp)") == "= 3"
    assert await outcome(lab, "client: connect(c, server.l)") == "= 0"
    text = await outcome(lab, "server: a = accept4(l, SOCK_NONBLOCK|SOCK_CLOEXEC)")
    assert text.startswith("= 4 from 127.0.0.1:")
    assert await outcome(lab, "server: fcntl(a, O_NONBLOCK)") == "= 1"
    assert await outcome(lab, "server: read(a, 10)") == "= -1 EAGAIN"
    assert await outcome(lab, "client: d = socket(tcp)") == "= 4"
    assert await outcome(lab, "client: connect(d, server.l)") == "= 0"
    assert (await outcome(lab, "server: b = accept4(l, 0)")).startswith("= 5 from")
    assert await outcome(lab, "server: fcntl(b, O_NONBLOCK)") == "= 0"
    assert await outcome(lab, "server: accept4(a, SOCK_NONBLOCK)") == "= -1 EINVAL"  # not listening


# Descriptor passing.


async def test_a_passed_socket_is_a_new_descriptor_the_receiver_uses(lab: Lab) -> None:
    await connected_pair(lab)  # server: l, a; client: c
    await run_typed_line(lab, "spawn helper")
    assert await outcome(lab, "server: u = socket(unix_dgram)") == "= 5"
    assert await outcome(lab, 'server: bind(u, "pass")') == "= 0"
    assert await outcome(lab, "helper: v = socket(unix_dgram)") == "= 3"
    assert await outcome(lab, 'server: sendmsg(u, "x")') == "= -1 ENOTCONN"
    assert await outcome(lab, "helper: connect(v, server.u)") == "= 0"
    assert await outcome(lab, 'helper: sendmsg(v, "no rights")') == "= 9"
    assert await outcome(lab, "server: recvmsg(u, 100)") == '= 9 "no rights" rights {}'
    # server passes its accepted connection to helper, which answers the client through it.
    assert await outcome(lab, 'server: sendmsg(u, "take", a)') == "= -1 ENOTCONN"
    assert await outcome(lab, 'helper: bind(v, "helper")') == "= 0"
    assert await outcome(lab, "server: connect(u, helper.v)") == "= 0"
    assert await outcome(lab, 'server: sendmsg(u, "take", a, l)') == "= 4"
    assert await outcome(lab, "helper: conn, lis = recvmsg(v, 100)") == '= 4 "take" from "pass" rights {4, 5}'
    assert lab.processes["helper"].names["conn"] == 4
    assert await outcome(lab, "server: close(a)") == "= 0"
    assert await outcome(lab, 'helper: write(conn, "from helper")') == "= 11"
    assert await outcome(lab, "client: read(c, 100)") == '= 11 "from helper"'
    assert await outcome(lab, "helper: getsockopt(lis, SO_REUSEADDR)") == "= 0"


async def test_sendmsg_refuses_descriptors_that_are_not_the_scripts(lab: Lab) -> None:
    await run_typed_line(lab, "spawn a")
    assert await outcome(lab, "a: x, y = socketpair(unix)") == "= {3, 4}"
    assert await outcome(lab, 'a: sendmsg(x, "m", 77)') == "= -1 EBADF"  # not open
    for fd in machinery_fds(lab.processes["a"].pid):
        if fd > 4:
            assert await outcome(lab, f'a: sendmsg(x, "m", {fd})') == "= -1 EBADF"
    assert await outcome(lab, "a: fcntl(y, O_NONBLOCK, 1)") == "= 0"
    assert await outcome(lab, "a: recvmsg(y, 10)") == "= -1 EAGAIN"  # nothing was sent


# Options.


async def test_tcp_syncnt_is_set_and_read_back(lab: Lab) -> None:
    await run_typed_line(lab, "spawn a")
    await run_typed_line(lab, "a: s = socket(tcp)")
    assert await outcome(lab, "a: setsockopt(s, TCP_SYNCNT, 2)") == "= 0"
    assert await outcome(lab, "a: getsockopt(s, TCP_SYNCNT)") == "= 2"
    assert await outcome(lab, "a: setsockopt(s, TCP_SYNCNT, 0)") == "= -1 EINVAL"


async def test_ip_recverr_makes_an_unconnected_udp_socket_hear_of_icmp_errors(lab: Lab) -> None:
    await run_typed_line(lab, "spawn a")
    assert await outcome(lab, "a: gone = socket(udp)") == "= 3"
    assert await outcome(lab, "a: bind(gone, 127.0.0.1:0)") == "= 0"
    assert await outcome(lab, "a: close(gone)") == "= 0"  # its port is closed now: the kernel answers ICMP
    assert await outcome(lab, "a: deaf = socket(udp)") == "= 3"
    assert await outcome(lab, 'a: sendto(deaf, "x", a.gone)') == "= 1"
    assert await outcome(lab, "a: recvfrom(deaf, 10, MSG_DONTWAIT)") == "= -1 EAGAIN"  # the error is dropped
    assert await outcome(lab, "a: s = socket(udp)") == "= 4"
    assert await outcome(lab, "a: setsockopt(s, IP_RECVERR, 1)") == "= 0"
    assert await outcome(lab, "a: getsockopt(s, IP_RECVERR)") == "= 1"
    assert await outcome(lab, 'a: sendto(s, "x", a.gone)') == "= 1"
    assert await outcome(lab, "a: poll(s, POLLIN, 1000)") == "= 1 POLLERR"
    assert await outcome(lab, "a: recvfrom(s, 10)") == "= -1 ECONNREFUSED"


async def test_so_error_is_read_only_and_read_clears_it(lab: Lab) -> None:
    await run_typed_line(lab, "spawn a")
    await run_typed_line(lab, "a: s = socket(tcp)")
    assert await outcome(lab, "a: fcntl(s, O_NONBLOCK, 1)") == "= 0"
    assert await outcome(lab, "a: connect(s, 127.0.0.1:9)") == "= -1 EINPROGRESS"
    assert await outcome(lab, "a: poll(s, POLLOUT, 1000)") != "= 0"
    assert await outcome(lab, "a: getsockopt(s, SO_ERROR)") == "= 111"  # ECONNREFUSED, as C reads it
    assert await outcome(lab, "a: getsockopt(s, SO_ERROR)") == "= 0"


async def test_tcp_info_shows_fields_and_checks_only_the_stable_ones(lab: Lab) -> None:
    await connected_pair(lab)
    result = await run_typed_line(lab, "client: getsockopt(c, TCP_INFO)")
    assert result is not None
    actual = result.outcome
    text = format_node(Step("client", result_step_call(), None), actual)
    assert "{state: ESTABLISHED, ca_state: Open, retransmits: 0" in text
    assert "rtt_us: " in text and "snd_cwnd: " in text
    stated = (
        parse_script(
            "sockplay 1\nspawn client\nclient: c = socket(tcp)\n"
            "client: getsockopt(c, TCP_INFO) = {state: ESTABLISHED, retransmits: 0, rtt_us: 1, snd_cwnd: 999}\n"
        )
        .lines[-1]
        .node
    )
    assert isinstance(stated, Step) and stated.expect is not None
    assert divergence("getsockopt", stated.expect, actual) is None  # rtt and cwnd are not claims
    wrong = (
        parse_script(
            "sockplay 1\nspawn client\nclient: c = socket(tcp)\nclient: getsockopt(c, TCP_INFO) = {state: LISTEN}\n"
        )
        .lines[-1]
        .node
    )
    assert isinstance(wrong, Step) and wrong.expect is not None
    assert "return value differs" in (divergence("getsockopt", wrong.expect, actual) or "")
    assert (await outcome(lab, "server: getsockopt(l, TCP_INFO)")).startswith("= {state: LISTEN")


async def test_so_meminfo_gives_the_kernels_accounting_and_checks_only_the_stable_fields(lab: Lab) -> None:
    await connected_pair(lab)
    idle = await outcome(lab, "server: getsockopt(a, SO_MEMINFO)")
    # An idle connection has nothing charged to its buffers: their sizes are caps, not memory held.
    assert idle.startswith("= {rmem_alloc: 0, rcvbuf: ") and "wmem_queued: 0, optmem: " in idle
    assert await outcome(lab, 'client: write(c, "x" * 1000)') == "= 1000"
    assert await outcome(lab, "server: poll(a, POLLIN, 1000)") == "= 1 POLLIN"
    result = await run_typed_line(lab, "server: getsockopt(a, SO_MEMINFO)")
    assert result is not None
    charged = dict(result.outcome.value.items)
    assert charged["rmem_alloc"] > 1000  # the whole buffer that holds the segment is charged, not only the bytes
    assert charged["drops"] == 0 and charged["rcvbuf"] > 0
    step = parse_script("sockplay 1\nspawn s\ns: a = socket(tcp)\ns: getsockopt(a, SO_MEMINFO) = {rmem_alloc: 0}\n")
    stated = step.lines[-1].node
    assert isinstance(stated, Step) and stated.expect is not None
    assert "return value differs" in (divergence("getsockopt", stated.expect, result.outcome) or "")
    assert await outcome(lab, "server: read(a, 2000)") == '= 1000 "x" * 1000'
    after = await run_typed_line(lab, "server: getsockopt(a, SO_MEMINFO)")
    assert after is not None and divergence("getsockopt", stated.expect, after.outcome) is None
    # The caps are not claims: a stated rcvbuf never fails a check.
    caps = parse_script("sockplay 1\nspawn s\ns: a = socket(tcp)\ns: getsockopt(a, SO_MEMINFO) = {rcvbuf: 1}\n")
    cap_step = caps.lines[-1].node
    assert isinstance(cap_step, Step) and cap_step.expect is not None
    assert divergence("getsockopt", cap_step.expect, after.outcome) is None
    with pytest.raises(ScriptError, match="can be read, not set"):
        parse_script("sockplay 1\nspawn s\ns: a = socket(tcp)\ns: setsockopt(a, SO_MEMINFO, 1)\n")


def result_step_call() -> Call:
    node = parse_script("sockplay 1\nspawn client\nclient: c = socket(tcp)\nclient: getsockopt(c, TCP_INFO)\n")
    step = node.lines[-1].node
    assert isinstance(step, Step)
    return step.call


# The script's text and the channel.

ROUND_TRIP = """sockplay 1
spawn a
a: x, y = socketpair(unix) = {3, 4}
a: getrlimit(RLIMIT_NOFILE) = {1024, 4096}
a: u = socket(unix_dgram) = 5
a: bind(u, "srv.sock") = 0
a: getsockname(u) = "srv.sock"
a: f, g = recvmsg(u, 100) = 1 "x" from "cli.sock" rights {6, 7}
a: recvmsg(u, 100) = 0 rights {}
a: s = accept4(x, SOCK_NONBLOCK|SOCK_CLOEXEC) = -1 EINVAL
a: readv(x, 1, 2) = 3 "abc"
a: sendmsg(x, "m", f, g) = 1
"""


def test_the_new_forms_read_back_as_written() -> None:
    script = parse_script(ROUND_TRIP)
    assert [format_node(line.node) for line in script.lines] == ROUND_TRIP.splitlines()[1:]


async def test_a_whole_script_with_the_new_calls_runs_as_stated() -> None:
    text = """sockplay 1
spawn server
spawn client
server: l = socket(unix)                       = 3
server: bind(l, "echo.sock")                   = 0
server: listen(l, 4)                           = 0
client: c = socket(unix)                       = 3
client: connect(c, server.l)                   = 0
server: a = accept4(l, SOCK_CLOEXEC)           = 4
server: p, q = socketpair(unix_dgram)          = {5, 6}
server: sendmsg(a, "fd", p)                    = 2
client: mine = recvmsg(c, 10)                  = 2 "fd" rights {4}
client: write(mine, "back")                    = 4
server: readv(q, 2, 2)                         = 4 "back"
"""
    report = await run_script(parse_script(text))
    assert [(s.line.number, s.divergence or s.error) for s in report.divergences] == []


@pytest.mark.parametrize(
    "raw",
    [
        {"ret": 1, "rights": ["x"]},
        {"ret": 1, "rights": list(range(65))},
        {"ret": 0, "path": 5},
        {"ret": 0, "path": "x" * 200},
        {"ret": 0, "fields": {"state": "ESTABLISHED"}},
        {"ret": 0, "inos": [1.5]},
    ],
)
def test_a_lab_process_cannot_report_malformed_new_results(raw: dict) -> None:
    with pytest.raises(ChannelError):
        check_call_result(raw)


def test_outcomes_of_the_new_calls_from_raw_results() -> None:
    assert str(to_outcome("getrlimit", {"ret": 0, "value": [1024, 2**64 - 1]}).value) == "{1024, 18446744073709551615}"
    received = to_outcome("recvmsg", {"ret": 1, "data": b"x", "rights": [5], "path": "p"})
    assert (received.data, received.rights, str(received.peer)) == (b"x", (5,), '"p"')


async def test_the_inspector_shows_unix_sockets_by_path(lab: Lab) -> None:
    await run_typed_line(lab, "spawn server")
    await run_typed_line(lab, "spawn client")
    for line in (
        "server: l = socket(unix)",
        'server: bind(l, "srv.sock")',
        "server: listen(l, 4)",
        "client: c = socket(unix)",
        "client: connect(c, server.l)",
        "client: x, y = socketpair(unix_dgram)",
    ):
        await run_typed_line(lab, line)
    snapshot = await lab.inspect()
    listener = next(s for s in snapshot["server"] if s["fd"] == 3)
    client = {s["fd"]: s for s in snapshot["client"]}
    assert kind_name(listener["family"], listener["type"]) == "unix"
    assert format_address(listener["local"]) == '"srv.sock"'
    assert format_address(client[3]["peer"]) == '"srv.sock"'
    assert kind_name(client[4]["family"], client[4]["type"]) == "unix_dgram"
    assert client[4]["local"] is None  # a socketpair's ends have no path
    assert format_address(client[4]["peer"]) == "(unnamed)"  # but each has its peer
    # States as ss names them for AF_UNIX streams.
    assert TCP_STATES[listener["state"]] == "LISTEN" and TCP_STATES[client[3]["state"]] == "ESTABLISHED"
    assert client[4]["state"] is None and client[4]["tcp"] is None


async def test_a_raise_made_while_the_main_thread_is_blocked_moves_the_signal_pipe_once_it_returns(lab: Lab) -> None:
    hard = _hard()
    if hard < 2048 + 32:
        pytest.skip("the hard open-file limit leaves no room above 2048")
    with open_file_limit(1024):
        await run_typed_line(lab, "spawn a")
    pid = lab.processes["a"].pid
    assert await outcome(lab, "a: x, y = socketpair(unix)") == "= {3, 4}"
    read = await pending(lab, "a: read(x, 10)")  # the main thread blocks in it; another takes requests
    assert await outcome(lab, f"a: setrlimit(RLIMIT_NOFILE, {{2048, {hard}}})") == "= 0"
    assert any(1024 <= fd < 2048 for fd in machinery_fds(pid))  # the signal pipe waits for the main thread
    assert await outcome(lab, 'a: write(y, "z")') == "= 1"
    assert format_outcome((await asyncio.wait_for(read.future, 5)).outcome) == '= 1 "z"'
    wait_until(lambda: all(fd < 1024 or fd >= 2048 for fd in machinery_fds(pid)), 5.0, "the signal pipe moved")
    assert await outcome(lab, "a: s = socket(tcp)") == "= 5"
    assert await outcome(lab, "a: signal(SIGUSR1, catch)") == "= 0"
    poll = await pending(lab, "a: poll(x, POLLIN, 5000)")
    await run_typed_line(lab, "kill a SIGUSR1")
    result = await asyncio.wait_for(poll.future, 5)
    assert (result.outcome.errno, result.outcome.signals) == ("EINTR", ("SIGUSR1",))  # the moved pipe tells of it


async def test_accept4_leaves_the_listeners_address_and_names_its_packets_end(lab: Lab) -> None:
    await run_typed_line(lab, "spawn server")
    await run_typed_line(lab, "spawn client")
    for line in ("server: l = socket(tcp)", "server: bind(l, 0.0.0.0:0)", "server: listen(l, 8)"):
        await run_typed_line(lab, line)
    bound = lab.processes["server"].addresses["l"]
    port = bound.port
    assert await outcome(lab, "client: c = socket(tcp)") == "= 3"
    assert await outcome(lab, f"client: connect(c, 127.0.0.1:{port})") == "= 0"
    assert (await outcome(lab, "server: a = accept4(l, 0)")).startswith("= 4 from 127.0.0.1:")
    assert lab.processes["server"].addresses["l"] == bound  # still the wildcard it was bound to
    client_end = lab.processes["client"].addresses["c"]
    assert lab.label_for(("127.0.0.1", port), (client_end.host, client_end.port)) == ("server", "server.a")


async def test_ipv6_recverr_does_for_udp6_what_ip_recverr_does_for_udp(lab: Lab) -> None:
    await run_typed_line(lab, "spawn a")
    for line in ("a: gone = socket(udp6)", "a: bind(gone, [::1]:0)", "a: close(gone)", "a: s = socket(udp6)"):
        await run_typed_line(lab, line)
    assert await outcome(lab, "a: setsockopt(s, IPV6_RECVERR, 1)") == "= 0"
    assert await outcome(lab, 'a: sendto(s, "x", a.gone)') == "= 1"
    assert await outcome(lab, "a: poll(s, POLLIN, 1000)") == "= 1 POLLERR"
    assert await outcome(lab, "a: recvfrom(s, 10)") == "= -1 ECONNREFUSED"
