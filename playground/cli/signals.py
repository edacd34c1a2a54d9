"""SIGTERM, SIGHUP and SIGINT: they stop sockplay at any moment, quietly, with 128 + the signal's number.

Three phases. Before anything is started (the interpreter loading sockplay, the arguments
being parsed) there is nothing to clean up: `exit_quietly_on_signals` makes a signal end
the process at once, with no traceback. While a lab runs, `StopOnSignals` makes a signal
cancel the run, so the lab is shut down before the exit; the Python-level handler runs
between two bytecodes of the main thread, so a run whose steps never give the event loop
a turn is stopped too (the runner asks `check` after every step), and one whose main thread
cannot get back at all (blocked on a full pipe) exits after STOP_WATCHDOG. The TUI handles its own
keys: `default_signals` gives it the interpreter's defaults back. A stop signal that was
ignored when sockplay started (a shell's `&` ignores SIGINT, nohup SIGHUP) stays ignored
in every phase, as a C program's would: sockplay itself never ignores one.
"""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType

STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)
# How long a stopped run may take to shut its lab down before sockplay exits regardless.
STOP_WATCHDOG = 3.0


def _exit_now(signum: int, _frame: FrameType | None) -> None:
    os._exit(128 + signum)


def handled_stop_signals() -> list[int]:
    """The stop signals sockplay handles: those its starter did not ignore."""
    return [signum for signum in STOP_SIGNALS if signal.getsignal(signum) != signal.SIG_IGN]


def exit_quietly_on_signals() -> None:
    """Until a lab starts: a stop signal ends the process at once with 128 + its number."""
    for signum in handled_stop_signals():
        signal.signal(signum, _exit_now)


def default_signals() -> None:
    """The interpreter's own handling back (the TUI reads Ctrl-C as a key)."""
    for signum in handled_stop_signals():
        signal.signal(signum, signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL)


class StopOnSignals:
    """While installed, a stop signal cancels the current task (once), and `check` raises after it.

    Further signals while the lab is being shut down are noted and ignored: the shutdown
    finishes, so nothing is left behind.
    """

    def __init__(self) -> None:
        import asyncio  # here: the module loads before anything else, and asyncio takes 40 ms
        import threading

        self._timer = threading.Timer
        self._cancelled_error = asyncio.CancelledError
        self.signum: int | None = None
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        self._previous = {signum: signal.getsignal(signum) for signum in handled_stop_signals()}
        self._unwinding = False
        for signum in self._previous:
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if self.signum is not None:
            return
        self.signum = signum
        # Wake the loop if it waits (a blocked step, a sleep), and cancel the run there.
        self._loop.call_soon_threadsafe(self._cancel)
        # The main thread may never get there: blocked writing to a pipe nobody reads (a
        # paused pager). Then sockplay goes anyway, a little later; its lab processes see
        # their control channels close and exit on their own.
        watchdog = self._timer(STOP_WATCHDOG, os._exit, (128 + signum,))
        watchdog.daemon = True
        watchdog.start()

    def _cancel(self) -> None:
        if not self._unwinding and self._task is not None and not self._task.done():
            self._task.cancel()

    @property
    def stopped(self) -> bool:
        return self.signum is not None

    def check(self) -> None:
        """Raise CancelledError if a stop signal came (for code that runs without yielding)."""
        if self.signum is not None and not self._unwinding:
            raise self._cancelled_error

    def unwinding(self) -> None:
        """The run is being unwound: no more cancelling (the lab's shutdown must finish)."""
        self._unwinding = True
        task = self._task
        if task is not None:
            while task.cancelling():
                task.uncancel()

    def say(self) -> int:
        """Say what stopped the run; the exit code to return."""
        assert self.signum is not None
        print(f"sockplay: stopped by {signal.Signals(self.signum).name}; the lab was shut down", file=sys.stderr)
        return 128 + self.signum

    def remove(self) -> None:
        """The handlers from before (quiet exits, in the command): the lab is gone."""
        for signum, previous in self._previous.items():
            signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
