"""`run` and `replay --check` print what a script says, never a control sequence a terminal would obey."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from playground.cli.safe_output import escape_controls
from tests.helpers import REPO

OSC52 = "\x1b]52;c;cm0gLXJmIH4=\x07"  # writes the clipboard
TITLE = "\x1b]0;owned\x07"
CLEAR = "\x1b[2J\x1b[H"
HOSTILE = f"""sockplay 1
# a header comment {TITLE}
spawn server
spawn client
server: l = socket(tcp)  # a comment {OSC52} with a C1 \x9b31m and a bidi override \u202eevil
server: bind(l, 127.0.0.1:0)
server: listen(l, 8)  # {CLEAR}\r carriage return
client: c = socket(tcp)
client: connect(c, server.l)
server: a = accept(l)
client: write(c, "{CLEAR}\\x1b]52;c;aGk=\\x07") = 19
server: read(a, 100) = 3 "x\x1b[2J"
# a trailing comment {OSC52}
"""
# Anything a terminal acts on: C0 but tab and newline, DEL, C1, the bidi controls.
OBEYED = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def test_escape_controls_writes_them_out_and_keeps_the_rest() -> None:
    assert escape_controls(f"a{OSC52}b\tc\n") == "a\\x1b]52;c;cm0gLXJmIH4=\\x07b\tc\n"
    assert escape_controls("\x9b\u202e\x7f µ · ▁█") == "\\x9b\\u202e\\x7f µ · ▁█"


def _sockplay(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "playground.cli", *args], cwd=REPO, capture_output=True, text=True, timeout=60
    )


def test_run_and_replay_check_escape_comments_data_and_messages(tmp_path: Path) -> None:
    script = tmp_path / "hostile.sockplay"
    script.write_text(HOSTILE)
    for args in (("run", str(script)), ("replay", "--check", str(script)), ("run", "--json", str(script))):
        done = _sockplay(*args)
        assert done.returncode == 1, (args, done.stderr)  # the read diverges, quoting the data it expected
        for stream in (done.stdout, done.stderr):
            assert OBEYED.search(stream) is None, (args, stream)
        if args[0] == "run" and "--json" not in args:
            assert "# a trailing comment \\x1b]52;c;cm0gLXJmIH4=\\x07" in done.stdout
    shown = _sockplay("run", str(script)).stdout
    assert "\\x1b]0;owned\\x07" in shown and "\\u202eevil" in shown and "\\x0d carriage" in shown


def test_a_bad_line_with_escapes_is_reported_escaped(tmp_path: Path) -> None:
    script = tmp_path / "bad.sockplay"
    script.write_text(f"sockplay 1\nspawn a\nbogus {CLEAR}{OSC52}\n")
    done = _sockplay("run", str(script))
    assert done.returncode == 2 and OBEYED.search(done.stderr) is None and "\\x1b" in done.stderr
