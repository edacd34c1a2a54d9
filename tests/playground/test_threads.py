"""Thread actors (`thread NAME in PROC`): real pthreads in a lab process, on the real kernel."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from playground.cli.replay import ReplayCheck, load_recording
from playground.errors import LabError
from playground.events import CallPending, DirectiveDone, SignalCaught
from playground.executor import run_typed_line
from playground.lab import CallHandle, Lab, Limits
from playground.recording import Recorder
from playground.runner import run_script
from playground.script.errors import ScriptError
from playground.script.format import format_outcome
from playground.script.parser import parse_line, parse_script
from playground.session.lab_session import LabSession
from playground.session.lines import CompletionContext, complete
from tests.helpers import PAIR_SCRIPT, connected_pair, outcome

WAIT = 5.0


def tasks(pid: int) -> dict[int, str]:
    """The process's threads as the kernel lists them: TID -> name (comm)."""
    base = Path(f"/proc/{pid}/task")
    found = {}
    for tid in os.listdir(base):
        try:
            found[int(tid)] = (base / tid / "comm").read_text().strip()
        except FileNotFoundError:  # it ended between the listing and the read: gone
            pass
    return found


async def pending(lab: Lab, line: str) -> CallHandle:
    """Send a step that blocks, and wait (bounded) until the lab reports it pending."""
    seen = asyncio.Event()
    unsubscribe = lab.subscribe(lambda e: seen.set() if isinstance(e, CallPending) else None)
    try:
        handle = lab.submit(parse_line(line, lab.scope()))  # type: ignore[arg-type]
        await asyncio.wait_for(seen.wait(), WAIT)
    finally:
        unsubscribe()
    assert not handle.future.done()
    return handle


async def test_a_thread_is_a_real_thread_of_its_process_with_its_own_tid(lab: Lab) -> None:
    await run_typed_line(lab, "spawn server")
    before = tasks(lab.processes["server"].pid)
    await run_typed_line(lab, "thread worker in server")
    thread = lab.threads["worker"]
    after = tasks(thread.pid)
    assert thread.pid == lab.processes["server"].pid
    assert thread.tid in set(after) - set(before) and thread.tid != thread.pid
    assert after[thread.tid] == "worker"  # named as the script names it (ps -L shows it)


async def test_a_threads_blocking_read_blocks_only_that_thread_while_the_process_writes(lab: Lab) -> None:
    await connected_pair(lab)
    await run_typed_line(lab, "thread worker in server")
    read = await pending(lab, "worker: read(a, 100)")
    # The process goes on: it writes on the very socket its thread is blocked reading.
    assert await outcome(lab, 'server: write(a, "from the process")') == "= 16"
    assert await outcome(lab, "client: read(c, 100)") == '= 16 "from the process"'
    assert not read.future.done()
    assert await outcome(lab, 'client: write(c, "x")') == "= 1"
    result = await asyncio.wait_for(read.future, WAIT)
    assert format_outcome(result.outcome) == '= 1 "x"'
    assert read in lab.threads["worker"].blocked  # it was the thread's blocked call, not the process's
    assert read not in lab.processes["server"].blocked


async def test_names_are_shared_both_ways(lab: Lab) -> None:
    await connected_pair(lab)
    await run_typed_line(lab, "thread worker in server")
    assert await outcome(lab, "worker: b = socket(tcp)") == "= 5"
    assert await outcome(lab, "server: getsockname(b)") == "= 0.0.0.0:0"  # the process uses the thread's name
    assert await outcome(lab, "server: d = dup(a)") == "= 6"
    assert await outcome(lab, "worker: close(d)") == "= 0"  # and the thread the process's
    assert await outcome(lab, "server: close(d)") == "= -1 EBADF"
    assert lab.threads["worker"].names is lab.processes["server"].names


async def test_a_process_directed_signal_interrupts_exactly_one_of_two_blocked_threads(lab: Lab) -> None:
    for line in ("spawn server", "spawn client", "server: signal(SIGUSR1, catch)"):
        await run_typed_line(lab, line)
    for var in ("u", "v"):
        await run_typed_line(lab, f"server: {var} = socket(udp)")
        await run_typed_line(lab, f"server: bind({var}, 127.0.0.1:0)")
    await run_typed_line(lab, "client: s = socket(udp)")
    await run_typed_line(lab, "thread t1 in server")
    await run_typed_line(lab, "thread t2 in server")
    # poll is never restarted after a handler (SA_RESTART or not): the thread given the signal sees EINTR.
    polls = {
        "u": await pending(lab, "t1: poll(u, POLLIN, 20000)"),
        "v": await pending(lab, "t2: poll(v, POLLIN, 20000)"),
    }
    await run_typed_line(lab, "kill server SIGUSR1")
    done, _ = await asyncio.wait([h.future for h in polls.values()], timeout=WAIT, return_when="FIRST_COMPLETED")
    assert len(done) == 1
    interrupted = next(var for var, h in polls.items() if h.future.done())
    other = "v" if interrupted == "u" else "u"
    first = polls[interrupted].future.result().outcome
    assert (first.errno, first.signals) == ("EINTR", ("SIGUSR1",))
    # The other thread still waits: data for its socket is what ends its poll, without a signal.
    assert not polls[other].future.done()
    await run_typed_line(lab, f'client: sendto(s, "x", server.{other})')
    second = (await asyncio.wait_for(polls[other].future, WAIT)).outcome
    assert (second.value, second.revents, second.signals) == (1, ("POLLIN",), ())


