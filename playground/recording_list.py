"""The recordings in the sessions directory, as `sockplay sessions` and the replay screen list them.

`list_sessions()` reads each file's header and counts its steps without
parsing them, newest first; a file it cannot read says why in `error`.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from playground.recording import read_header, sessions_dir

__all__ = ["COUNTED_BYTES", "HEADER_BYTES", "SessionInfo", "list_sessions"]


@dataclass
class SessionInfo:
    """One recording in the sessions directory, as `sockplay sessions` lists it."""

    path: Path
    started: datetime | None = None  # from the header (UTC), else the file's modification time
    steps: int | None = None
    kernel: str | None = None
    lab: str | None = None
    truncated: int | None = None  # the number of a cut-off last line
    error: str | None = None  # why it cannot be read


# `sessions` reads a recording's header and counts its steps without parsing them: a hostile
# or huge file in the directory costs a bounded read, not a parse.
HEADER_BYTES = 64 * 1024
COUNTED_BYTES = 8 * 1024 * 1024
_STEP_LINE = re.compile(rb"^[ \t]*(?:\+[0-9.]+[ \t]+)?[A-Za-z_][A-Za-z0-9_-]*[ \t]*:(?![ \t]*\.\.\.)", re.MULTILINE)


def list_sessions(directory: Path | None = None) -> list[SessionInfo]:
    """The recordings in the sessions directory, newest first."""
    directory = directory or sessions_dir()
    try:
        files = [p for p in directory.iterdir() if p.suffix == ".sockplay" and p.is_file()]
    except OSError:
        return []
    out = [_session_info(path) for path in files]
    out.sort(key=lambda i: (i.started or datetime.min.replace(tzinfo=UTC), i.path.name), reverse=True)
    return out


def _session_info(path: Path) -> SessionInfo:
    """What `sessions` shows of one recording: its header, and its steps if it is not too large to count."""
    from playground.script.errors import ScriptError
    from playground.script.parser import parse_script

    info = SessionInfo(path)
    try:
        stat = path.stat()
        info.started = datetime.fromtimestamp(stat.st_mtime, UTC)
        with path.open("rb") as f:
            raw = f.read(COUNTED_BYTES + 1)
        head = _header_text(raw[:HEADER_BYTES])
        if head is None:
            raise ScriptError(str(path), 1, 1, f"no 'sockplay 1' line in its first {HEADER_BYTES} bytes")
        script = parse_script(head, str(path))
    except OSError as exc:
        info.error = exc.strerror or str(exc)
        return info
    except ScriptError as exc:
        info.error = f"line {exc.line}: {exc.message}"
        return info
    header = read_header(script.header_comments)
    info.kernel = header.get("kernel")
    info.lab = header.get("lab")
    if len(raw) <= COUNTED_BYTES:
        info.steps = len(_STEP_LINE.findall(raw, len(head.encode())))
        if raw and not raw.endswith(b"\n") and raw[raw.rfind(b"\n") + 1 :].strip():
            info.truncated = raw.count(b"\n") + 1  # a last line without its newline: cut off mid-write
    with contextlib.suppress(ValueError, KeyError):
        info.started = datetime.fromisoformat(header["started"].replace("Z", "+00:00"))
    return info


def _header_text(raw: bytes) -> str | None:
    """The file's lines up to and including its first line that is not blank or a comment (the version line)."""
    at = 0
    while at < len(raw):
        end = raw.find(b"\n", at)
        if end < 0:
            return None  # the version line is not (whole) within the bytes read
        line = raw[at:end].strip()
        if line and not line.startswith(b"#"):
            return raw[: end + 1].decode("utf-8", errors="replace")
        at = end + 1
    return None
