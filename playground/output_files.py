"""Writing the files a user names (`--pcap`, `--ladder`, `--record`, `export -o`): regular files only.

The rules, the same for every output:
- the final component must not be a symbolic link, and anything that exists there must be a
  regular file: a directory, a FIFO (which would hang the writer), a device (`/dev/full`,
  `/dev/null`) or a socket is refused, untouched;
- an existing regular file is replaced (people rerun their commands), never written through:
  a file written whole goes to a new file in the same directory that is renamed over the
  target, so a reader never sees half of it and a hard link elsewhere keeps the old contents;
- a file written as the run goes (a pcap, a recording) is opened in place, since what a
  killed sockplay had written must be there under the name asked for; it is checked to be
  a regular file after it is opened and before it is emptied;
- no mode is changed but that of the new file itself;
- a refusal is one line (`OutputRefused`, an OSError), said before the lab starts where
  the command can check the path first (`check_output_path`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from pathlib import Path


class OutputRefused(OSError):
    """An output path that sockplay will not write to; str() is the whole message."""

    def __init__(self, path: str | os.PathLike[str], why: str) -> None:
        super().__init__(errno.EINVAL, why, str(path))
        self.why = why
        self.path = str(path)

    def __str__(self) -> str:
        return f"cannot write {self.path}: {self.why}"


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def check_output_path(path: str | os.PathLike[str], make_parent: bool = False) -> Path:
    """Refuse (OutputRefused) a path sockplay must not write to; nothing is created or opened.

    With make_parent, a missing directory is fine (the writer creates it)."""
    target = Path(path)
    if str(path) == "":
        raise OutputRefused(path, "the path is empty")
    try:
        info = os.lstat(target)
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise OutputRefused(path, exc.strerror or str(exc)) from None
    if info is not None:
        if stat.S_ISLNK(info.st_mode):
            raise OutputRefused(path, "it is a symbolic link (name the file it points to, if that is meant)")
        if not stat.S_ISREG(info.st_mode):
            raise OutputRefused(path, f"it is {_kind(info.st_mode)}, and sockplay writes regular files only")
    parent = target.parent
    if not parent.is_dir():
        if make_parent and not parent.exists():
            return target
        why = "is not a directory" if parent.exists() else "does not exist"
        raise OutputRefused(path, f"the directory {parent} {why}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputRefused(path, f"the directory {parent} is not writable")
    return target


def write_output(path: str | os.PathLike[str], data: bytes | str, mode: int | None = None) -> None:
    """Write a whole file: a new file in the target's directory, renamed over the target.

    `mode` (e.g. 0o755) is given to the new file only. Raises OutputRefused or OSError."""
    target = check_output_path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(payload)
            out.flush()
            umask = os.umask(0)
            os.umask(umask)
            os.fchmod(out.fileno(), (mode if mode is not None else 0o666) & ~umask)
        check_output_path(target)  # still not a link, a FIFO or a device (it may have changed since)
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def open_output_stream(path: str | os.PathLike[str], append: bool = False) -> int:
    """Open a regular file to write as the run goes (created 0644, emptied unless append); a descriptor.

    Never follows a symbolic link in the final component, never blocks on a FIFO, never
    empties or writes anything but a regular file. Raises OutputRefused or OSError."""
    target = check_output_path(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    if append:
        flags |= os.O_APPEND
    try:
        fd = os.open(target, flags, 0o644)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENXIO, errno.EISDIR):
            raise OutputRefused(path, "it is not a regular file") from None
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OutputRefused(path, f"it is {_kind(info.st_mode)}, and sockplay writes regular files only")
        os.set_blocking(fd, True)
        if not append:
            os.ftruncate(fd, 0)
    except BaseException:
        os.close(fd)
        raise
    return fd
