"""Fixtures shared by the engine's tests: a live lab on the real kernel (helpers are in tests/helpers.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from playground.lab import Lab


@pytest.fixture
async def lab() -> AsyncIterator[Lab]:
    lab = await Lab.start()
    try:
        yield lab
    finally:
        await lab.shutdown()
