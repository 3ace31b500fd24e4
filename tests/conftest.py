"""Shared fixtures for the casty_trio test suite."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from casty_trio import ActorSystem
from casty_trio.testing import TestProbe


@pytest.fixture
async def system() -> AsyncIterator[ActorSystem]:
    """A running ActorSystem, shut down (and every task it owns cancelled) at teardown."""
    async with ActorSystem(name="test") as sys:
        yield sys


@pytest.fixture
def probe(system: ActorSystem) -> TestProbe:
    """A probe actor named ``probe`` in the ``system`` fixture."""
    return TestProbe(system, "probe")
