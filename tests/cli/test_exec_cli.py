"""`run` and `replay` with outside programs: refused unless --allow-exec; observed lines printed, kept, replayed."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from playground.events import CallObserved
from playground.session.eventbook import EventBook
from tests.helpers import REPO

needs_strace = pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")

SCRIPT = """sockplay 1
spawn hello exec --trace {python} -c "import socket; socket.socket().close(); print('hi')"
sleep 1
state hello exited
"""


def sockplay(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "playground.cli", *args], cwd=REPO, capture_output=True, text=True, timeout=120
    )


def test_run_refuses_a_script_with_a_program_naming_each_line_and_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    script = tmp_path / "x.sockplay"
    script.write_text(f"sockplay 1\nspawn a\nspawn evil exec touch {marker}\n")
    for command in (["run", str(script)], ["replay", "--check", str(script)], ["replay", str(script)]):
        done = sockplay(*command)
        assert done.returncode == 2, command
        assert (
            f"{script}:3: would run the program touch {marker}" in done.stderr or "--check --allow-exec" in done.stderr
        )
        assert "--allow-exec" in done.stderr
    assert not marker.exists()


@needs_strace
def test_run_with_allow_exec_prints_observed_lines_and_json_objects(tmp_path: Path) -> None:
    script = tmp_path / "hello.sockplay"
    script.write_text(SCRIPT.format(python=sys.executable))
    done = sockplay("run", "--allow-exec", str(script))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert any(line.startswith("#> hello: socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC, IPPROTO_IP) = 3") for line in lines)
    assert "#> hello: close(3) = 0" in lines
    as_json = sockplay("run", "--allow-exec", "--json", str(script))
    assert as_json.returncode == 0, as_json.stderr
    objects = [json.loads(line) for line in as_json.stdout.splitlines()]
    observed = [o for o in objects if o.get("observed")]
    assert {o["text"] for o in observed} >= {"#> hello: close(3) = 0"}
    close = next(o for o in observed if o["text"] == "#> hello: close(3) = 0")
    assert close["process"] == "hello" and close["call"] == "close" and close["start_ms"] > 0
    # What it ran is a script again: its observed lines read back, as text.
    again = tmp_path / "again.sockplay"
    again.write_text(done.stdout)
    replayed = sockplay("replay", "--check", "--allow-exec", "--json", str(again))
    assert replayed.returncode == 0, replayed.stderr
    shown = [json.loads(line) for line in replayed.stdout.splitlines()]
    in_place = [o for o in shown if o.get("observed") and "line" in o]
    assert "#> hello: close(3) = 0" in {o["text"] for o in in_place}


def test_a_recording_s_observed_lines_are_shown_never_run(tmp_path: Path) -> None:
    script = tmp_path / "seen.sockplay"
    script.write_text(
        'sockplay 1\nspawn a\n#> web: connect(3, 127.0.0.1:1) = 0\n#> web[7]: write(3, "\\x1b[2J", 4) = 4\n'
    )
    done = sockplay("replay", "--check", str(script))
    assert done.returncode == 0, done.stderr
    assert "#> web: connect(3, 127.0.0.1:1) = 0" in done.stdout.splitlines()
    assert '#> web[7]: write(3, "\\x1b[2J", 4) = 4' in done.stdout.splitlines()
    assert "\x1b[2J" not in done.stdout


def test_the_event_log_completes_a_pending_observed_call_in_place() -> None:
    book = EventBook(0)
    book.add(CallObserved((5, 1), "web", "accept4(3, ...) ...", True, 10, None, 11))
    (entry,) = book.entries
    assert (entry.kind, entry.process, entry.body) == ("pending", "web", "#> accept4(3, ...)")
    book.add(CallObserved((5, 1), "web", "accept4(3, ...) = 4 from 127.0.0.1:4000", False, 10, 2000, 12))
    book.add(CallObserved((5, 2), "web[6]", 'write(4, "x", 1) = -1 EPIPE (Broken pipe) ! SIGPIPE', False, 20, 5, 21))
    assert [(e.kind, e.process, e.body, e.duration_ns) for e in book.entries] == [
        ("ok", "web", "#> accept4(3, ...) = 4 from 127.0.0.1:4000", 2000),
        ("signal", "web[6]", '#> write(4, "x", 1) = -1 EPIPE (Broken pipe) ! SIGPIPE', 5),
    ]


def test_export_refuses_a_script_with_an_outside_program(tmp_path: Path) -> None:
    script = tmp_path / "e.sockplay"
    script.write_text("sockplay 1\nspawn a\nspawn web exec sleep 1\n")
    done = sockplay("export", "--python", str(script))
    assert done.returncode == 2 and done.stdout == ""
    assert f"{script}:3: an outside program (spawn ... exec) cannot be exported" in done.stderr
