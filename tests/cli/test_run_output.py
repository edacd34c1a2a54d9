"""What `sockplay run` prints: delays kept, packets as JSON, notes after their packets, sparklines bounded."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from playground.runner import SPARK_WIDTH, sparkline
from tests.helpers import REPO

WIRE_SCRIPT = """sockplay 1
spawn server
spawn client
server: l = socket(tcp)
server: bind(l, 127.0.0.1:0)
server: listen(l, 8)
client: c = socket(tcp)
client: connect(c, server.l) = 0
~ client.c > server.l SYN
server: a = accept(l)
+0.01 client: write(c, "hi") = 2
~ client.c > server.a PSH|ACK len 2
+0.002 client: close(c) = 0
+0.001 sleep 0.01
"""


def _run(tmp_path: Path, text: str, *args: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "s.sockplay"
    script.write_text(text)
    return subprocess.run(
        [sys.executable, "-m", "playground.cli", "run", *args, str(script)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _needs_capture(done: subprocess.CompletedProcess[str]) -> None:
    if "no packet capture" in done.stdout + done.stderr:
        pytest.skip("no packet capture here")


def test_the_echo_keeps_delays_and_runs_again(tmp_path: Path) -> None:
    done = _run(tmp_path, WIRE_SCRIPT)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert any(line.startswith('+0.01 client: write(c, "hi") = 2') for line in lines), lines
    assert any(line.startswith("+0.002 client: close(c) = 0") for line in lines), lines
    assert "+0.001 sleep 0.01" in lines
    again = _run(tmp_path, done.stdout)
    assert again.returncode == 0, again.stderr


def test_a_saw_note_comes_after_the_packet_it_names(tmp_path: Path) -> None:
    done = _run(tmp_path, WIRE_SCRIPT, "--wire")
    _needs_capture(done)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("# saw "):
            seen = line.removeprefix("# saw ")
            packets = [j for j, other in enumerate(lines) if other.startswith("#  ") and other.endswith(seen)]
            assert packets and packets[0] < i, (line, lines)


def test_json_wire_gives_one_object_per_packet_with_its_step(tmp_path: Path) -> None:
    done = _run(tmp_path, WIRE_SCRIPT, "--json", "--wire")
    _needs_capture(done)
    assert done.returncode == 0, done.stderr
    objects = [json.loads(line) for line in done.stdout.splitlines()]
    packets = [o["packet"] for o in objects if "packet" in o]
    syn = next(p for p in packets if p["flags"] == ["SYN"])
    assert syn["line"] == 8 and syn["src"]["name"] == "client.c" and syn["seq"] == 0 and syn["ack"] is None
    assert syn["dst"]["address"] == "127.0.0.1" and syn["length"] == 0 and syn["protocol"] == "TCP"
    data = next(p for p in packets if p["length"] == 2)
    assert data["line"] == 11 and data["flags"] == ["PSH", "ACK"] and data["seq"] == 1 and data["ack"] == 1
    fin = next(p for p in packets if "FIN" in p["flags"])
    assert fin["line"] == 13 and fin["t_ms"] >= data["t_ms"] >= syn["t_ms"] > 0
    # Every packet follows the object of the step that caused it.
    for i, o in enumerate(objects):
        if "packet" in o:
            cause = [x for x in objects[:i] if x.get("line") == o["packet"]["line"] and "packet" not in x]
            assert cause, o


def test_a_long_repeat_has_a_sparkline_of_bounded_width(tmp_path: Path) -> None:
    assert len(sparkline([float(i % 7) for i in range(1100)])) == SPARK_WIDTH
    assert sparkline([1.0, 2.0, 3.0]) == "▁▅█"  # fewer runs than the width: one character each
    text = "sockplay 1\nspawn a\na: s = socket(udp)\nrepeat 300\n  a: getsockopt(s, SO_ERROR) = 0\nend\n"
    done = _run(tmp_path, text)
    assert done.returncode == 0, done.stderr
    summary = next(line for line in done.stdout.splitlines() if "300 runs, median" in line)
    chart = summary.rsplit("  ", 1)[1]
    assert 0 < len(chart) <= SPARK_WIDTH, summary
