"""poll over a set, select and epoll, made for real in lab processes: outcomes and errors as the kernel gives them."""

from __future__ import annotations

import asyncio

import pytest

from playground import resolve_many
from playground.errors import LabError
from playground.events import CallPending, Notice
from playground.executor import run_typed_line
from playground.lab import CallHandle, Lab
from playground.script.model import Step
from playground.script.parser import parse_line
from tests.helpers import outcome

WAIT = 5.0


async def three_connections(lab: Lab) -> None:
    """server holds c[0..2] accepted from client's s[0..2]."""
    for name in ("server", "client"):
        await run_typed_line(lab, f"spawn {name}")
    for line in ("server: l = socket(tcp)", "server: bind(l, 127.0.0.1:0)", "server: listen(l, 8)"):
        await run_typed_line(lab, line)
    for i in range(3):
        await run_typed_line(lab, f"client: s[{i}] = socket(tcp)")
        assert await outcome(lab, f"client: connect(s[{i}], server.l)") == "= 0"
        assert (await outcome(lab, f"server: c[{i}] = accept(l)")).startswith(f"= {4 + i} from")


async def pending(lab: Lab, line: str) -> CallHandle:
    """Send a step that blocks; return once the lab reports it pending (bounded)."""
    seen = asyncio.Event()
    unsubscribe = lab.subscribe(lambda e: seen.set() if isinstance(e, CallPending) else None)
    try:
        step = parse_line(line, lab.scope())
        assert isinstance(step, Step)
        handle = lab.submit(step)
        await asyncio.wait_for(seen.wait(), WAIT)
    finally:
        unsubscribe()
    assert not handle.future.done()
    return handle


async def done(handle: CallHandle) -> str:
    from playground.script.format import format_outcome

    result = await asyncio.wait_for(handle.future, WAIT)
    text = format_outcome(result.outcome)
    return text.replace(f" ({result.outcome.errno_message})", "") if result.outcome.errno_message else text


# poll


async def test_poll_over_a_set_names_the_ready_ones_and_one_descriptor_still_works(lab: Lab) -> None:
    await three_connections(lab)
    assert await outcome(lab, "server: poll({c[0], c[1], c[2]}, POLLIN, 0)") == "= 0 {}"
    assert await outcome(lab, 'client: write(s[1], "x")') == "= 1"
    assert await outcome(lab, "server: poll({c[0], c[1], c[2]}, POLLIN, 0)") == "= 1 {c[1]: POLLIN}"
    assert await outcome(lab, "server: poll(c[*], POLLIN|POLLOUT, 0)") == (
        "= 3 {c[0]: POLLOUT, c[1]: POLLIN|POLLOUT, c[2]: POLLOUT}"
    )
    assert await outcome(lab, "server: poll(c[1], POLLIN, 0)") == "= 1 POLLIN"
    # A closed descriptor in the set: POLLNVAL, as the kernel answers.
    assert await outcome(lab, "server: close(c[2])") == "= 0"
    assert await outcome(lab, "server: poll({c[0], c[2]}, POLLIN, 0)") == "= 1 {c[2]: POLLNVAL}"


async def test_poll_over_a_set_blocks_until_one_is_ready_and_a_signal_interrupts_it(lab: Lab) -> None:
    await three_connections(lab)
    handle = await pending(lab, "server: poll(c[*], POLLIN, 10000)")
    await run_typed_line(lab, 'client: write(s[2], "z")')
    assert await done(handle) == "= 1 {c[2]: POLLIN}"
    await run_typed_line(lab, "server: signal(SIGUSR1, catch)")
    handle = await pending(lab, "server: poll({c[0], c[1]}, POLLIN, 10000)")
    await run_typed_line(lab, "kill server SIGUSR1")
    assert await done(handle) == "= -1 EINTR ! SIGUSR1"


# select


async def test_select_reports_read_and_write_sets_by_name(lab: Lab) -> None:
    await three_connections(lab)
    assert await outcome(lab, "server: select({c[0], c[1]}, {}, 0)") == "= 0 {}"
    await run_typed_line(lab, 'client: write(s[0], "x")')
    assert await outcome(lab, "server: select({c[0], c[1]}, {}, 0)") == "= 1 {c[0]: read}"
    # A descriptor in both sets counts twice, as select counts bits.
    assert await outcome(lab, "server: select({c[0]}, {c[0], c[2]}, 0)") == "= 3 {c[0]: read|write, c[2]: write}"


