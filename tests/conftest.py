"""Fixtures shared by the engine's tests: a live lab on the real kernel (helpers are in tests/helpers.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from playground.lab import Lab
from tests.sshd import sshd, sshd_server  # noqa: F401 (fixtures: a real OpenSSH server for remote hosts)


@pytest.fixture
async def lab() -> AsyncIterator[Lab]:
    lab = await Lab.start()
    try:
        yield lab
    finally:
        await lab.shutdown()
