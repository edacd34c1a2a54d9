"""Recording a session as a script: line by line, in order, with a header; and what SIGKILL leaves."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from playground.cli.replay import ReplayCheck, load_recording
from playground.executor import run_typed_line
from playground.lab import Lab
from playground.recording import (
    Recorder,
    default_session_path,
    read_header,
    sessions_dir,
)
from playground.recording_list import list_sessions
from playground.script.model import Completion, Spawn, Step
from playground.script.parser import parse_line
from tests.helpers import REPO, children_of, process_state, wait_until

SETUP = [
    "spawn server",
    "spawn client",
    "server: l = socket(tcp)",
    "server: bind(l, 127.0.0.1:0)",
    "server: listen(l, 8)",
    "client: c = socket(tcp)",
    "client: connect(c, server.l)",
    "server: a = accept(l)",
]


def body(path: Path) -> list[str]:
    """The recording's lines after `sockplay 1`, without the recorder's trailing notes or gaps.

    How long the machine took between two lines (`+DELAY`) varies; tests of gaps read them parsed.
    """
    lines = path.read_text().splitlines()
    return [
        re.sub(r"^\+[0-9.]+ ", "", re.sub(r"\s+# .*$", "", line)) for line in lines[lines.index("sockplay 1") + 1 :]
    ]


async def check(path: Path, speed: float = 0.0) -> int:
    return await ReplayCheck(load_recording(str(path)), str(path), speed=speed).run()


async def test_a_session_is_recorded_line_by_line_and_replays(tmp_path: Path) -> None:
    path = tmp_path / "session.sockplay"
    lab = await Lab.start()
    recorder = Recorder(lab, path)
    try:
        for line in SETUP:
            await run_typed_line(lab, line)
        # Each line is in the file as soon as its call has returned.
        assert body(path)[-1] == "server: a = accept(l) = 4 from " + body(path)[-1].split(" from ")[1]
        await run_typed_line(lab, "server: signal(SIGPIPE, catch)")
        # A read that blocks while the client writes: `...`, the write, then the read's outcome.
        read = lab.submit(parse_line("server: read(a, 100)", lab.scope()))  # type: ignore[arg-type]
        await run_typed_line(lab, 'client: write(c, "hello")')
        await read.future
        await run_typed_line(lab, "server: kid = fork()")
        await run_typed_line(lab, "kid: exit(3)")
        await run_typed_line(lab, "server: waitpid(kid, 0)")
        await run_typed_line(lab, "client: close(c)")
        await run_typed_line(lab, "sleep 0.05")
        await run_typed_line(lab, 'server: write(a, "ping")')
        await run_typed_line(lab, 'server: write(a, "ping")')
        await run_typed_line(lab, "kill client SIGKILL")
    finally:
        recorder.close()
        await lab.shutdown()
    lines = body(path)
    assert lines[:2] == ["spawn server", "spawn client"]
    read_at = lines.index("server: read(a, 100) ...")
    assert lines[read_at + 1] == 'client: write(c, "hello") = 5'
    assert lines[read_at + 2] == 'server: ... = 5 "hello"'
    assert re.fullmatch(r"server: kid = fork\(\) = \d+", lines[read_at + 3])
    assert "kid: exit(3) = exited 3" in lines
    assert "# kid exited 3 (a zombie until its parent reaps it)" in lines
    assert any(re.fullmatch(r"server: waitpid\(kid, 0\) = \d+ exited 3", line) for line in lines)
    assert "# server reaped kid" in lines
    assert "sleep 0.05" in lines
    assert 'server: write(a, "ping") = -1 EPIPE (Broken pipe) ! SIGPIPE' in lines
    assert lines[-2:] == ["kill client SIGKILL", "# client killed SIGKILL"]
    # The header: what outcomes depend on, machine-readable.
    script = load_recording(str(path))
    header = read_header(script.header_comments)
    assert header["kernel"] == os.uname().release
    assert header["sockplay-version"] and header["started"].endswith("Z") and header["lab"] == lab.network.kind
    for name in (
        "net.ipv4.tcp_tw_reuse",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_retries2",
        "net.core.somaxconn",
    ):
        assert header["sysctls"][name], name
    assert recorder.steps_written == sum(isinstance(line.node, Step) for line in script.lines)
    assert await check(path) == 0


async def test_gaps_are_kept_as_delays_and_waits(tmp_path: Path) -> None:
    path = tmp_path / "gaps.sockplay"
    lab = await Lab.start()
    recorder = Recorder(lab, path)
    try:
        await run_typed_line(lab, "spawn a")
        await run_typed_line(lab, "a: u = socket(udp)")
        await asyncio.sleep(0.3)  # a user's pause between two steps: what is recorded, not a synchronisation
        await run_typed_line(lab, "a: bind(u, 127.0.0.1:0)")
        await asyncio.sleep(0.3)
        await run_typed_line(lab, "spawn b")
    finally:
        recorder.close()
        await lab.shutdown()
    script = load_recording(str(path))
    bind = next(line.node for line in script.lines if isinstance(line.node, Step) and line.node.call.name == "bind")
    assert bind.delay is not None and 0.3 <= bind.delay < 2.0
    spawn_b = script.lines[-1].node
    assert isinstance(spawn_b, Spawn) and spawn_b.delay is not None and 0.3 <= spawn_b.delay < 2.0
    started = time.monotonic()
    assert await check(path, speed=1.0) == 0
    assert time.monotonic() - started >= 0.6


async def test_out_of_order_outcomes_follow_the_order_the_calls_blocked(tmp_path: Path) -> None:
    """Two reads blocked in one process; the second returns first: its outcome waits for the first's."""
    path = tmp_path / "order.sockplay"
    lab = await Lab.start()
    recorder = Recorder(lab, path, hold_pending=0.05)
    try:
        for line in SETUP:
            await run_typed_line(lab, line)
        await run_typed_line(lab, "client: c2 = socket(tcp)")
        await run_typed_line(lab, "client: connect(c2, server.l)")
        await run_typed_line(lab, "server: b = accept(l)")
        first = lab.submit(parse_line("server: read(a, 10)", lab.scope()))  # type: ignore[arg-type]
        second = lab.submit(parse_line("server: read(b, 10)", lab.scope()))  # type: ignore[arg-type]
        await run_typed_line(lab, 'client: write(c2, "2")')
        await second.future
        await run_typed_line(lab, 'client: write(c, "1")')
        await first.future
    finally:
        recorder.close()
        await lab.shutdown()
    lines = body(path)
    at = lines.index("server: read(a, 10) ...")
    assert lines[at:] == [
        "server: read(a, 10) ...",
        "server: read(b, 10) ...",
        'client: write(c2, "2") = 1',
        'client: write(c, "1") = 1',
        'server: ... = 1 "1"',
        'server: ... = 1 "2"',
    ]
    script = load_recording(str(path))
    assert sum(isinstance(line.node, Completion) for line in script.lines) == 2
    assert await check(path) == 0


