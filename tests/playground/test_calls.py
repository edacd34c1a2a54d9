"""Each call of script.md's first set, made for real in a lab process."""

from __future__ import annotations

import socket

import pytest

from playground.executor import run_typed_line
from playground.lab import Lab
from tests.helpers import connected_pair, outcome, until_reset


async def test_descriptors_start_at_three_and_take_the_lowest_free(lab: Lab) -> None:
    await run_typed_line(lab, "spawn a")
    assert await outcome(lab, "a: s1 = socket(tcp)") == "= 3"
    assert await outcome(lab, "a: s2 = socket(udp)") == "= 4"
    assert await outcome(lab, "a: s3 = socket(tcp6)") == "= 5"
    assert await outcome(lab, "a: close(s2)") == "= 0"
    assert await outcome(lab, "a: s4 = socket(udp6)") == "= 4"
    assert await outcome(lab, "a: d = dup(s1)") == "= 6"


async def test_tcp_exchange_over_ipv4(lab: Lab) -> None:
    await connected_pair(lab)
    assert await outcome(lab, 'client: write(c, "hello")') == "= 5"
    assert await outcome(lab, "server: read(a, 100)") == '= 5 "hello"'
    assert await outcome(lab, 'server: send(a, "abc", MSG_NOSIGNAL)') == "= 3"
    assert await outcome(lab, "client: recv(c, 2, MSG_PEEK)") == '= 2 "ab"'
    assert await outcome(lab, "client: recv(c, 10)") == '= 3 "abc"'
    assert await outcome(lab, 'client: writev(c, "ab", "cd", "ef")') == "= 6"
    assert await outcome(lab, "server: read(a, 100)") == '= 6 "abcdef"'


async def test_tcp_exchange_over_ipv6(lab: Lab) -> None:
    await run_typed_line(lab, "spawn a")
    await run_typed_line(lab, "spawn b")
    assert await outcome(lab, "a: l = socket(tcp6)") == "= 3"
    assert await outcome(lab, "a: bind(l, [::1]:0)") == "= 0"
    assert await outcome(lab, "a: listen(l)") == "= 0"
    assert await outcome(lab, "b: c = socket(AF_INET6, SOCK_STREAM, 0)") == "= 3"
    assert await outcome(lab, "b: connect(c, a.l)") == "= 0"
    text = await outcome(lab, "a: s = accept(l)")
    assert text.startswith("= 4 from [::1]:")
    assert await outcome(lab, 'b: write(c, "six")') == "= 3"
    assert await outcome(lab, "a: read(s, 10)") == '= 3 "six"'
    name = (await run_typed_line(lab, "b: getpeername(c)")).outcome.value  # type: ignore[union-attr]
    assert str(name) == str(lab.processes["a"].addresses["l"])


async def test_udp_sendto_recvfrom_ipv4_and_ipv6(lab: Lab) -> None:
    await run_typed_line(lab, "spawn a")
    await run_typed_line(lab, "spawn b")
    for kind, host in (("udp", "127.0.0.1"), ("udp6", "[::1]")):
        await run_typed_line(lab, f"a: r_{kind} = socket({kind})")
        await run_typed_line(lab, f"a: bind(r_{kind}, {host}:0)")
        await run_typed_line(lab, f"b: s_{kind} = socket({kind})")
        assert await outcome(lab, f'b: sendto(s_{kind}, "dgram", a.r_{kind})') == "= 5"
        result = await run_typed_line(lab, f"a: recvfrom(r_{kind}, 100)")
        assert result is not None
        assert result.outcome.value == 5 and result.outcome.data == b"dgram"
        own = (await run_typed_line(lab, f"b: getsockname(s_{kind})")).outcome.value  # type: ignore[union-attr]
        # sendto bound the socket implicitly to the wildcard address and a port.
        assert own.host in ("0.0.0.0", "::") and result.outcome.peer.port == own.port  # type: ignore[union-attr]


