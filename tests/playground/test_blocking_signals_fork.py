"""Blocking calls, signals, fork and process deaths, on the real kernel."""

from __future__ import annotations

import asyncio

from playground.events import CallPending, ProcessEnded, SignalCaught
from playground.executor import run_typed_line
from playground.lab import Lab
from playground.script.format import format_outcome
from tests.helpers import children_of, connected_pair, outcome, process_state, until_reset

WAIT = 5.0


async def pending(lab: Lab, line: str):
    """Submit a step that should block and wait (bounded) until the lab reports it pending."""
    seen = asyncio.Event()
    unsubscribe = lab.subscribe(lambda e: seen.set() if isinstance(e, CallPending) else None)
    try:
        node = lab.scope  # keep flake-free: parse via run_line's own parser
        from playground.script.parser import parse_line

        step = parse_line(line, node())
        handle = lab.submit(step)  # type: ignore[arg-type]
        await asyncio.wait_for(seen.wait(), WAIT)
    finally:
        unsubscribe()
    assert not handle.future.done()
    return handle


async def test_blocked_read_is_pending_while_others_go_on_then_completes(lab: Lab) -> None:
    await connected_pair(lab)
    handle = await pending(lab, "server: read(a, 100)")
    assert handle.pending
    # The same process makes other calls meanwhile, and so does the peer.
    assert await outcome(lab, "server: getsockopt(a, SO_RCVBUF)") != ""
    assert await outcome(lab, 'client: write(c, "late")') == "= 4"
    result = await asyncio.wait_for(handle.future, WAIT)
    assert format_outcome(result.outcome) == '= 4 "late"'


async def test_two_blocked_reads_in_one_process_each_wake_with_their_own_data(lab: Lab) -> None:
    await connected_pair(lab)
    await run_typed_line(lab, "client: c2 = socket(tcp)")
    await run_typed_line(lab, "client: connect(c2, server.l)")
    await run_typed_line(lab, "server: a2 = accept(l)")
    first = await pending(lab, "server: read(a, 100)")
    second = await pending(lab, "server: read(a2, 100)")
    await run_typed_line(lab, 'client: write(c2, "two")')
    result2 = await asyncio.wait_for(second.future, WAIT)
    assert result2.outcome.data == b"two" and not first.future.done()
    await run_typed_line(lab, 'client: write(c, "one")')
    result1 = await asyncio.wait_for(first.future, WAIT)
    assert result1.outcome.data == b"one"


async def test_blocked_read_wakes_with_eof_and_with_reset(lab: Lab) -> None:
    await connected_pair(lab)
    handle = await pending(lab, "server: read(a, 100)")
    await run_typed_line(lab, "client: close(c)")
    assert format_outcome((await asyncio.wait_for(handle.future, WAIT)).outcome) == "= 0"
    await run_typed_line(lab, "client: c2 = socket(tcp)")
    await run_typed_line(lab, "client: connect(c2, server.l)")
    await run_typed_line(lab, "server: a2 = accept(l)")
    handle = await pending(lab, "server: read(a2, 100)")
    await run_typed_line(lab, "client: setsockopt(c2, SO_LINGER, {1, 0})")
    await run_typed_line(lab, "client: close(c2)")
    result = await asyncio.wait_for(handle.future, WAIT)
    assert result.outcome.errno == "ECONNRESET"


async def test_caught_signal_is_reported_with_the_call_it_arrived_during(lab: Lab) -> None:
    await connected_pair(lab)
    await run_typed_line(lab, "server: signal(SIGUSR1, catch)")
    # glibc's signal() sets SA_RESTART: the read goes on after the handler.
    handle = await pending(lab, "server: read(a, 100)")
    await run_typed_line(lab, "kill server SIGUSR1")
    await run_typed_line(lab, 'client: write(c, "x")')
    result = await asyncio.wait_for(handle.future, WAIT)
    assert format_outcome(result.outcome) == '= 1 "x" ! SIGUSR1'
    # poll is never restarted: it fails with EINTR, as in C.
    handle = await pending(lab, "server: poll(a, POLLIN, 10000)")
    await run_typed_line(lab, "kill server SIGUSR1")
    result = await asyncio.wait_for(handle.future, WAIT)
    assert result.outcome.errno == "EINTR" and result.outcome.signals == ("SIGUSR1",)


