"""`thread NAME in PROC`: the line that starts a thread actor in a process (script.md, "Many sockets")."""

from __future__ import annotations

from playground.script.checks import PROCESS_NAME, RESERVED, ProcessScope, Scope, unknown_process
from playground.script.cursor import Cursor
from playground.script.errors import LineError
from playground.script.model import Thread

_USAGE = "'thread NAME in PROC', as in 'thread worker in server'"


def thread_line(cursor: Cursor, scope: Scope, delay: float | None) -> Thread:
    """Read the line; the new actor shares its process's names from here on (the same sets)."""
    cursor.next()
    name = cursor.expect("name", f"a thread name: {_USAGE}")
    if not PROCESS_NAME.match(name.text):
        raise LineError(
            name.column,
            f"{name.text!r} is not a thread name: use lowercase letters, digits, '_' and '-', starting with a letter",
        )
    if name.text in RESERVED:
        raise LineError(name.column, f"{name.text!r} is a reserved word; choose another name")
    if name.text in scope.processes:
        kind = "thread" if scope.processes[name.text].thread_of is not None else "process"
        raise LineError(name.column, f"a {kind} named {name.text!r} already exists; name the thread differently")
    word = cursor.expect("name", f"'in' and the process: {_USAGE}")
    if word.text != "in":
        raise LineError(word.column, f"expected 'in' and the process: {_USAGE}")
    proc_tok = cursor.expect("name", f"the process the thread belongs to: {_USAGE}")
    proc = scope.processes.get(proc_tok.text)
    if proc is None:
        raise LineError(proc_tok.column, unknown_process(proc_tok.text, scope))
    if not cursor.done():
        raise LineError(cursor.column(), f"unexpected {cursor.peek().text!r}")  # type: ignore[union-attr]
    # A thread started by a thread belongs to the same process, as pthread_create's would.
    owner = proc.thread_of or proc_tok.text
    shared = scope.processes[owner]
    scope.processes[name.text] = ProcessScope(shared.fds, shared.children, 0, shared.data, owner)
    return Thread(name.text, owner, delay)


def check_thread_free(actor: str, column: int, proc: ProcessScope) -> None:
    """A thread makes one call at a time: in a script, its blocked call's outcome comes before its next call."""
    if proc.thread_of is not None and proc.blocked > 0:
        raise LineError(
            column,
            f"{actor} is a thread blocked in a call: a thread makes one call at a time "
            f"(state that call's outcome first, as in '{actor}: ... = OUTCOME')",
        )
