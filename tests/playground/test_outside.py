"""Outside programs in the lab (`spawn NAME exec [--trace] ...`): real programs, real strace, real signals."""

from __future__ import annotations

import asyncio
import os
import select
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from playground.errors import LabError
from playground.events import CallObserved, Event, Notice, ProcessEnded
from playground.executor import run_typed_line
from playground.lab import Lab
from playground.runner import Runner
from playground.script.errors import LineError
from playground.script.parser import parse_script
from tests.helpers import REPO, process_exists, process_state
from tests.playground.test_network import SYSTEM_PYTHON, readable_copy, run_as  # noqa: F401 (a fixture, used by name)

STRACE = shutil.which("strace")
GCC = shutil.which("gcc") or shutil.which("cc")
needs_strace = pytest.mark.skipif(STRACE is None, reason="strace is not installed (apt-get install strace)")
needs_gcc = pytest.mark.skipif(GCC is None, reason="no C compiler (gcc or cc) on this machine")


def recorder(lab: Lab) -> list[Event]:
    events: list[Event] = []
    lab.subscribe(events.append)
    return events


async def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def observed(events: list[Event], done_only: bool = True) -> list[str]:
    return [e.line for e in events if isinstance(e, CallObserved) and not (done_only and e.pending)]


async def test_a_script_may_not_run_a_program_unless_the_lab_allows_it(lab: Lab) -> None:
    with pytest.raises(LabError, match="--allow-exec"):
        await run_typed_line(lab, "spawn p exec true")
    assert "p" not in lab.processes


async def test_a_program_not_on_path_is_a_clear_error(exec_lab: Lab) -> None:
    with pytest.raises(LabError, match="no-such-program-here: no such program"):
        await run_typed_line(exec_lab, "spawn p exec no-such-program-here")


async def test_its_output_reaches_the_event_log_escaped_and_its_end_is_reported(exec_lab: Lab) -> None:
    events = recorder(exec_lab)
    await run_typed_line(exec_lab, r'spawn p exec sh -c "echo out; printf \"\x1b[2Jerr\n\" >&2; exit 3"')
    proc = exec_lab.processes["p"]
    await wait_for(lambda: proc.death is not None, 10, "p to end")
    assert str(proc.death) == "exited 3"
    outputs = [e.message for e in events if isinstance(e, Notice) and e.level == "output"]
    assert sorted(outputs) == ["p (stderr): \\x1b[2Jerr", "p (stdout): out"]
    ended = [e for e in events if isinstance(e, ProcessEnded)]
    assert [(e.process, str(e.death)) for e in ended] == [("p", "exited 3")]


BURST = (
    "import socket, sys\n"
    "for i in range(2000):\n"
    "    a, b = socket.socketpair()\n"
    "    a.send(str(i).encode())\n"
    "    a.close(); b.close()\n"
    "    print(i)\n"
    "    sys.stdout.flush()\n"
)


@needs_strace
async def test_a_burst_of_calls_and_output_is_reported_whole_in_order_before_its_end(exec_lab: Lab) -> None:
    """The pipes are read every moment while lines stream in (not at each write): none is lost or reordered."""
    events = recorder(exec_lab)
    await run_typed_line(exec_lab, f'spawn burst exec --trace {sys.executable} -c "{BURST}"')
    proc = exec_lab.processes["burst"]
    await wait_for(lambda: proc.death is not None, 60, "burst to end")
    assert str(proc.death) == "exited 0"
    sends = [e for e in events if isinstance(e, CallObserved) and e.text.startswith(("send(", "sendto("))]
    assert [e.text.split('"')[1] for e in sends] == [str(i) for i in range(2000)]
    outputs = [e.message for e in events if isinstance(e, Notice) and e.level == "output"]
    assert outputs == [f"burst (stdout): {i}" for i in range(2000)]
    end = next(i for i, e in enumerate(events) if isinstance(e, ProcessEnded))
    last = max(
        i for i, e in enumerate(events) if isinstance(e, CallObserved) or isinstance(e, Notice) and e.level == "output"
    )
    assert last < end  # its last calls and words come before its end