def test_session_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert sessions_dir() == tmp_path / "state" / "sockplay" / "sessions"
    first = default_session_path()
    assert first.parent.is_dir() and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.sockplay", first.name)
    first.touch()
    second = default_session_path()
    assert second != first and second.parent == first.parent
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert sessions_dir() == tmp_path / "home" / ".local" / "state" / "sockplay" / "sessions"
    monkeypatch.setenv("XDG_STATE_HOME", "relative/is/ignored")
    assert sessions_dir() == tmp_path / "home" / ".local" / "state" / "sockplay" / "sessions"


async def test_sessions_are_listed_newest_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    lab = await Lab.start()
    try:
        recorder = Recorder(lab)  # the default path
        await run_typed_line(lab, "spawn a")
        await run_typed_line(lab, "a: s = socket(tcp)")
        recorder.close()
        older = sessions_dir() / "2001-01-01T00-00-00.sockplay"
        older.write_text(
            re.sub(r"#@ started: .*", "#@ started: 2001-01-01T00:00:00.000000Z", recorder.path.read_text())
        )
        broken = sessions_dir() / "broken.sockplay"
        broken.write_text("sockplay 9\n")
        os.utime(broken, (1e9, 1e9))  # 2001-09-09
    finally:
        await lab.shutdown()
    found = list_sessions()
    assert [info.path for info in found][:1] == [recorder.path]
    assert found[0].steps == 1 and found[0].kernel == os.uname().release
    assert [info.path for info in found][1:] == [broken, older]
    assert next(info for info in found if info.path == broken).error
    listing = subprocess.run(
        [sys.executable, "-m", "playground.cli", "sessions"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "XDG_STATE_HOME": str(tmp_path)},
    )
    assert listing.returncode == 0
    rows = listing.stdout.splitlines()
    assert rows[0].split() == ["when", "steps", "kernel", "file"]
    assert recorder.path.name in rows[1] and " 1 " in rows[1] and os.uname().release in rows[1]
    assert "2001-01-01T00-00-00.sockplay" in "".join(rows[2:])
    assert "unreadable" in next(row for row in rows if "broken.sockplay" in row)


