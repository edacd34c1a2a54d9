"""Notices a terminal that has gone away when no SIGHUP said so.

When the program that held a pseudo-terminal's other side dies, and the terminal was not
sockplay's controlling terminal, the kernel sends no signal: Textual's input thread then
reads end-of-file forever and the app, with its lab, would run on with nobody to see it.
"""

from __future__ import annotations

import os
import select

GONE = select.POLLHUP | select.POLLERR | select.POLLNVAL


def terminal_gone(fd: int) -> bool:
    """Whether this descriptor's terminal has hung up (or the descriptor is no longer open)."""
    poller = select.poll()
    poller.register(fd, 0)  # POLLHUP, POLLERR and POLLNVAL are always reported
    try:
        return any(events & GONE for _, events in poller.poll(0))
    except OSError:
        return True


def input_fd() -> int | None:
    """The descriptor the app reads keys from, if it is a terminal."""
    try:
        return 0 if os.isatty(0) else None
    except OSError:
        return None
