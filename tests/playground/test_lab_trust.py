"""A lab process runs untrusted scripts: its machinery is out of the script's reach, and
sockplay believes nothing a lab process says that it can check (issue 11, items 1, 9, 10)."""

from __future__ import annotations

import array
import asyncio
import contextlib
import ctypes
import os
import resource
import socket
import subprocess
from collections.abc import Iterator

import pytest

from playground import protocol
from playground.events import CallStarted, Event, Notice, ProcessEnded
from playground.executor import run_typed_line
from playground.lab import Lab, LabError, Limits
from tests.helpers import children_of, outcome

_SYS_PIDFD_GETFD = 438  # the same number on every architecture


def machinery_fds(pid: int) -> list[int]:
    """A fresh lab process's descriptors above stdio: all of them its machinery."""
    return sorted(int(fd) for fd in os.listdir(f"/proc/{pid}/fd") if int(fd) > 2)


def grab_descriptor(pid: int, fd: int) -> socket.socket:
    """A copy of another process's descriptor (pidfd_getfd, as root): the test plays the attacker."""
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = os.pidfd_open(pid)
    try:
        got = libc.syscall(_SYS_PIDFD_GETFD, pidfd, fd, 0)
        if got < 0:
            pytest.skip(f"pidfd_getfd: {os.strerror(ctypes.get_errno())}")
    finally:
        os.close(pidfd)
    return socket.socket(fileno=got)


@contextlib.contextmanager
def open_file_limit(soft: int) -> Iterator[None]:
    """This process's soft RLIMIT_NOFILE lowered for a while (lab processes started meanwhile inherit it)."""
    old = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, old[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, old)


async def wait_for_event(events: list[Event], kind: type, timeout: float = 5.0) -> Event:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        for event in events:
            if isinstance(event, kind):
                return event
        await asyncio.sleep(0.005)
    raise AssertionError(f"no {kind.__name__} within {timeout} s")


async def test_the_machinery_descriptors_do_not_exist_for_a_script(lab: Lab) -> None:
    await run_typed_line(lab, "spawn a")
    pid = lab.processes["a"].pid
    fds = machinery_fds(pid)
    assert len(fds) >= 5  # the control channel, two pipes, the spare channel for a fork
    for fd in fds:
        assert await outcome(lab, f'a: write({fd}, "\\x00\\x00\\x00\\x05")') == "= -1 EBADF"
        assert await outcome(lab, f"a: close({fd})") == "= -1 EBADF"
        assert await outcome(lab, f"a: fcntl({fd}, O_NONBLOCK)") == "= -1 EBADF"
        assert await outcome(lab, f"a: dup({fd})") == "= -1 EBADF"
        assert await outcome(lab, f"a: read({fd}, 10)") == "= -1 EBADF"
        assert await outcome(lab, f"a: poll({fd}, POLLIN, 0)") == "= 1 POLLNVAL"
    # The process lives, its machinery untouched, and its first socket gets 3 as in C.
    assert lab.processes["a"].alive
    assert machinery_fds(pid) == fds
    assert await outcome(lab, "a: s = socket(tcp)") == "= 3"


async def test_the_machinery_sits_above_the_shells_limit_which_stays_as_it_was(lab: Lab) -> None:
    if resource.getrlimit(resource.RLIMIT_NOFILE)[1] < 1024 + 32:
        pytest.skip("the hard open-file limit leaves no room above 1024")
    with open_file_limit(1024):
        await run_typed_line(lab, "spawn a")
    pid = lab.processes["a"].pid
    limits = [line for line in open(f"/proc/{pid}/limits") if line.startswith("Max open files")]
    assert limits[0].split()[3] == "1024"  # the soft limit the shell gave, not raised
    assert all(fd >= 1024 for fd in machinery_fds(pid))


async def test_descriptor_numbers_beyond_32_bits_are_not_cut(lab: Lab) -> None:
    await run_typed_line(lab, "spawn a")
    assert await outcome(lab, "a: s = socket(tcp)") == "= 3"
    assert await outcome(lab, "a: close(4294967299)") == "= -1 EBADF"  # 2**32 + 3
    assert await outcome(lab, "a: getsockopt(s, SO_REUSEADDR)") == "= 0"  # fd 3 is still open


async def test_a_forged_fork_result_cannot_make_sockplay_adopt_or_kill_another_process(lab: Lab) -> None:
    await run_typed_line(lab, "spawn a")
    proc = lab.processes["a"]
    ctl_fd = machinery_fds(proc.pid)[0]
    events: list[Event] = []
    lab.subscribe(events.append)
    await run_typed_line(lab, "a: s = socket(tcp)")
    next_id = [e.call_id for e in events if isinstance(e, CallStarted)][-1] + 1
    ours_before = set(children_of(os.getpid()))
    victim = subprocess.Popen(["sleep", "60"])
    try:
        ctl = grab_descriptor(proc.pid, ctl_fd)
        spare_a, spare_b = socket.socketpair()
        forged = protocol.encode((next_id, protocol.DONE, {"ret": victim.pid, "start": 0, "dur": 0}))
        ctl.sendmsg([forged], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [spare_a.fileno()]))])
        for sock in (ctl, spare_a, spare_b):
            sock.close()
        result = await run_typed_line(lab, "a: kid = fork()")
        assert result is not None and result.outcome.death is not None  # a lied: it is killed
        assert "kid" not in lab.processes
        notices = [e.message for e in events if isinstance(e, Notice)]
        assert any(f"pid {victim.pid}, which is not its child" in n for n in notices), notices
        await lab.shutdown()
        assert victim.poll() is None  # the unrelated process lives on
    finally:
        victim.kill()
        victim.wait()
    # The fork a really made (untracked: its answer came after the lie) is ended and reaped too.
    assert set(children_of(os.getpid())) <= ours_before