DRIVER = """
import asyncio, sys
sys.path.insert(0, {repo!r})
from playground.lab import Lab
from playground.recording import Recorder
from playground.executor import run_typed_line
from playground.script.parser import parse_line

async def main(path):
    lab = await Lab.start()
    Recorder(lab, path)
    for line in {setup!r}:
        await run_typed_line(lab, line)
    await run_typed_line(lab, 'client: write(c, "before the kill")')
    await run_typed_line(lab, "server: read(a, 100)")
    await run_typed_line(lab, "server: kid = fork()")
    lab.submit(parse_line("server: read(a, 100)", lab.scope()))
    await asyncio.Event().wait()  # the test kills us here, with SIGKILL

asyncio.run(main(sys.argv[1]))
"""


def descendants(pid: int) -> set[int]:
    out: set[int] = set()
    todo = [pid]
    while todo:
        for child in children_of(todo.pop()):
            if child not in out:
                out.add(child)
                todo.append(child)
    return out


async def test_sigkill_mid_session_leaves_a_file_that_replays_and_no_process(tmp_path: Path) -> None:
    path = tmp_path / "killed.sockplay"
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER.format(repo=str(REPO), setup=SETUP))
    proc = subprocess.Popen([sys.executable, str(driver), str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        # The last step (a blocked read) is in the file: the session is at the known point.
        wait_until(
            lambda: path.exists() and "server: read(a, 100) ...\n" in path.read_text(),
            30,
            "the blocked read in the recording",
        )
        lab_pids = descendants(proc.pid)
        recorded = {int(pid) for pid in re.findall(r"spawn \w+ +# pid (\d+)", path.read_text())}
        recorded |= {int(pid) for pid in re.findall(r"fork\(\) = (\d+)", path.read_text())}
        assert recorded and recorded <= lab_pids
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == -signal.SIGKILL

    def ended(pid: int) -> bool:
        state = process_state(pid)
        if state == "Z":  # ended; reap it if it came back to us (a subreaper)
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
            return True
        return state is None

    # The lab's processes (spawned, forked, and the namespace holder) see sockplay gone and end.
    wait_until(lambda: all(ended(pid) for pid in lab_pids), 10, f"the lab processes {sorted(lab_pids)} to end")
    lines = body(path)
    assert lines[-1] == "server: read(a, 100) ..."
    assert 'server: read(a, 100) = 15 "before the kill"' in lines
    assert not path.read_text().endswith("...")  # the last line is complete
    assert await check(path) == 0


async def test_a_timing_claim_is_kept_in_the_recording_and_checked_on_replay(tmp_path: Path) -> None:
    path = tmp_path / "session.sockplay"
    lab = await Lab.start()
    recorder = Recorder(lab, path)
    try:
        for line in SETUP:
            await run_typed_line(lab, line)
        await run_typed_line(lab, 'client: write(c, "x") within 10s')
        await run_typed_line(lab, "server: read(a, 10) within 10s")
    finally:
        recorder.close()
        await lab.shutdown()
    lines = body(path)
    assert lines[-2:] == ['client: write(c, "x") = 1 within 10s', 'server: read(a, 10) = 1 "x" within 10s']
    assert await check(path) == 0
    broken = tmp_path / "broken.sockplay"
    broken.write_text(path.read_text().replace('"x" within 10s', '"x" after 10s'))
    assert await check(broken) == 1
