"""The caps' flags: a long sleep is refused with a message naming the flag, in `run` and `replay`,
and `replay --speed` scales `sleep` lines as it scales +DELAY (issue 11, item 9)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from playground.replay import scaled
from playground.script.model import Sleep
from playground.script.parser import parse_script
from tests.helpers import REPO

LONG_SLEEP = """sockplay 1
spawn a
a: s = socket(tcp) = 3
sleep 3600
a: close(s) = 0
"""


def sockplay(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "playground.cli", *args], cwd=REPO, capture_output=True, text=True, timeout=60
    )


def test_run_refuses_a_sleep_beyond_the_limit_and_names_the_flag(tmp_path: Path) -> None:
    script = tmp_path / "long.sockplay"
    script.write_text(LONG_SLEEP)
    done = sockplay("run", str(script))
    assert done.returncode != 0
    assert "--max-sleep" in done.stdout + done.stderr
    assert "Traceback" not in done.stderr


def test_replay_check_refuses_a_scaled_sleep_beyond_the_limit(tmp_path: Path) -> None:
    script = tmp_path / "long.sockplay"
    script.write_text(LONG_SLEEP)
    done = sockplay("replay", "--check", "--speed", "1", "--max-sleep", "5", str(script))
    assert done.returncode == 1
    assert "--max-sleep" in done.stdout + done.stderr


def test_limit_flags_are_checked() -> None:
    for flag, value in (("--max-processes", "0"), ("--max-pending", "many"), ("--max-sleep", "-1")):
        done = sockplay("run", flag, value, "-")
        assert done.returncode == 2, (flag, done.stderr)
        assert flag in done.stderr


def test_replay_speed_scales_sleep_lines() -> None:
    script = parse_script(LONG_SLEEP.encode(), "long.sockplay")
    sleeps = [line.node.seconds for line in scaled(script, 0.001).lines if isinstance(line.node, Sleep)]
    assert sleeps == [3.6]
    # At speed 0 (no pauses) a sleep stays as written: the outcomes after it may need the time.
    assert [line.node.seconds for line in scaled(script, 0).lines if isinstance(line.node, Sleep)] == [3600]