async def test_kill_on_a_thread_interrupts_that_thread_only(lab: Lab) -> None:
    for line in (
        "spawn server",
        "server: signal(SIGUSR1, catch)",
        "server: u = socket(udp)",
        "server: v = socket(udp)",
    ):
        await run_typed_line(lab, line)
    await run_typed_line(lab, "thread t1 in server")
    await run_typed_line(lab, "thread t2 in server")
    first = await pending(lab, "t1: poll(u, POLLIN, 20000)")
    second = await pending(lab, "t2: poll(v, POLLIN, 20000)")
    await run_typed_line(lab, "kill t2 SIGUSR1")
    result = (await asyncio.wait_for(second.future, WAIT)).outcome
    assert (result.errno, result.signals) == ("EINTR", ("SIGUSR1",))
    assert not first.future.done()
    await run_typed_line(lab, "kill t1 SIGUSR1")
    assert (await asyncio.wait_for(first.future, WAIT)).outcome.errno == "EINTR"


async def test_a_fatal_signal_to_a_thread_ends_the_whole_process(lab: Lab) -> None:
    await run_typed_line(lab, "spawn server")
    await run_typed_line(lab, "thread worker in server")
    await run_typed_line(lab, "kill worker SIGTERM")
    assert str(lab.processes["server"].death) == "killed SIGTERM"


async def test_fork_from_a_thread_copies_only_that_thread(lab: Lab) -> None:
    await connected_pair(lab)
    await run_typed_line(lab, "spawn other")
    await run_typed_line(lab, "other: x = socket(tcp)")
    baseline = len(tasks(lab.processes["other"].pid))  # a lab process's own machinery, with no thread actor
    await run_typed_line(lab, "thread worker in server")
    await run_typed_line(lab, "thread idle in server")
    assert await outcome(lab, "worker: kid = fork()") != ""
    assert await outcome(lab, "kid: close(a)") == "= 0"  # the child serves: its machinery is up
    kid = lab.processes["kid"]
    assert kid.parent is lab.processes["server"]  # the process's child, whichever thread forked
    # The forking thread alone: it and the threads the child's machinery started since carry its name.
    assert set(tasks(kid.pid).values()) == {"worker"} and "idle" in tasks(kid.parent.pid).values()
    assert len(tasks(kid.pid)) <= baseline + 1  # (the machinery's own: a reader, a monitor, one more a moment)
    assert not [t for t in lab.threads.values() if t.thread_of is kid]  # a process with one actor
    assert await outcome(lab, "server: waitpid(kid, WNOHANG)") == "= 0"  # the process waits for it


async def test_exit_in_a_thread_ends_the_whole_process(lab: Lab) -> None:
    await run_typed_line(lab, "spawn server")
    await run_typed_line(lab, "thread worker in server")
    assert await outcome(lab, "worker: exit(3)") == "= exited 3"
    assert str(lab.processes["server"].death) == "exited 3"