async def test_select_blocks_is_interrupted_and_refuses_a_closed_descriptor(lab: Lab) -> None:
    await three_connections(lab)
    handle = await pending(lab, "server: select(c[*], {}, 10000)")
    await run_typed_line(lab, 'client: write(s[1], "y")')
    assert await done(handle) == "= 1 {c[1]: read}"
    await run_typed_line(lab, "server: signal(SIGUSR1, catch)")
    handle = await pending(lab, "server: select({c[0]}, {}, -1)")
    await run_typed_line(lab, "kill server SIGUSR1")
    assert await done(handle) == "= -1 EINTR ! SIGUSR1"
    assert await outcome(lab, "server: close(c[0])") == "= 0"
    assert await outcome(lab, "server: select({c[0]}, {}, 0)") == "= -1 EBADF"


async def test_select_on_a_descriptor_past_fd_setsize_aborts_as_a_fortified_c_program(lab: Lab) -> None:
    await run_typed_line(lab, "spawn a")
    # FD_SET(1500, &set) overflows a 1024-bit fd_set: glibc's check aborts the process.
    assert await outcome(lab, "a: select({1500}, {}, 0)") == "= killed SIGABRT"


# epoll


async def test_epoll_reports_ready_descriptors_by_name(lab: Lab) -> None:
    await three_connections(lab)
    assert await outcome(lab, "server: ep = epoll_create1(0)") == "= 7"
    for i in range(3):
        assert await outcome(lab, f"server: epoll_ctl(ep, EPOLL_CTL_ADD, c[{i}], EPOLLIN|EPOLLRDHUP)") == "= 0"
    assert await outcome(lab, "server: epoll_wait(ep, 64, 0)") == "= 0 {}"
    await run_typed_line(lab, 'client: write(s[0], "x")')
    await run_typed_line(lab, "client: shutdown(s[2], SHUT_WR)")
    assert await outcome(lab, "server: epoll_wait(ep, 64, 0)") == "= 2 {c[0]: EPOLLIN, c[2]: EPOLLIN|EPOLLRDHUP}"
    # MAX bounds how many are returned at once.
    assert (await outcome(lab, "server: epoll_wait(ep, 1, 0)")).startswith("= 1 {c[")
    assert await outcome(lab, "server: epoll_ctl(ep, EPOLL_CTL_MOD, c[0], EPOLLOUT)") == "= 0"
    assert await outcome(lab, "server: epoll_ctl(ep, EPOLL_CTL_DEL, c[2])") == "= 0"
    assert await outcome(lab, "server: epoll_wait(ep, 64, 0)") == "= 1 {c[0]: EPOLLOUT}"


async def test_edge_triggered_reports_nothing_new_after_a_partial_read(lab: Lab) -> None:
    await three_connections(lab)
    await run_typed_line(lab, "server: ep = epoll_create1(EPOLL_CLOEXEC)")
    await run_typed_line(lab, "server: lt = epoll_create1(0)")
    assert await outcome(lab, "server: epoll_ctl(ep, EPOLL_CTL_ADD, c[0], EPOLLIN|EPOLLET)") == "= 0"
    assert await outcome(lab, "server: epoll_ctl(lt, EPOLL_CTL_ADD, c[0], EPOLLIN)") == "= 0"
    await run_typed_line(lab, 'client: write(s[0], "abcdef")')
    assert await outcome(lab, "server: epoll_wait(ep, 8, 0)") == "= 1 {c[0]: EPOLLIN}"
    assert await outcome(lab, "server: read(c[0], 2)") == '= 2 "ab"'
    assert await outcome(lab, "server: epoll_wait(ep, 8, 0)") == "= 0 {}"  # edge-triggered: no new edge
    assert await outcome(lab, "server: epoll_wait(lt, 8, 0)") == "= 1 {c[0]: EPOLLIN}"  # level: still readable
    await run_typed_line(lab, 'client: write(s[0], "g")')
    assert await outcome(lab, "server: epoll_wait(ep, 8, 0)") == "= 1 {c[0]: EPOLLIN}"  # new data: a new edge


