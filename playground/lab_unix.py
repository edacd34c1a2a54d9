"""The lab's own directory for AF_UNIX paths, and the names the lab learns from issue 13's further calls.

Each lab makes a private directory (0700, removed at its end) and starts its
processes in it: a script's AF_UNIX path is a plain name there (the parser
refuses '/', NUL and over-long names), bound and connected relative to it
exactly as a C program started in that directory would.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import TYPE_CHECKING

from playground.resolve_more import unix_address
from playground.script.model import Step

if TYPE_CHECKING:
    from playground.lab import Lab, Process

_NEW_NAMES = {"socketpair": "value", "recvmsg": "rights"}
# Every lab directory not yet removed: a sockplay that must exit at once removes them first.
_LIVE: set[str] = set()


def remove_all() -> None:
    """Remove every lab directory still there (sockplay exits without shutting its labs down)."""
    for path in list(_LIVE):
        shutil.rmtree(path, ignore_errors=True)
        _LIVE.discard(path)


class UnixDir:
    """The lab's private directory, made when a process first needs it and removed with the lab.

    Where it cannot be made (no writable temporary directory), processes start where sockplay
    runs and a script's AF_UNIX path is refused with the reason (`problem`), never bound there.
    """

    def __init__(self) -> None:
        self._path: str | None = None
        self.problem: str | None = None

    @property
    def path(self) -> str | None:
        if self._path is None and self.problem is None:
            base = os.environ.get("TMPDIR", "")
            # An explicit directory: tempfile's own search writes a probe file, which fails
            # under RLIMIT_FSIZE 0 although a directory can still be made.
            try:
                self._path = tempfile.mkdtemp(prefix="sockplay-lab-", dir=base if os.path.isdir(base) else "/tmp")
                _LIVE.add(self._path)
            except OSError as exc:
                self.problem = f"the lab has no directory for AF_UNIX paths ({exc.strerror})"
        return self._path

    def remove(self) -> None:
        if self._path is not None:
            shutil.rmtree(self._path, ignore_errors=True)
            _LIVE.discard(self._path)
            self._path = None


def learn_names(lab: Lab, proc: Process, step: Step, raw: dict, fd_arg: int | None) -> None:
    """Names, inodes and AF_UNIX paths from a call that returned (the calls resolve.py's first set lacks)."""
    ret = raw.get("ret", -1)
    name = step.call.name
    if ret < 0:
        return
    if name == "accept4" and step.var:
        name_descriptor(proc, step.var, ret, raw.get("ino"))
    key = _NEW_NAMES.get(name)
    if key is not None and step.var:
        fds = raw.get(key) or []
        inos = raw.get("inos") or []
        for i, var in enumerate((step.var, *step.more_vars)):
            if i < len(fds):
                name_descriptor(proc, var, fds[i], inos[i] if i < len(inos) else None)
    if name == "bind" and fd_arg is not None:
        path = unix_address(lab, proc, step.call.args[1])
        bound = proc.var_for(fd_arg)
        if path is not None and bound is not None:
            proc.paths[bound] = path


def name_descriptor(proc: Process, var: str, fd: int, ino: object) -> None:
    """var names fd now (the newest name of that number): what the lab knew of var's last descriptor goes."""
    proc.names.pop(var, None)  # re-insert: the newest name for a number comes last
    proc.names[var] = fd
    if isinstance(ino, int):
        proc.inodes[var] = ino
    else:
        proc.inodes.pop(var, None)
    proc.addresses.pop(var, None)
    proc.paths.pop(var, None)
