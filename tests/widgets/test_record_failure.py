"""A recording that cannot be written (a full disk) stops with a message; the TUI still starts its lab."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

from tests.helpers import REPO

# RLIMIT_FSIZE 0 makes every write to a regular file fail (EFBIG), as a full disk would (ENOSPC):
# the recording's first write, its header, fails while the TUI boots. Before the fix the
# recorder raised AttributeError from its failure path, the boot died, and the TUI stayed
# at "starting the lab…" with no error.
PILOT = """
import asyncio, sys
from widgets.app import SockplayApp
async def main():
    app = SockplayApp(record=True, record_path=sys.argv[1])
    async with app.run_test(size=(120, 40)) as pilot:
        await asyncio.wait_for(app.lab_ready.wait(), 30)
        print("ready |", app.recording.status())
asyncio.run(main())
"""


def _no_file_writes() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, resource.RLIM_INFINITY))


def test_the_tui_boots_and_says_why_when_its_recording_cannot_be_written(tmp_path: Path) -> None:
    target = tmp_path / "session.sockplay"
    done = subprocess.run(
        [sys.executable, "-c", PILOT, str(target)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=90,
        preexec_fn=_no_file_writes,
    )
    assert done.returncode == 0, done.stderr
    ready, status = done.stdout.strip().splitlines()[-1].split(" | ")
    assert ready == "ready"
    assert status == f"⚠ recording stopped: cannot write {target}: File too large"
