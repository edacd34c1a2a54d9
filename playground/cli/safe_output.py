"""What sockplay prints from a script reaches a terminal: its control characters are shown, never obeyed.

A script is untrusted (recordings are downloaded and replayed), and a comment, a header
line or an error message quoting one may hold an escape sequence: OSC 52 writes the
user's clipboard, others set the window's title or clear the screen. Every character that
a terminal would act on (C0 controls but tab and newline, DEL, the C1 controls, and the
bidirectional overrides that reorder what is shown) is printed as an escape: `\\x1b`, `\\u202e`.
"""

from __future__ import annotations

import io
import re
from typing import TextIO

_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_controls(text: str) -> str:
    """The text with every character a terminal would obey written out as an escape."""
    return _UNSAFE.sub(_escape, text)


class EscapingStream(io.TextIOBase):
    """A text stream that escapes control characters before they reach the one it wraps."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self.stream = stream

    def write(self, text: str) -> int:
        self.stream.write(escape_controls(text))
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def fileno(self) -> int:
        return self.stream.fileno()

    def isatty(self) -> bool:
        return self.stream.isatty()

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:  # type: ignore[override]  # typeshed's TextIO has a plain attribute; ours reads the stream's
        return self.stream.encoding


def escape_output() -> None:
    """From now on, everything printed on standard output and standard error is escaped."""
    import sys

    if not isinstance(sys.stdout, EscapingStream):
        sys.stdout = EscapingStream(sys.stdout)
    if not isinstance(sys.stderr, EscapingStream):
        sys.stderr = EscapingStream(sys.stderr)
