"""Fixtures shared by the engine's tests: a live lab on the real kernel (helpers are in tests/helpers.py)."""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator

import pytest

from playground.lab import Lab
from tests.sshd import sshd, sshd_server  # noqa: F401 (fixtures: a real OpenSSH server for remote hosts)

# The suite sends stop signals to the sockplay processes it starts, which keep a signal ignored
# if it was at their start (as a C program does). A suite started in the background (a shell's
# `&` ignores SIGINT, nohup SIGHUP) would hand that on: give its children the defaults.
_DEFAULTS = {signal.SIGINT: signal.default_int_handler, signal.SIGHUP: signal.SIG_DFL, signal.SIGTERM: signal.SIG_DFL}
for _signum, _default in _DEFAULTS.items():
    if signal.getsignal(_signum) == signal.SIG_IGN:
        signal.signal(_signum, _default)


@pytest.fixture
async def lab() -> AsyncIterator[Lab]:
    lab = await Lab.start()
    try:
        yield lab
    finally:
        await lab.shutdown()


@pytest.fixture
async def exec_lab() -> AsyncIterator[Lab]:
    """A lab whose scripts may run outside programs (`spawn ... exec`, as `--allow-exec` allows)."""
    lab = await Lab.start()
    lab.lifecycle.outside.allowed = True
    try:
        yield lab
    finally:
        await lab.shutdown()