async def test_options_set_and_read_back(lab: Lab) -> None:
    await run_typed_line(lab, "spawn a")
    await run_typed_line(lab, "a: s = socket(tcp)")
    for option, value, expected in (
        ("SO_REUSEADDR", "1", "= 1"),
        ("SO_REUSEPORT", "1", "= 1"),
        ("SO_KEEPALIVE", "1", "= 1"),
        ("TCP_NODELAY", "1", "= 1"),
        ("TCP_CORK", "1", "= 1"),
        ("TCP_KEEPIDLE", "5", "= 5"),
        ("TCP_KEEPINTVL", "2", "= 2"),
        ("TCP_KEEPCNT", "3", "= 3"),
        ("TCP_USER_TIMEOUT", "1500", "= 1500"),
        ("SO_LINGER", "{1, 0}", "= {1, 0}"),
        ("SO_RCVTIMEO", "0.5", "= 0.5"),  # (0.25 reads back 0.252: the kernel keeps jiffies)
        ("SO_SNDTIMEO", "2", "= 2"),
        ("SO_RCVBUF", "65536", "= 131072"),  # the kernel doubles it (socket(7))
    ):
        assert await outcome(lab, f"a: setsockopt(s, {option}, {value})") == "= 0", option
        assert await outcome(lab, f"a: getsockopt(s, {option})") == expected, option
    assert await outcome(lab, "a: getsockopt(s, SO_ERROR)") == "= 0"
    assert await outcome(lab, "a: fcntl(s, O_NONBLOCK)") == "= 0"
    assert await outcome(lab, "a: fcntl(s, O_NONBLOCK, 1)") == "= 0"
    assert await outcome(lab, "a: fcntl(s, O_NONBLOCK)") == "= 1"
    assert await outcome(lab, "a: setsockopt(s, TCP_KEEPCNT, -1)") == "= -1 EINVAL"


async def test_shutdown_each_direction(lab: Lab) -> None:
    await connected_pair(lab)
    assert await outcome(lab, "client: shutdown(c, SHUT_WR)") == "= 0"
    assert await outcome(lab, "server: read(a, 10)") == "= 0"
    assert await outcome(lab, 'server: write(a, "still open")') == "= 10"
    assert await outcome(lab, "client: read(c, 100)") == '= 10 "still open"'
    assert await outcome(lab, "server: shutdown(a, SHUT_RD)") == "= 0"
    assert await outcome(lab, "server: shutdown(a, SHUT_RDWR)") == "= 0"
    assert await outcome(lab, "client: read(c, 100)") == "= 0"


async def test_getsockname_getpeername_and_errors_before_connect(lab: Lab) -> None:
    await run_typed_line(lab, "spawn a")
    await run_typed_line(lab, "a: s = socket(tcp)")
    assert await outcome(lab, "a: getpeername(s)") == "= -1 ENOTCONN"
    assert await outcome(lab, "a: bind(s, 127.0.0.1:0)") == "= 0"
    name = await run_typed_line(lab, "a: getsockname(s)")
    assert name is not None and str(name.outcome.value).startswith("127.0.0.1:")
    assert await outcome(lab, "a: bind(s, 127.0.0.1:0)") == "= -1 EINVAL"


async def test_connect_refused_and_address_in_use(lab: Lab) -> None:
    await run_typed_line(lab, "spawn a")
    await run_typed_line(lab, "a: l = socket(tcp)")
    await run_typed_line(lab, "a: bind(l, 127.0.0.1:0)")
    await run_typed_line(lab, "a: listen(l, 1)")
    await run_typed_line(lab, "a: other = socket(tcp)")
    assert await outcome(lab, "a: bind(other, a.l)") == "= -1 EADDRINUSE"
    await run_typed_line(lab, "a: closed = socket(tcp)")
    await run_typed_line(lab, "a: bind(closed, 127.0.0.1:0)")
    await run_typed_line(lab, "a: c = socket(tcp)")
    assert await outcome(lab, "a: connect(c, a.closed)") == "= -1 ECONNREFUSED"


async def test_poll_reports_readiness(lab: Lab) -> None:
    await connected_pair(lab)
    assert await outcome(lab, "server: poll(a, POLLIN, 0)") == "= 0"
    assert await outcome(lab, "server: poll(a, POLLOUT, 0)") == "= 1 POLLOUT"
    await run_typed_line(lab, 'client: write(c, "x")')
    assert await outcome(lab, "server: poll(a, POLLIN|POLLOUT, 100)") == "= 1 POLLIN|POLLOUT"
    await run_typed_line(lab, "client: shutdown(c, SHUT_WR)")
    assert await outcome(lab, "server: poll(a, POLLIN|POLLRDHUP, 100)") == "= 1 POLLIN|POLLRDHUP"