async def test_oneshot_reports_once_until_rearmed(lab: Lab) -> None:
    await three_connections(lab)
    await run_typed_line(lab, "server: ep = epoll_create1(0)")
    assert await outcome(lab, "server: epoll_ctl(ep, EPOLL_CTL_ADD, c[1], EPOLLIN|EPOLLONESHOT)") == "= 0"
    await run_typed_line(lab, 'client: write(s[1], "x")')
    assert await outcome(lab, "server: epoll_wait(ep, 8, 0)") == "= 1 {c[1]: EPOLLIN}"
    assert await outcome(lab, "server: epoll_wait(ep, 8, 0)") == "= 0 {}"
    assert await outcome(lab, "server: epoll_ctl(ep, EPOLL_CTL_MOD, c[1], EPOLLIN|EPOLLONESHOT)") == "= 0"
    assert await outcome(lab, "server: epoll_wait(ep, 8, 0)") == "= 1 {c[1]: EPOLLIN}"


async def test_epoll_wait_blocks_and_a_signal_interrupts_it(lab: Lab) -> None:
    await three_connections(lab)
    await run_typed_line(lab, "server: ep = epoll_create1(0)")
    await run_typed_line(lab, "server: epoll_ctl(ep, EPOLL_CTL_ADD, c[2], EPOLLIN)")
    handle = await pending(lab, "server: epoll_wait(ep, 8, -1)")
    await run_typed_line(lab, 'client: write(s[2], "w")')
    assert await done(handle) == "= 1 {c[2]: EPOLLIN}"
    await run_typed_line(lab, "server: read(c[2], 10)")
    await run_typed_line(lab, "server: signal(SIGUSR1, catch)")
    handle = await pending(lab, "server: epoll_wait(ep, 8, 10000)")
    await run_typed_line(lab, "kill server SIGUSR1")
    assert await done(handle) == "= -1 EINTR ! SIGUSR1"


@pytest.mark.parametrize(
    ("line", "errno"),
    [
        ("server: epoll_ctl(ep, EPOLL_CTL_ADD, c[0], EPOLLIN)", "EEXIST"),  # added twice
        ("server: epoll_ctl(ep, EPOLL_CTL_MOD, c[1], EPOLLIN)", "ENOENT"),  # not in the set
        ("server: epoll_ctl(ep, EPOLL_CTL_DEL, c[1])", "ENOENT"),
        ("server: epoll_ctl(ep, EPOLL_CTL_ADD, ep, EPOLLIN)", "EINVAL"),  # epoll on itself
        ("server: epoll_wait(ep, 0, 0)", "EINVAL"),  # MAX must be positive
        ("server: epoll_wait(ep, -1, 0)", "EINVAL"),
        ("server: epoll_wait(c[0], 8, 0)", "EINVAL"),  # not an epoll descriptor
        ("server: epoll_ctl(c[0], EPOLL_CTL_ADD, c[1], EPOLLIN)", "EINVAL"),
        ("server: epoll_ctl(ep, EPOLL_CTL_ADD, 99, EPOLLIN)", "EBADF"),  # a closed number
        ("server: epoll_ctl(99, EPOLL_CTL_ADD, c[1], EPOLLIN)", "EBADF"),
        ("server: epoll_wait(99, 8, 0)", "EBADF"),
        ("server: epoll_ctl(ep, EPOLL_CTL_ADD, 2147483646, EPOLLIN)", "EBADF"),  # past any descriptor table
    ],
)
async def test_epoll_errors_are_the_kernels(lab: Lab, line: str, errno: str) -> None:
    await three_connections(lab)
    await run_typed_line(lab, "server: ep = epoll_create1(0)")
    assert await outcome(lab, "server: epoll_ctl(ep, EPOLL_CTL_ADD, c[0], EPOLLIN)") == "= 0"
    assert await outcome(lab, line) == f"= -1 {errno}"


