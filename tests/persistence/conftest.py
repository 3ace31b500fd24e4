"""Fixtures for the persistence tests: every journal of the package, behind one fixture."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from casty_trio import EventJournal, InMemoryJournal, SqliteJournal

from ._events import Account, Color, Deposited, Renamed, Tagged, Withdrawn

EVENT_TYPES = (Deposited, Withdrawn, Renamed, Tagged, Color, Account)


@pytest.fixture(params=["memory", "sqlite"])
async def journal(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[EventJournal]:
    """Each journal implementation in turn, fresh for every test."""
    if request.param == "memory":
        yield InMemoryJournal()
        return
    async with SqliteJournal(tmp_path / "journal.db") as sqlite:
        yield sqlite
