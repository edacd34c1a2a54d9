"""The lab's AF_UNIX directory, as a lab process knows it: removed by the process that outlives sockplay.

sockplay removes the directory when it shuts its lab down; killed (SIGKILL), it cannot. Its lab
processes then see their control channels close and exit, and each first removes the directory
(the first one succeeds; every process of the lab is leaving too).
"""

from __future__ import annotations

import os
import shutil

PREFIX = "sockplay-lab-"  # as playground.lab_unix names the directories it makes
_lab_dir: list[str] = []


def note(arg: str) -> None:
    """`--lab-dir=PATH` from the command line; only a directory named as sockplay names its own."""
    path = arg[len("--lab-dir=") :]  # (no str.removeprefix: remote hosts run Python 3.8)
    if os.path.isabs(path) and os.path.basename(path).startswith(PREFIX):
        _lab_dir[:] = [path]


def remove() -> None:
    for path in _lab_dir:
        shutil.rmtree(path, ignore_errors=True)
