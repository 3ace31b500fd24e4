"""Persistence and event sourcing: journals, snapshots and event-sourced actors.

Imports only ``casty_trio._core`` (plus ``_errors`` and ``config``); the serialization layer is
an independent sibling, so durable journals encode with msgspec on their own.
"""

from ._event_sourced import (
    EventSourcedBehavior,
    PersistedBehavior,
    Replicator,
    SnapshotEvery,
    recover,
)
from ._journal import EventJournal, NonBlockingJournal, PersistedEvent, Snapshot
from ._memory import InMemoryJournal
from ._sqlite import SqliteJournal

__all__ = [
    "EventJournal",
    "EventSourcedBehavior",
    "InMemoryJournal",
    "NonBlockingJournal",
    "PersistedBehavior",
    "PersistedEvent",
    "Replicator",
    "Snapshot",
    "SnapshotEvery",
    "SqliteJournal",
    "recover",
]