async def test_nonblocking_read_and_connect(lab: Lab) -> None:
    await connected_pair(lab)
    await run_typed_line(lab, "server: fcntl(a, O_NONBLOCK, 1)")
    result = await run_typed_line(lab, "server: read(a, 10)")
    assert result is not None and result.outcome.errno == "EAGAIN"
    assert result.errno_number == 11 and result.outcome.errno_message == "Resource temporarily unavailable"


async def test_accept_does_not_inherit_o_nonblock(lab: Lab) -> None:
    await run_typed_line(lab, "spawn a")
    await run_typed_line(lab, "a: l = socket(tcp)")
    await run_typed_line(lab, "a: fcntl(l, O_NONBLOCK, 1)")
    await run_typed_line(lab, "a: bind(l, 127.0.0.1:0)")
    await run_typed_line(lab, "a: listen(l, 1)")
    assert await outcome(lab, "a: accept(l)") == "= -1 EAGAIN"
    await run_typed_line(lab, "a: c = socket(tcp)")
    await run_typed_line(lab, "a: connect(c, a.l)")
    await run_typed_line(lab, "a: s = accept(l)")
    assert await outcome(lab, "a: fcntl(s, O_NONBLOCK)") == "= 0"


@pytest.mark.parametrize("family", ["tcp", "tcp6"])
async def test_write_to_reset_connection_gives_epipe_and_sigpipe(lab: Lab, family: str) -> None:
    host = "127.0.0.1" if family == "tcp" else "[::1]"
    await run_typed_line(lab, "spawn a")
    await run_typed_line(lab, "spawn b")
    await run_typed_line(lab, f"a: l = socket({family})")
    await run_typed_line(lab, f"a: bind(l, {host}:0)")
    await run_typed_line(lab, "a: listen(l, 1)")
    await run_typed_line(lab, "a: signal(SIGPIPE, catch)")
    await run_typed_line(lab, f"b: c = socket({family})")
    await run_typed_line(lab, "b: connect(c, a.l)")
    await run_typed_line(lab, "a: s = accept(l)")
    await run_typed_line(lab, "b: close(c)")
    assert await outcome(lab, "a: read(s, 10)") == "= 0"
    assert await outcome(lab, 'a: write(s, "ping")') == "= 4"
    await until_reset(lab, "a", "s")
    assert await outcome(lab, 'a: write(s, "ping")') == "= -1 EPIPE ! SIGPIPE"
    assert await outcome(lab, 'a: send(s, "ping", MSG_NOSIGNAL)') == "= -1 EPIPE"


async def test_duration_is_measured_inside_the_process() -> None:
    lab = await Lab.start()
    try:
        await run_typed_line(lab, "spawn a")
        await run_typed_line(lab, "a: s = socket(udp)")
        await run_typed_line(lab, "a: bind(s, 127.0.0.1:0)")
        result = await run_typed_line(lab, "a: poll(s, POLLIN, 30)")
        assert result is not None and result.outcome.value == 0
        # poll waited its 30 ms timeout; the in-process clock says so.
        assert 29_000_000 <= result.duration_ns < 1_000_000_000
        assert result.start_ns > lab.t0
        quick = await run_typed_line(lab, "a: getsockopt(s, SO_RCVBUF)")
        assert quick is not None and 0 < quick.duration_ns < result.duration_ns
    finally:
        await lab.shutdown()


def test_kernel_errno_names_match_python() -> None:
    from playground.constants import ERRNO_NUMBERS, errno_name

    assert errno_name(11) == "EAGAIN" and ERRNO_NUMBERS["EWOULDBLOCK"] == 11
    assert errno_name(socket.EAI_AGAIN if False else 32) == "EPIPE"


async def test_lab_process_holds_only_what_a_c_program_would(lab: Lab) -> None:
    import os

    await run_typed_line(lab, "spawn a")
    await run_typed_line(lab, "a: s = socket(tcp)")
    await run_typed_line(lab, "a: kid = fork()")
    # The child builds its machinery before it takes its first call; a call means it is done.
    assert await outcome(lab, "kid: getsockopt(s, SO_REUSEADDR)") == "= 0"
    for name in ("a", "kid"):
        fds = sorted(int(fd) for fd in os.listdir(f"/proc/{lab.processes[name].pid}/fd"))
        low = [fd for fd in fds if fd < 1000]
        assert low == [0, 1, 2, 3], (name, fds)  # stdin, stdout, stderr and the lab's own socket
    assert await outcome(lab, "kid: t = socket(udp)") == "= 4"
    assert await outcome(lab, "a: t = socket(udp)") == "= 4"
