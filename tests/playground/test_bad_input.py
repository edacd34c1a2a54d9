"""Every bad line gets a clear one-line message and the lab goes on."""

from __future__ import annotations

import pytest

from playground.executor import run_typed_line
from playground.lab import Lab, LabError
from playground.script.errors import LineError
from tests.helpers import outcome


@pytest.mark.parametrize(
    ("line", "column", "words"),
    [
        ("a: reed(s, 10)", 4, "unknown call 'reed'; did you mean read?"),
        ("a: setsockopt(s, SO_REUSEADR, 1)", 18, "did you mean SO_REUSEADDR?"),
        ("b: read(s, 10)", 1, "no process named 'b'"),
        ("a: read(x, 10)", 9, "a has no socket named 'x'"),
        ("a: connect(s, 127.0.0.300:80)", 15, "not a valid IPv4 address"),
        ("a: connect(s, 127.0.0.1:99999)", 25, "port 99999 is out of range"),
        ("a: connect(s, [::1:80)", 15, "not closed with ']'"),
        ('a: write(s, "abc)', 13, "string is not closed"),
        ('a: write(s, "\\q")', 14, "unknown escape"),
        ("a: read(s, 999999999999)", 12, "out of range"),
        ('a: write(s, "x" * 999999999999)', 19, "larger than"),
        ("a: shutdown(s, SHUT_SIDEWAYS)", 16, "SHUT_RD, SHUT_WR or SHUT_RDWR"),
        ("a: read(s)", 10, "read takes 2 arguments"),
        ("a: signal(SIGKILL, catch)", 11, "cannot be caught"),
        ("a: exit(300)", 9, "exit status must be 0 to 255"),
        ("a: read(s, 10) = banana", 18, "expected a return value"),
        ("a: read(s, 10) = -1 ENOSUCH", 21, "unknown errno"),
    ],
)
async def test_bad_lines_are_refused_with_a_column(lab: Lab, line: str, column: int, words: str) -> None:
    await run_typed_line(lab, "spawn a")
    await run_typed_line(lab, "a: s = socket(tcp)")
    with pytest.raises(LineError) as info:
        await run_typed_line(lab, line)
    assert info.value.column == column, info.value.message
    assert words in info.value.message
    assert "\n" not in info.value.message
    # Nothing ran, and the lab goes on.
    assert await outcome(lab, "a: getsockopt(s, SO_REUSEADDR)") == "= 0"


async def test_closed_descriptor_gives_the_kernels_ebadf(lab: Lab) -> None:
    await run_typed_line(lab, "spawn a")
    await run_typed_line(lab, "a: s = socket(tcp)")
    await run_typed_line(lab, "a: close(s)")
    assert await outcome(lab, "a: read(s, 10)") == "= -1 EBADF"
    assert await outcome(lab, "a: close(s)") == "= -1 EBADF"
    assert await outcome(lab, "a: read(77, 10)") == "= -1 EBADF"


async def test_non_loopback_addresses_are_refused_unless_allowed(lab: Lab) -> None:
    await run_typed_line(lab, "spawn a")
    await run_typed_line(lab, "a: s = socket(tcp)")
    for line in ("a: connect(s, 192.0.2.1:80)", 'a: sendto(s, "x", 198.51.100.7:53)', "a: bind(s, 10.1.2.3:0)"):
        with pytest.raises(LabError, match="stays on loopback"):
            await run_typed_line(lab, line)
    assert await outcome(lab, "a: bind(s, 127.0.0.2:0)") == "= 0"


async def test_wildcard_bind_is_refused_on_the_host_network_only() -> None:
    host = await Lab.start(host_network=True)
    try:
        await run_typed_line(host, "spawn a")
        await run_typed_line(host, "a: s = socket(tcp)")
        with pytest.raises(LabError, match="stays on loopback"):
            await run_typed_line(host, "a: bind(s, 0.0.0.0:0)")
    finally:
        await host.shutdown()
    private = await Lab.start()
    try:
        if not private.network.private:
            pytest.skip(f"no private network namespace here: {private.network.reason}")
        await run_typed_line(private, "spawn a")
        await run_typed_line(private, "a: s = socket(tcp)")
        assert await outcome(private, "a: bind(s, 0.0.0.0:0)") == "= 0"
    finally:
        await private.shutdown()


async def test_calls_on_a_dead_process_are_refused(lab: Lab) -> None:
    await run_typed_line(lab, "spawn a")
    await run_typed_line(lab, "kill a SIGKILL")
    with pytest.raises(LabError, match="killed SIGKILL"):
        await run_typed_line(lab, "a: s = socket(tcp)")
    with pytest.raises(LabError, match="nothing to signal"):
        await run_typed_line(lab, "kill a")


async def test_reference_to_an_unbound_socket_is_explained(lab: Lab) -> None:
    await run_typed_line(lab, "spawn a")
    await run_typed_line(lab, "a: s = socket(tcp)")
    await run_typed_line(lab, "a: t = socket(tcp)")
    with pytest.raises(LabError, match="has no address yet"):
        await run_typed_line(lab, "a: connect(t, a.s)")


async def test_duplicate_process_names_are_refused(lab: Lab) -> None:
    await run_typed_line(lab, "spawn a")
    with pytest.raises(LineError, match="already exists"):
        await run_typed_line(lab, "spawn a")
