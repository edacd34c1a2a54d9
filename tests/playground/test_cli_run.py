"""`sockplay run`: output in the script's own syntax, divergences, exit codes, --json."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.helpers import PAIR_SCRIPT, REPO

GOOD = """sockplay 1
# A FIN, then EOF.
spawn server
spawn client
server: l = socket(tcp)
server: bind(l, 127.0.0.1:0)
server: listen(l, 8)
client: c = socket(tcp) = 3
client: connect(c, server.l)
server: a = accept(l)
client: close(c)                   # sends FIN
server: read(a, 100) = 0
client: c2 = socket(tcp)
client: connect(c2, server.l)
server: a2 = accept(l)
server: read(a2, 100) ...
client: write(c2, "hi")
server: ... = 2 "hi"
"""


def sockplay(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "playground.cli", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        input=stdin,
        timeout=60,
    )


def test_run_prints_a_script_that_runs_again(tmp_path: Path) -> None:
    script = tmp_path / "good.sockplay"
    script.write_text(GOOD)
    first = sockplay("run", str(script))
    assert first.returncode == 0, first.stderr
    lines = first.stdout.splitlines()
    assert lines[0] == "sockplay 1" and "# A FIN, then EOF." in lines
    assert any(line.startswith("server: a = accept(l) = 4") for line in lines)
    assert any(line.startswith("client: close(c) = 0") and "sends FIN" in line for line in lines)
    # Unstated outcomes are filled in; the output is itself a script that holds.
    again = sockplay("run", "-", stdin=first.stdout)
    assert again.returncode == 0, again.stderr


def test_divergence_exits_1_and_names_the_line(tmp_path: Path) -> None:
    script = tmp_path / "wrong.sockplay"
    script.write_text(GOOD.replace("server: read(a, 100) = 0\n", "server: read(a, 100) = 5\n"))
    result = sockplay("run", str(script))
    assert result.returncode == 1
    assert f"{script}:12: expected = 5, got = 0" in result.stderr
    assert "# DIVERGES (line 12)" in result.stdout


def test_bad_script_exits_2_with_position_and_runs_nothing(tmp_path: Path) -> None:
    script = tmp_path / "bad.sockplay"
    script.write_text("sockplay 1\nspawn a\na: s = socket(tcp)\na: bind(s, 127.0.0.1:0)\na: lisen(s, 1)\n")
    result = sockplay("run", str(script))
    assert result.returncode == 2
    assert result.stderr.strip() == f"{script}:5:4: unknown call 'lisen'; did you mean listen?"
    assert result.stdout == ""


def test_other_versions_and_missing_files_exit_2(tmp_path: Path) -> None:
    script = tmp_path / "v2.sockplay"
    script.write_text("# a comment first\nsockplay 2\nspawn a\n")
    result = sockplay("run", str(script))
    assert result.returncode == 2 and "format version 2 is not supported" in result.stderr
    assert ":2:10:" in result.stderr
    missing = sockplay("run", str(tmp_path / "nope.sockplay"))
    assert missing.returncode == 2 and "cannot read" in missing.stderr
    assert sockplay("frobnicate").returncode == 2


def test_json_prints_one_object_per_line(tmp_path: Path) -> None:
    script = tmp_path / "good.sockplay"
    script.write_text(GOOD)
    result = sockplay("run", "--json", str(script))
    assert result.returncode == 0, result.stderr
    objects = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o["line"] for o in objects] == list(range(3, 19))
    accept = next(o for o in objects if o["call"] == "accept")
    assert accept["return"] == 4 and accept["ok"] and accept["duration_ns"] > 0
    assert accept["start_ms"] > 0 and accept["signals"] == []
    read = next(o for o in objects if o["line"] == 12)
    assert read["data"]["length"] == 0


def test_json_reports_errno_name_number_and_message(tmp_path: Path) -> None:
    script = tmp_path / "ebadf.sockplay"
    script.write_text("sockplay 1\nspawn a\na: read(9, 10) = -1 EBADF\n")
    result = sockplay("run", "--json", str(script))
    obj = json.loads(result.stdout.splitlines()[-1])
    assert obj["errno"] == {"name": "EBADF", "number": 9, "message": "Bad file descriptor"}


def test_json_keeps_a_timing_claim_and_its_verdict(tmp_path: Path) -> None:
    script = tmp_path / "claims.sockplay"
    script.write_text(PAIR_SCRIPT + 'client: write(c, "x") = 1 within 10s\nserver: read(a, 10) = 1 "x" after 10s\n')
    result = sockplay("run", "--json", str(script))
    assert result.returncode == 1, result.stderr
    write, read = [json.loads(line) for line in result.stdout.splitlines()][-2:]
    assert write["timing"] == {"bound": "within", "ns": 10_000_000_000, "text": "within 10s"} and write["ok"]
    assert write["text"] == 'client: write(c, "x") = 1 within 10s'
    assert read["timing"]["text"] == "after 10s" and not read["ok"]
    assert read["divergence"].startswith("expected after 10s, took ")