async def test_signal_between_calls_is_reported_at_once(lab: Lab) -> None:
    await run_typed_line(lab, "spawn a")
    await run_typed_line(lab, "a: signal(SIGUSR2, catch)")
    caught: asyncio.Queue = asyncio.Queue()
    lab.subscribe(lambda e: caught.put_nowait(e) if isinstance(e, SignalCaught) else None)
    await run_typed_line(lab, "kill a SIGUSR2")
    event = await asyncio.wait_for(caught.get(), WAIT)
    assert event.process == "a" and event.signals == ("SIGUSR2",)


async def test_sigpipe_default_kills_and_the_lab_goes_on(lab: Lab) -> None:
    await connected_pair(lab)
    await run_typed_line(lab, "client: close(c)")
    await run_typed_line(lab, 'server: write(a, "one")')
    await until_reset(lab, "server", "a")
    assert await outcome(lab, 'server: write(a, "two")') == "= killed SIGPIPE"
    assert lab.processes["server"].state == "killed SIGPIPE"
    assert await outcome(lab, "client: c2 = socket(tcp)") == "= 3"  # c was closed: 3 is free again


async def test_sigpipe_ignored_gives_epipe_without_signal(lab: Lab) -> None:
    await connected_pair(lab)
    await run_typed_line(lab, "server: signal(SIGPIPE, SIG_IGN)")
    await run_typed_line(lab, "client: close(c)")
    await run_typed_line(lab, 'server: write(a, "one")')
    await until_reset(lab, "server", "a")
    assert await outcome(lab, 'server: write(a, "two")') == "= -1 EPIPE"


async def test_kill_9_is_reported_and_others_go_on(lab: Lab) -> None:
    await connected_pair(lab)
    ended: list[ProcessEnded] = []
    lab.subscribe(lambda e: ended.append(e) if isinstance(e, ProcessEnded) else None)
    handle = await pending(lab, "server: read(a, 100)")
    await run_typed_line(lab, "kill server SIGKILL")
    result = await asyncio.wait_for(handle.future, WAIT)
    assert format_outcome(result.outcome) == "= killed SIGKILL"
    assert [str(e.death) for e in ended] == ["killed SIGKILL"]
    # The kernel closed server's sockets: client's read sees the end.
    assert await outcome(lab, "client: read(c, 10)") == "= 0"


async def test_exit_reports_status(lab: Lab) -> None:
    await run_typed_line(lab, "spawn a")
    assert await outcome(lab, "a: exit(3)") == "= exited 3"
    assert lab.processes["a"].state == "exited 3"


async def test_a_new_process_has_no_children(lab: Lab) -> None:
    await run_typed_line(lab, "spawn a")
    assert await outcome(lab, "a: waitpid(-1, WNOHANG)") == "= -1 ECHILD"
    assert children_of(lab.processes["a"].pid) == []


async def test_fork_child_holds_parent_sockets_and_is_a_zombie_until_reaped(lab: Lab) -> None:
    await connected_pair(lab)
    result = await run_typed_line(lab, "server: kid = fork()")
    assert result is not None and result.outcome.value > 0
    kid = lab.processes["kid"]
    assert kid.pid == result.outcome.value and kid.parent is lab.processes["server"]
    assert await outcome(lab, 'client: write(c, "hi")') == "= 2"
    assert await outcome(lab, "kid: read(a, 10)") == '= 2 "hi"'
    assert await outcome(lab, "kid: close(l)") == "= 0"
    assert await outcome(lab, "server: getsockname(l)") != "= -1 EBADF"  # the parent's copy is open
    assert await outcome(lab, "kid: exit(7)") == "= exited 7"
    assert process_state(kid.pid) == "Z" and kid.state == "zombie"
    text = await outcome(lab, "server: waitpid(kid, 0)")
    assert text == f"= {kid.pid} exited 7"
    assert process_state(kid.pid) is None and not kid.zombie
    assert await outcome(lab, "server: waitpid(-1, WNOHANG)") == "= -1 ECHILD"


