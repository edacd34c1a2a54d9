"""The rule for outside programs in a script file: `spawn NAME exec ...` runs only with --allow-exec.

A script or recording may come from anywhere, and the program it names would run with the
user's rights, outside any sandbox (the lab's network namespace keeps its packets in, nothing
else). So `run` and `replay` refuse such a script before anything runs, naming each line,
unless the user passes --allow-exec; observed lines (`#> ...`) are text and need nothing.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playground.script.model import Script

ALLOW_EXEC_HELP = "let the script run outside programs (spawn NAME exec ...): they run with your rights"


def exec_lines(script: Script) -> list[tuple[int, str]]:
    """(line number, the program's words) of each `spawn NAME exec ...` line."""
    from playground.script.model import Spawn

    return [
        (line.number, " ".join(line.node.command))
        for line in script.steps()
        if isinstance(line.node, Spawn) and line.node.command
    ]


def refuse_exec(script: Script, path: str, allowed: bool) -> bool:
    """Say why a script that runs outside programs does not run (unless allowed); True if it is refused."""
    found = exec_lines(script)
    if not found or allowed:
        return False
    from playground.cli.safe_output import escape_controls

    for number, words in found[:5]:
        print(f"{path}:{number}: would run the program {escape_controls(words[:200])}", file=sys.stderr)
    print(
        f"sockplay: refusing to run {path}: it runs outside programs, with your rights. If you trust it, "
        "pass --allow-exec. Nothing was run.",
        file=sys.stderr,
    )
    return True


def refuse_exec_in_tui(script: Script, path: str, check: bool) -> bool:
    """The TUI's replay runs no outside program (only `replay --check --allow-exec` does); True if refused."""
    if check or not exec_lines(script):
        return False
    print(
        f"sockplay: {path} runs outside programs: replay it headless with --check --allow-exec "
        "(the TUI's replay runs none)",
        file=sys.stderr,
    )
    return True


def refuse_exec_export(script: Script, path: str) -> bool:
    """An exported program starts Python processes only: a script with an outside program is not exported."""
    found = exec_lines(script)
    if not found:
        return False
    number, _ = found[0]
    print(
        f"{path}:{number}: an outside program (spawn ... exec) cannot be exported: the exported program "
        "starts its own processes only. Nothing was written.",
        file=sys.stderr,
    )
    return True
