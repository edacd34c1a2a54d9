"""The one error the script parser raises."""

from __future__ import annotations


class LineError(Exception):
    """A problem at a column of the line being parsed (1-based)."""

    def __init__(self, column: int, message: str) -> None:
        super().__init__(message)
        self.column = column
        self.message = message


class ScriptError(Exception):
    """A bad script: `FILE:LINE:COLUMN: message`. Nothing was executed."""

    def __init__(self, path: str, line: int, column: int, message: str) -> None:
        super().__init__(f"{path}:{line}:{column}: {message}")
        self.path = path
        self.line = line
        self.column = column
        self.message = message