async def test_close_in_parent_sends_nothing_while_child_holds_the_socket(lab: Lab) -> None:
    await connected_pair(lab)
    await run_typed_line(lab, "server: kid = fork()")
    await run_typed_line(lab, "server: close(a)")
    assert await outcome(lab, "client: poll(c, POLLIN, 50)") == "= 0"  # no FIN: another reference is open
    await run_typed_line(lab, "kid: exit(0)")
    assert await outcome(lab, "client: poll(c, POLLIN, 2000)") == "= 1 POLLIN"
    assert await outcome(lab, "client: read(c, 10)") == "= 0"


async def test_sigchld_ignored_leaves_no_zombie(lab: Lab) -> None:
    await run_typed_line(lab, "spawn a")
    await run_typed_line(lab, "a: signal(SIGCHLD, SIG_IGN)")
    await run_typed_line(lab, "a: kid = fork()")
    await run_typed_line(lab, "kid: exit(0)")
    assert process_state(lab.processes["kid"].pid) is None
    assert await outcome(lab, "a: waitpid(-1, 0)") == "= -1 ECHILD"


async def test_sigchld_caught_when_child_exits(lab: Lab) -> None:
    await run_typed_line(lab, "spawn a")
    await run_typed_line(lab, "a: signal(SIGCHLD, catch)")
    caught: asyncio.Queue = asyncio.Queue()
    lab.subscribe(lambda e: caught.put_nowait(e) if isinstance(e, SignalCaught) else None)
    await run_typed_line(lab, "a: kid = fork()")
    await run_typed_line(lab, "kid: exit(0)")
    event = await asyncio.wait_for(caught.get(), WAIT)
    assert event.signals == ("SIGCHLD",)
    assert (await outcome(lab, "a: waitpid(-1, WNOHANG)")).endswith("exited 0")


async def test_waking_the_next_process_changes_no_outcome(lab: Lab) -> None:
    """`wake` (the runner's hint that a process's call comes next) sends no reply and disturbs no call."""
    await connected_pair(lab)
    blocked = await pending(lab, "server: read(a, 100)")
    from playground.script.parser import parse_line

    write = parse_line('client: write(c, "hi")', lab.scope())
    # Wake the server (one of its threads is blocked in read), then a process that does not exist,
    # then the caller itself.
    for wake in ("server", "nobody", "client"):
        handle = lab.submit(write, spin=True, wake=wake)  # type: ignore[arg-type]
        result = await asyncio.wait_for(handle.future, WAIT)
        assert format_outcome(result.outcome) == "= 2"
        if wake == "server":
            first = await asyncio.wait_for(blocked.future, WAIT)
            assert format_outcome(first.outcome) == '= 2 "hi"'
    # The woken server answers its next calls, in order, each with its own outcome.
    assert await outcome(lab, "server: read(a, 100)") == '= 4 "hihi"'
    assert await outcome(lab, "server: getsockopt(a, TCP_NODELAY)") == "= 0"


async def test_a_slow_call_whose_line_states_its_outcome_is_not_taken_by_a_later_completion() -> None:
    # The poll takes 50 ms, so the lab marks it pending (after 10 ms) while its own line waits for it;
    # the `...` line after the read must get the read's outcome, not the poll's (lesson 16 under load:
    # a fork slower than 10 ms gave its pid to the completion of the accept after it).
    from playground.runner import Runner
    from playground.script.parser import parse_script
    from tests.helpers import PAIR_SCRIPT

    text = PAIR_SCRIPT + (
        'server: poll(l, POLLIN, 50)              = 0\nserver: read(a, 10) ...\nclient: write(c, "x") = 1\n'
        'server: ... = 1 "x"\n'
    )
    lab = await Lab.start()
    try:
        report = await Runner(lab).run(parse_script(text, "t.sockplay"))
    finally:
        await lab.shutdown()
    assert [(s.line.number, s.divergence or s.error) for s in report.divergences] == []