@pytest.mark.parametrize(
    ("garbage", "words"),
    [
        (b"\xff\xff\xff\xff", "does not decode"),
        (b"\x00\x00\x00\x03\xff\xff\xff", "does not decode"),
        (protocol.encode((1, 2)), "wrong shape"),
        (protocol.encode((0, "hello", "no pid")), "a hello without its pid"),
        (protocol.encode((0, "shout", None)), "unknown kind"),
    ],
    ids=["huge-length", "bad-marshal", "wrong-shape", "hello-without-pid", "unknown-kind"],
)
async def test_garbage_from_a_lab_process_is_reported_and_the_process_killed(
    lab: Lab, garbage: bytes, words: str
) -> None:
    await run_typed_line(lab, "spawn a")
    await run_typed_line(lab, "spawn b")
    events: list[Event] = []
    lab.subscribe(events.append)
    pid = lab.processes["a"].pid
    ctl = grab_descriptor(pid, machinery_fds(pid)[0])
    ctl.sendall(garbage)
    ctl.close()
    ended = await wait_for_event(events, ProcessEnded)
    assert ended.process == "a"  # type: ignore[attr-defined]
    notices = [e for e in events if isinstance(e, Notice)]
    assert notices and words in notices[0].message and notices[0].level == "error"
    assert "killed" in notices[0].message
    assert await outcome(lab, "b: s = socket(tcp)") == "= 3"  # the lab goes on


async def test_fork_after_emfile_gives_a_tracked_child(lab: Lab) -> None:
    with open_file_limit(64):
        await run_typed_line(lab, "spawn a")
    for i in range(100):
        if await outcome(lab, f"a: s{i} = socket(tcp)") == "= -1 EMFILE":
            break
    else:
        raise AssertionError("64 descriptors never ran out")
    result = await run_typed_line(lab, "a: kid = fork()")
    assert result is not None and isinstance(result.outcome.value, int) and result.outcome.value > 0
    kid = lab.processes["kid"]
    assert kid.pid == result.outcome.value and kid.alive
    assert await outcome(lab, "kid: close(s0)") == "= 0"  # the child answers on its own channel


async def test_processes_are_capped() -> None:
    lab = await Lab.start(limits=Limits(processes=2))
    try:
        await run_typed_line(lab, "spawn a")
        await run_typed_line(lab, "spawn b")
        with pytest.raises(LabError, match="--max-processes"):
            await run_typed_line(lab, "spawn c")
        with pytest.raises(LabError, match="--max-processes"):
            await run_typed_line(lab, "a: kid = fork()")
        assert sorted(lab.processes) == ["a", "b"]
    finally:
        await lab.shutdown()


async def test_blocked_calls_are_capped() -> None:
    lab = await Lab.start(limits=Limits(pending=2))
    try:
        await run_typed_line(lab, "spawn a")
        await run_typed_line(lab, "a: u = socket(udp)")
        await run_typed_line(lab, "a: bind(u, 127.0.0.1:0)")
        await run_typed_line(lab, "a: read(u, 10) ...")
        await run_typed_line(lab, "a: read(u, 10) ...")
        with pytest.raises(LabError, match="--max-pending"):
            await run_typed_line(lab, "a: read(u, 10) ...")
    finally:
        await lab.shutdown()


async def test_sleeps_are_capped() -> None:
    lab = await Lab.start(limits=Limits(sleep=5))
    try:
        lab.check_sleep(5)
        with pytest.raises(LabError, match="--max-sleep"):
            lab.check_sleep(3600)
    finally:
        await lab.shutdown()


async def test_sockplay_out_of_descriptors_says_so(lab: Lab) -> None:
    in_use = len(os.listdir("/proc/self/fd"))
    with open_file_limit(in_use), pytest.raises(LabError, match="run out of file descriptors"):
        await run_typed_line(lab, "spawn a")
    assert "a" not in lab.processes
    await run_typed_line(lab, "spawn b")  # and goes on once there is room


async def test_sockplay_out_of_descriptors_at_a_fork_says_so_and_blames_nobody() -> None:
    lab = await Lab.start()
    ours_before = set(children_of(os.getpid()))
    try:
        await run_typed_line(lab, "spawn a")
        events: list[Event] = []
        lab.subscribe(events.append)
        in_use = len(os.listdir("/proc/self/fd")) - 1  # listdir's own descriptor is closed again
        with open_file_limit(in_use):
            result = await run_typed_line(lab, "a: kid = fork()")
        notices = [e.message for e in events if isinstance(e, Notice)]
        assert result is not None and result.outcome.death is None, notices  # the fork happened
        assert isinstance(result.outcome.value, int) and result.outcome.value > 0
        assert any("run out of file descriptors" in n and "kid" in n for n in notices), notices
        assert "kid" not in lab.processes
        assert lab.processes["a"].alive  # the parent did nothing wrong: it goes on
        assert await outcome(lab, "a: s = socket(tcp)") == "= 3"
    finally:
        await lab.shutdown()
    assert set(children_of(os.getpid())) <= ours_before  # the untracked child is ended and reaped too