async def test_a_thread_in_a_dead_process_is_reported_clearly(lab: Lab) -> None:
    await connected_pair(lab)
    await run_typed_line(lab, "thread worker in server")
    read = await pending(lab, "worker: read(a, 100)")
    await run_typed_line(lab, "kill server SIGKILL")
    assert format_outcome((await asyncio.wait_for(read.future, WAIT)).outcome) == "= killed SIGKILL"
    with pytest.raises(LabError, match="worker is a thread of server, which is killed SIGKILL: it makes no more calls"):
        await run_typed_line(lab, "worker: b = socket(tcp)")
    with pytest.raises(LabError, match="server is killed SIGKILL: it cannot start a thread"):
        await run_typed_line(lab, "thread late in server")
    with pytest.raises(LabError, match="there is nothing to signal"):
        await run_typed_line(lab, "kill worker SIGUSR1")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("thread worker in nope", "5:18: no process named 'nope'"),
        ("thread server in server", "5:8: a process named 'server' already exists"),
        ("thread t in server\nthread t in server", "6:8: a thread named 't' already exists"),
        ("thread worker server", "5:15: expected 'in' and the process"),
        ("thread worker in", "5:17: expected the process the thread belongs to"),
        ("thread Worker in server", "5:8: 'Worker' is not a thread name"),
        ("thread worker in server now", "5:25: unexpected 'now'"),
        ("repeat 2\nthread worker in server\nend", "6:1: a repeated block cannot start threads"),
        ("thread t in server\nt: b = socket(tcp)\nclient: close(b)", "7:15: client has no socket named 'b'"),
        (
            "thread t in server\nt: read(l, 1) ...\nt: close(l)",
            "7:1: t is a thread blocked in a call: a thread makes one",
        ),
    ],
)
def test_bad_thread_lines_are_clear_errors(line: str, message: str) -> None:
    text = "sockplay 1\nspawn server\nspawn client\nserver: l = socket(tcp)\n" + line + "\n"
    with pytest.raises(ScriptError) as caught:
        parse_script(text, "t.sockplay")
    assert message in str(caught.value)


async def test_a_script_with_threads_runs_and_its_output_runs_again() -> None:
    text = (
        PAIR_SCRIPT
        + """thread worker in server
thread helper in worker
worker: read(a, 100) ...
helper: b = socket(tcp) = 5
server: close(b) = 0
client: write(c, "hi") = 2
worker: ... = 2 "hi"
"""
    )
    report = await run_script(parse_script(text, "threads.sockplay"))
    assert report.exit_code == 0, [(s.line.number, s.divergence or s.error) for s in report.divergences]
    texts = [step.text for step in report.steps]
    assert "thread worker in server" in texts
    assert "thread helper in server" in texts  # a thread started by a thread belongs to the process
    rerun = await run_script(parse_script("sockplay 1\n" + "\n".join(texts) + "\n", "again.sockplay"))
    assert rerun.exit_code == 0


async def test_thread_lines_are_reported_for_recordings(lab: Lab) -> None:
    seen: list[str] = []
    lab.subscribe(lambda e: seen.append(e.text) if isinstance(e, DirectiveDone) else None)
    await run_typed_line(lab, "spawn server")
    await run_typed_line(lab, "thread worker in server")
    await run_typed_line(lab, "kill worker SIGUSR2")
    assert seen == ["thread worker in server", "kill worker SIGUSR2"]


async def test_a_signal_sent_to_a_thread_between_its_calls_is_caught_at_once(lab: Lab) -> None:
    caught = asyncio.Event()
    lab.subscribe(lambda e: caught.set() if isinstance(e, SignalCaught) and e.signals == ("SIGUSR1",) else None)
    await run_typed_line(lab, "spawn server")
    await run_typed_line(lab, "server: signal(SIGUSR1, catch)")
    await run_typed_line(lab, "thread worker in server")
    await run_typed_line(lab, "kill worker SIGUSR1")
    await asyncio.wait_for(caught.wait(), WAIT)
    assert lab.processes["server"].alive


async def test_a_recorded_session_keeps_its_thread_lines_and_replays(tmp_path: Path) -> None:
    path = tmp_path / "threads.sockplay"
    lab = await Lab.start()
    recorder = Recorder(lab, path)
    try:
        await connected_pair(lab)
        await run_typed_line(lab, "thread worker in server")
        read = await pending(lab, "worker: read(a, 100)")
        await run_typed_line(lab, 'client: write(c, "hi")')
        await asyncio.wait_for(read.future, WAIT)
        await run_typed_line(lab, "worker: b = socket(tcp)")
        await run_typed_line(lab, "server: close(b)")
    finally:
        recorder.close()
        await lab.shutdown()
    text = path.read_text()
    for line in ("thread worker in server", "worker: read(a, 100) ...", 'worker: ... = 2 "hi"', "server: close(b) = 0"):
        assert line in text, line
    assert await ReplayCheck(load_recording(str(path)), str(path), speed=0.0).run() == 0


async def test_a_signal_sent_to_a_thread_is_reported_with_that_threads_call(lab: Lab) -> None:
    await connected_pair(lab)
    await run_typed_line(lab, "client: d = socket(tcp)")
    await run_typed_line(lab, "client: connect(d, server.l)")
    await run_typed_line(lab, "server: b = accept(l)")
    await run_typed_line(lab, "server: signal(SIGUSR1, catch)")  # SA_RESTART: a read goes on after the handler
    await run_typed_line(lab, "thread t1 in server")
    await run_typed_line(lab, "thread t2 in server")
    first = await pending(lab, "t1: read(a, 100)")
    second = await pending(lab, "t2: read(b, 100)")
    await run_typed_line(lab, "kill t2 SIGUSR1")
    await run_typed_line(lab, 'client: write(c, "one")')  # the older read returns first
    assert format_outcome((await asyncio.wait_for(first.future, WAIT)).outcome) == '= 3 "one"'
    await run_typed_line(lab, 'client: write(d, "two")')
    assert format_outcome((await asyncio.wait_for(second.future, WAIT)).outcome) == '= 3 "two" ! SIGUSR1'


