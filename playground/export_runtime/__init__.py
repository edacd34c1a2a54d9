"""The runtime of an exported program (`sockplay export --python`), as the text pasted into it.

Its parts are the sections of one standalone program, joined in this order: the calls
as C has them, a lab process that runs them, and the conductor that forks the processes
and sends each its steps. They are never imported, and their names cross from part to
part (ruff's undefined-name check is off for them; tests/playground/test_export_hostile.py
checks the joined program's names instead).
"""

from __future__ import annotations

from pathlib import Path

PARTS = ("calls.py", "process.py", "conductor.py")


def runtime_text() -> str:
    """The runtime's source, as one program."""
    here = Path(__file__).parent
    return "\n\n\n".join((here / name).read_text().strip("\n") for name in PARTS)