async def test_kill_ends_it_and_it_takes_no_steps(exec_lab: Lab) -> None:
    await run_typed_line(exec_lab, "spawn nap exec sleep 30")
    proc = exec_lab.processes["nap"]
    assert process_state(proc.pid) in ("S", "R")
    with pytest.raises(LineError, match="takes no steps"):
        await run_typed_line(exec_lab, "nap: c = socket(tcp)")
    await run_typed_line(exec_lab, "kill nap")
    assert str(proc.death) == "killed SIGTERM"


async def test_it_runs_in_the_labs_network(exec_lab: Lab) -> None:
    if not exec_lab.network.private:
        pytest.skip(f"no private network here: {exec_lab.network.reason}")
    events = recorder(exec_lab)
    ours = os.readlink("/proc/self/ns/net")
    await run_typed_line(exec_lab, "spawn where exec readlink /proc/self/ns/net")
    await wait_for(lambda: exec_lab.processes["where"].death is not None, 10, "readlink to end")
    (line,) = [e.message for e in events if isinstance(e, Notice) and e.level == "output"]
    theirs = line.removeprefix("where (stdout): ")
    assert theirs.startswith("net:[") and theirs != ours
    assert theirs == os.readlink(f"/proc/{exec_lab.network.holder_pid}/ns/net")


WEB_SCRIPT = """sockplay 1
spawn web exec --trace python3 -m http.server {port} --bind 127.0.0.1
spawn client
client: c = socket(tcp)                  = 3
client: connect(c, 127.0.0.1:{port})       = 0
client: write(c, "GET / HTTP/1.0\\r\\n\\r\\n") = 18
client: read(c, 17)                      = 17 "HTTP/1.0 200 OK\\r\\n"
"""