def test_the_command_line_completes_thread_lines_and_threads_as_actors() -> None:
    ctx = CompletionContext(processes={"server": {"a"}, "worker": {"a"}})
    assert "thread " in complete("thr", None, ctx).candidates
    assert complete("thread w ", None, ctx).candidates == ["in "]
    assert complete("thread w in s", None, ctx).candidates == ["server"]
    assert complete("wor", None, ctx).candidates == ["worker: "]


async def test_a_sessions_completions_know_its_threads() -> None:
    session = LabSession()
    await session.start()
    try:
        await session.run_line("spawn server")
        run = await session.run_line("server: s = socket(tcp)")
        assert run.handle is not None
        await asyncio.wait_for(run.handle.future, WAIT)
        await session.run_line("thread worker in server")
        ctx = session.completion_context(None)
        assert ctx.processes["worker"] == {"s"}
        assert session.fresh_process_name("worker") == "worker2"  # a thread's name is taken too
        assert complete("kill w", None, ctx).candidates == ["worker"]
    finally:
        await session.shutdown()


async def test_a_thread_makes_one_call_at_a_time(lab: Lab) -> None:
    await run_typed_line(lab, "spawn server")
    await run_typed_line(lab, "server: u = socket(udp)")
    await run_typed_line(lab, "thread worker in server")
    poll = await pending(lab, "worker: poll(u, POLLIN, 20000)")
    with pytest.raises(
        LabError, match=r"worker is still in poll\(u, POLLIN, 20000\): a thread makes one call at a time"
    ):
        await run_typed_line(lab, "worker: v = socket(udp)")
    assert await outcome(lab, "server: v = socket(udp)") == "= 4"  # the process's own actor goes on
    await run_typed_line(lab, "kill worker SIGKILL")
    assert format_outcome((await asyncio.wait_for(poll.future, WAIT)).outcome) == "= killed SIGKILL"


async def test_a_threads_sockets_are_its_processs_on_the_wire_and_in_state_lines() -> None:
    text = (
        PAIR_SCRIPT.replace("server: a = accept(l)\n", "thread w in server\nw: a = accept(l)\n")
        + """state w.a ESTABLISHED
state server.a ESTABLISHED
w: close(a) = 0
~ w.a > client.c FIN
client: close(c) = 0
~ client.c > server.a FIN
"""
    )
    report = await run_script(parse_script(text, "wire.sockplay"))
    assert report.exit_code == 0, [(s.line.number, s.divergence or s.error) for s in report.divergences]
    seen = [note for step in report.steps for note in step.notes if note.startswith("saw ")]
    assert not seen or all("w." not in note for note in seen)  # packets name the process's socket: server.a


async def test_threads_count_against_the_labs_limit_of_threads() -> None:
    lab = await Lab.start(limits=Limits(pending=2))
    try:
        await run_typed_line(lab, "spawn server")
        await run_typed_line(lab, "thread t1 in server")
        await run_typed_line(lab, "thread t2 in server")
        with pytest.raises(LabError, match=r"limit of 2 threads .* --max-pending"):
            await run_typed_line(lab, "thread t3 in server")
        assert "t3" not in lab.threads
    finally:
        await lab.shutdown()


async def test_pthread_exit_ends_the_thread_alone(lab: Lab) -> None:
    await run_typed_line(lab, "spawn server")
    await run_typed_line(lab, "server: u = socket(udp)")
    await run_typed_line(lab, "thread worker in server")
    thread = lab.threads["worker"]
    assert thread.tid is not None and thread.tid in tasks(thread.pid)
    assert await outcome(lab, "worker: pthread_exit(3)") == "= exited 3"
    deadline = asyncio.get_running_loop().time() + WAIT
    while thread.tid in tasks(thread.pid):  # the kernel's task goes once the thread has returned its result
        assert asyncio.get_running_loop().time() < deadline, "the thread's task is still there"
        await asyncio.sleep(0.01)
    assert lab.processes["server"].alive and await outcome(lab, "server: close(u)") == "= 0"
    with pytest.raises(LabError, match=r"worker is a thread that has ended \(pthread_exit: exited 3\)"):
        await run_typed_line(lab, "worker: v = socket(udp)")
    with pytest.raises(LabError, match="server is a process: pthread_exit ends a thread actor"):
        await run_typed_line(lab, "server: pthread_exit(0)")
