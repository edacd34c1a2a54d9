"""`sessions` reads each recording's header, not its whole text: a hostile file costs a bounded read."""

from __future__ import annotations

import time
from pathlib import Path

from playground.recording_list import COUNTED_BYTES, list_sessions

HEADER = "#@ sockplay-version: 0.1.0\n#@ kernel: 6.1.0-test\n#@ started: 2026-01-02T03:04:05.000000Z\nsockplay 1\n"
STEPS = "spawn a\na: s = socket(tcp) = 3\n+0.5 a: read(s, 10) ...\na: ... = 0\na: close(s) = 0\n"


def test_the_header_and_a_count_of_steps_without_a_parse(tmp_path: Path) -> None:
    (tmp_path / "good.sockplay").write_text(HEADER + STEPS)
    (tmp_path / "bad-body.sockplay").write_text(HEADER + STEPS + "a: oops(\n")
    (tmp_path / "cut.sockplay").write_text(HEADER + STEPS + "a: close(")
    (tmp_path / "no-version.sockplay").write_text("# nothing\nspawn a\n")
    found = {info.path.name: info for info in list_sessions(tmp_path)}
    good = found["good.sockplay"]
    assert (good.steps, good.kernel, good.error, good.truncated) == (3, "6.1.0-test", None, None)
    assert good.started is not None and good.started.year == 2026
    assert found["bad-body.sockplay"].error is None  # replay says what is wrong with line 10
    assert found["cut.sockplay"].truncated == 10
    assert "line 2" in (found["no-version.sockplay"].error or "")


def test_a_huge_hostile_file_is_listed_at_once(tmp_path: Path) -> None:
    """One 400 KB line of errno messages in a string took `sessions` 26 s when it was parsed whole."""
    hostile = HEADER + "spawn a\na: s = socket(tcp) = 3\n" + 'a: write(s, "' + "= -1 EA (x)" * 40_000 + '")\n'
    (tmp_path / "hostile.sockplay").write_text(hostile)
    (tmp_path / "large.sockplay").write_text(HEADER + STEPS * (COUNTED_BYTES // len(STEPS) + 1))
    start = time.monotonic()
    found = {info.path.name: info for info in list_sessions(tmp_path)}
    assert time.monotonic() - start < 5  # a very loose bound: the header is read, not the file parsed
    assert found["hostile.sockplay"].steps == 2 and found["hostile.sockplay"].error is None
    assert found["large.sockplay"].steps is None and found["large.sockplay"].kernel == "6.1.0-test"