@needs_strace
async def test_the_contracts_web_server_under_trace(exec_lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    # script.md's example, reading the status line's 17 bytes: http.server sends its headers in one write.
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    events = recorder(exec_lab)
    runner = Runner(exec_lab)
    lines = parse_script(WEB_SCRIPT.format(port=8000)).lines
    await runner.run_line(lines[0])
    # The server's listen() is observed: it is ready (no sleep to guess with).
    await wait_for(lambda: any("listen(3, " in text for text in observed(events)), 20, "the server to listen")
    reports = [await runner.run_line(line) for line in lines[1:]]
    assert [(r.line.number, r.divergence or r.error) for r in reports if r.divergence or r.error] == []
    await wait_for(lambda: any("shutdown(4, SHUT_WR) = 0" in text for text in observed(events)), 10, "the answer")
    texts = observed(events)
    accepted = next(t for t in texts if "accept4(" in t)
    assert accepted.startswith("#> web: accept4(3, ...) = 4 from 127.0.0.1:")
    # http.server answers in a thread: its calls are named by the thread's id.
    assert any(t.endswith('recvfrom(4, "GET / HTTP/1.0\\r\\n\\r\\n", 8192, 0) = 18') and "web[" in t for t in texts)
    assert any('sendto(4, "HTTP/1.0 200 OK\\r\\n' in t for t in texts)
    # Its poll() blocks: pending first, then completed under the same key.
    polls = [e for e in events if isinstance(e, CallObserved) and e.text.startswith("poll(")]
    pending_keys = {e.key for e in polls if e.pending}
    assert pending_keys & {e.key for e in polls if not e.pending}  # (the last may still be waiting)
    # Its times are on the lab's clock: between the lab's start and now, in order with the client's calls.
    client_write = next(r for r in reports if r.call == "write").result
    assert client_write is not None
    # (the completed call: a recvfrom that waited for the request was reported pending first, from its start)
    recv = next(e for e in events if isinstance(e, CallObserved) and e.text.startswith("recvfrom(4") and not e.pending)
    assert recv.duration_ns is not None
    recv_end = recv.start_ns + recv.duration_ns
    # strace stamps a call as the tracer sees its stops: on a busy machine its end came out 5 us before the
    # client's write began (that write's own clock, read in the lab process). A clock mixed up (CLOCK_REALTIME)
    # would be decades off: a millisecond tells them apart.
    assert exec_lab.t0 < client_write.start_ns < recv_end + 1_000_000 and recv_end < time.monotonic_ns()


C_SERVER = r"""
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static void *helper(void *arg) {            /* a thread with a socket call of its own */
    (void)arg;
    close(socket(AF_INET, SOCK_DGRAM, 0));
    return NULL;
}

int main(int argc, char **argv) {
    pthread_t thread;
    pthread_create(&thread, NULL, helper, NULL);
    pthread_join(thread, NULL);
    int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in at = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[1]))};
    at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(l, (struct sockaddr *)&at, sizeof at) || listen(l, 8)) return 2;
    int a = accept(l, NULL, NULL);          /* blocks until the lab's client connects */
    pid_t kid = fork();
    if (kid == 0) {                         /* the child reads what the client sent */
        char buf[16];
        ssize_t n = read(a, buf, sizeof buf);
        _exit(n == 5 ? 0 : 1);
    }
    waitpid(kid, NULL, 0);
    char buf[16];
    read(a, buf, sizeof buf);               /* 0: the client closed */
    write(a, "x", 1);                       /* accepted; the client's kernel answers RST */
    usleep(100000);
    write(a, "y", 1);                       /* EPIPE, and SIGPIPE kills us */
    return 0;
}
"""


@needs_strace
@needs_gcc
async def test_a_c_program_forks_blocks_and_dies_of_sigpipe(exec_lab: Lab, tmp_path: Path) -> None:
    source = tmp_path / "server.c"
    source.write_text(C_SERVER)
    binary = tmp_path / "server"
    assert GCC is not None
    subprocess.run([GCC, "-O0", "-pthread", "-o", str(binary), str(source)], check=True, timeout=60)
    events = recorder(exec_lab)
    await run_typed_line(exec_lab, f"spawn srv exec --trace {binary} 7007")
    srv = exec_lab.processes["srv"]
    await wait_for(
        lambda: any(e.line.startswith("#> srv: accept(3, ...) ...") for e in events if isinstance(e, CallObserved)),
        20,
        "accept to block",
    )
    for line in (
        "spawn client",
        "client: c = socket(tcp)",
        "client: connect(c, 127.0.0.1:7007)",
        'client: write(c, "hello")',
        "client: close(c)",
    ):
        await run_typed_line(exec_lab, line)
    await wait_for(lambda: srv.death is not None, 10, "srv to die")
    assert str(srv.death) == "killed SIGPIPE"
    texts = observed(events)
    thread_lines = [t for t in texts if t.startswith("#> srv[") and "SOCK_DGRAM" in t]
    assert len(thread_lines) == 1  # the thread's socket(), under its own id
    assert "#> srv: accept(3, ...) = 4" in texts  # accept(l, NULL, NULL): strace -y knows no peer to name
    kid = [t for t in texts if t.startswith(("#> srv: clone", "#> srv: fork(", "#> srv: vfork("))]
    assert len(kid) == 2  # the thread and the forked child
    child_pid = kid[-1].rsplit("= ", 1)[1]
    assert f'#> srv[{child_pid}]: read(4, "hello", 16) = 5' in texts
    assert f"#> srv[{child_pid}]: exited 0" in texts
    assert '#> srv: read(4, "", 16) = 0' in texts
    assert '#> srv: write(4, "y", 1) = -1 EPIPE (Broken pipe) ! SIGPIPE' in texts


HOLDER = textwrap.dedent(
    """
    import asyncio, sys
    sys.path.insert(0, {repo!r})
    from playground.executor import run_typed_line
    from playground.lab import Lab

    async def main():
        lab = await Lab.start()
        lab.lifecycle.outside.allowed = True
        await run_typed_line(lab, 'spawn tree exec {trace}sh -c "sleep 60 & setsid sleep 60 & sleep 60"')
        print(lab.processes["tree"].pid, *lab.lifecycle.outside.pids(), flush=True)
        await asyncio.sleep(60)

    asyncio.run(main())
    """
)


@pytest.mark.parametrize("trace", [False, pytest.param(True, marks=needs_strace)], ids=["plain", "traced"])
def test_nothing_is_left_running_or_stopped_after_sockplay_is_killed(trace: bool) -> None:
    code = HOLDER.format(repo=str(REPO), trace="--trace " if trace else "")
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None
    program, supervisor = (int(word) for word in holder.stdout.readline().split())
    deadline = time.monotonic() + 20
    while len(tree := _descendants(supervisor)) < 4 and time.monotonic() < deadline:
        time.sleep(0.02)  # (polling /proc, bounded: the shell starts its sleeps when it gets to them)
    assert program in tree and len(tree) >= 4  # sh and its three sleeps (and strace)
    holder.kill()  # SIGKILL: sockplay cannot clean up; the supervisor must
    holder.wait(timeout=10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(pid) for pid in [supervisor, *tree]):
        time.sleep(0.02)
    assert [(pid, process_state(pid)) for pid in [supervisor, *tree] if _alive(pid)] == []


def _alive(pid: int) -> bool:
    return process_exists(pid) and process_state(pid) != "Z"


def _descendants(root: int) -> list[int]:
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                raw = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(raw[raw.rfind(")") + 2 :].split()[1])
    found, frontier = [], [root]
    while frontier:
        parent = frontier.pop()
        kids = [pid for pid, ppid in parents.items() if ppid == parent]
        found += kids
        frontier += kids
    return found


@needs_strace
async def test_a_recording_keeps_the_spawn_line_and_the_observed_calls(exec_lab: Lab, tmp_path: Path) -> None:
    from playground.recording import Recorder

    path = tmp_path / "session.sockplay"
    events = recorder(exec_lab)
    recording = Recorder(exec_lab, path)
    code = "import socket; socket.socket().close()"
    await run_typed_line(exec_lab, f'spawn one exec --trace {sys.executable} -c "{code}"')
    await wait_for(lambda: exec_lab.processes["one"].death is not None, 20, "the program to end")
    await wait_for(lambda: "#> one: close(3) = 0" in observed(events), 5, "its close")
    await run_typed_line(exec_lab, "spawn later")  # a line after them: what came before is written
    recording.close()
    text = path.read_text()
    lines = text.splitlines()
    assert f'spawn one exec --trace {sys.executable} -c "{code}"' in [
        line.split(" # pid")[0].rstrip() for line in lines
    ]
    assert "#> one: close(3) = 0" in lines
    script = parse_script(text)  # the recording reads back: its observed lines are lines of it
    assert any(type(line.node).__name__ == "Observed" for line in script.lines)


LOOPER = """
import socket, sys, time
print("ready", flush=True)
while True:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.close()
    time.sleep(0.05)
"""


@needs_strace
async def test_attaching_to_a_running_process_watches_it_and_leaves_it_running(tmp_path: Path) -> None:
    target = subprocess.Popen([sys.executable, "-c", LOOPER], stdout=subprocess.PIPE, text=True)
    try:
        assert target.stdout is not None and target.stdout.readline() == "ready\n"
        lab = await Lab.start(host_network=True)
        lab.lifecycle.outside.allowed = True
        events = recorder(lab)
        try:
            proc = await lab.lifecycle.outside.attach("looper", target.pid)
            assert proc.pid == target.pid and lab.processes["looper"] is proc
            await wait_for(lambda: "#> looper: close(3) = 0" in observed(events), 20, "its calls")
            assert Path(f"/proc/{target.pid}/status").read_text().count("TracerPid:\t0") == 0  # traced now
        finally:
            await lab.shutdown()
        # The lab is gone; the process it watched runs on, untraced and not stopped.
        deadline = time.monotonic() + 10
        while "TracerPid:\t0" not in Path(f"/proc/{target.pid}/status").read_text() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert "TracerPid:\t0" in Path(f"/proc/{target.pid}/status").read_text()
        assert target.poll() is None and process_state(target.pid) in ("S", "R")
    finally:
        target.kill()
        target.wait()


UNPRIVILEGED_PROBE = """
import asyncio, os, sys
from playground.events import CallObserved
from playground.executor import run_typed_line
from playground.lab import Lab
async def main():
    lab = await Lab.start()
    lab.lifecycle.outside.allowed = True
    seen = []
    lab.subscribe(lambda e: seen.append(e.line) if isinstance(e, CallObserved) and not e.pending else None)
    try:
        code = "import socket; socket.socket().close()"
        await run_typed_line(lab, f'spawn one exec --trace {sys.executable} -S -c "{code}"')
        proc = lab.processes["one"]
        for _ in range(400):
            if proc.death is not None:
                break
            await asyncio.sleep(0.05)
        print(os.getuid(), "|", lab.network.kind, "|", proc.death, "|", "#> one: close(3) = 0" in seen)
    finally:
        await lab.shutdown()
asyncio.run(main())
"""


@needs_strace
def test_an_unprivileged_user_traces_a_program_in_the_labs_user_namespace(readable_copy: Path) -> None:  # noqa: F811
    if os.geteuid() != 0 or shutil.which("setpriv") is None or SYSTEM_PYTHON is None:
        pytest.skip("needs root (to drop privileges), setpriv and a system python3")
    if int(Path("/proc/sys/user/max_user_namespaces").read_text()) == 0:
        pytest.skip("user namespaces are disabled on this kernel")
    result = run_as(
        ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"), readable_copy, "-c", UNPRIVILEGED_PROBE
    )
    assert result.returncode == 0, result.stderr
    uid, kind, death, closed = (part.strip() for part in result.stdout.strip().split("|"))
    assert (uid, kind, death, closed) == ("65534", "private namespace (user namespace)", "exited 0", "True")


async def test_kill_of_a_program_that_ended_unreported_is_a_clear_error(exec_lab: Lab) -> None:
    await run_typed_line(exec_lab, "spawn brief exec true")
    proc = exec_lab.processes["brief"]
    await wait_for(lambda: proc.death is not None, 10, "true to end")
    proc.death = None  # as between its end and the report of it (a traced program's waits for its trace)
    with pytest.raises(LabError, match="brief has ended: there is nothing to signal"):
        await run_typed_line(exec_lab, "kill brief")


LINGER = (
    "import os, socket, sys, time\n"
    "for i in range(300):\n"
    "    a, b = socket.socketpair()\n"
    "    a.send(str(i).encode())\n"
    "    a.close(); b.close()\n"
    "os.write(os.open(sys.argv[1], os.O_WRONLY), b'done')\n"
    "time.sleep(60)\n"
)


@needs_strace
async def test_calls_strace_wrote_before_the_lab_ends_are_reported_not_dropped(tmp_path: Path) -> None:
    """The lab ends while strace's lines are still in the pipe, unread: they are reported before it closes."""
    lab = await Lab.start()
    lab.lifecycle.outside.allowed = True
    events = recorder(lab)
    try:
        fifo = tmp_path / "done"
        os.mkfifo(fifo)
        reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        try:
            await run_typed_line(lab, f'spawn linger exec --trace {sys.executable} -c "{LINGER}" {fifo}')
            # Wait without letting the event loop run: nothing reads strace's pipe meanwhile.
            ready, _, _ = select.select([reader], [], [], 60)
            assert ready, "the program did not make its calls within 60 s"
        finally:
            os.close(reader)
    finally:
        await lab.shutdown()
    sends = [e for e in events if isinstance(e, CallObserved) and e.text.startswith(("send(", "sendto("))]
    assert [e.text.split('"')[1] for e in sends] == [str(i) for i in range(300)]