async def test_epoll_instances_in_a_loop_give_eloop(lab: Lab) -> None:
    await run_typed_line(lab, "spawn a")
    await run_typed_line(lab, "a: e1 = epoll_create1(0)")
    await run_typed_line(lab, "a: e2 = epoll_create1(0)")
    assert await outcome(lab, "a: epoll_ctl(e1, EPOLL_CTL_ADD, e2, EPOLLIN)") == "= 0"
    assert await outcome(lab, "a: epoll_ctl(e2, EPOLL_CTL_ADD, e1, EPOLLIN)") == "= -1 ELOOP"


async def test_epoll_on_a_regular_socket_pair_reports_writable_and_hangup(lab: Lab) -> None:
    await three_connections(lab)
    await run_typed_line(lab, "server: ep = epoll_create1(0)")
    await run_typed_line(lab, "server: epoll_ctl(ep, EPOLL_CTL_ADD, c[0], EPOLLOUT)")
    assert await outcome(lab, "server: epoll_wait(ep, 8, 0)") == "= 1 {c[0]: EPOLLOUT}"
    await run_typed_line(lab, "client: setsockopt(s[0], SO_LINGER, {1, 0})")
    await run_typed_line(lab, "client: close(s[0])")  # an RST: error and hang-up
    text = await outcome(lab, "server: epoll_wait(ep, 8, 1000)")
    assert text.startswith("= 1 {c[0]: ") and "EPOLLERR" in text and "EPOLLHUP" in text


# data by name


async def test_data_by_name_echoes_what_was_read(lab: Lab) -> None:
    await three_connections(lab)
    await run_typed_line(lab, 'client: write(s[0], "hello")')
    assert await outcome(lab, "server: d = read(c[0], 100)") == '= 5 "hello"'
    assert await outcome(lab, "server: write(c[1], d)") == "= 5"
    assert await outcome(lab, "client: read(s[1], 100)") == '= 5 "hello"'
    assert await outcome(lab, "server: send(c[2], d, MSG_NOSIGNAL)") == "= 5"
    assert await outcome(lab, 'server: writev(c[2], d, "!", d)') == "= 11"
    assert await outcome(lab, "client: recv(s[2], 100)") == '= 16 "hellohello!hello"'
    # A read that fails keeps the bytes the name held (the C buffer is left as it was).
    assert await outcome(lab, "server: fcntl(c[0], O_NONBLOCK, 1)") == "= 0"
    assert await outcome(lab, "server: d = read(c[0], 100)") == "= -1 EAGAIN"
    assert await outcome(lab, "server: write(c[1], d)") == "= 5"


async def test_data_by_name_is_copied_to_a_forked_child_and_unknown_data_is_refused(lab: Lab) -> None:
    await three_connections(lab)
    await run_typed_line(lab, 'client: write(s[0], "ab")')
    await run_typed_line(lab, "server: d = recv(c[0], 10)")
    await run_typed_line(lab, "server: kid = fork()")
    assert await outcome(lab, "kid: write(c[1], d)") == "= 2"
    with pytest.raises(Exception) as caught:
        await run_typed_line(lab, "kid: write(c[1], nothing)")
    assert "expected data" in str(caught.value)


async def test_data_names_are_bounded_per_process(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resolve_many, "MAX_NAMED_DATA", 8)
    notices: list[str] = []
    lab.subscribe(lambda e: notices.append(e.message) if isinstance(e, Notice) else None)
    await three_connections(lab)
    await run_typed_line(lab, 'client: write(s[0], "abcdefghij")')
    assert await outcome(lab, "server: d[0] = read(c[0], 5)") == '= 5 "abcde"'
    assert await outcome(lab, "server: d[1] = read(c[0], 5)") == '= 5 "fghij"'  # 10 bytes held: over 8
    assert notices == ["server's d[1] is not kept: its data names would hold 10 bytes, more than the 8 a process may"]
    assert await outcome(lab, "server: write(c[1], d[0])") == "= 5"
    with pytest.raises(LabError, match=r"d\[1\] holds no data"):
        await run_typed_line(lab, "server: write(c[1], d[1])")
    # Naming the same data again replaces it: what it held is free again.
    await run_typed_line(lab, 'client: write(s[0], "xyz")')
    assert await outcome(lab, "server: d[0] = read(c[0], 5)") == '= 3 "xyz"'
    assert lab.processes["server"].data_bytes == 3
