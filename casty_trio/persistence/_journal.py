"""The values a journal stores and the :class:`EventJournal` protocol every journal implements."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import attrs

__all__ = ["EventJournal", "NonBlockingJournal", "PersistedEvent", "Snapshot"]


def _positive(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 1:
        raise ValueError(f"{attribute.name} must be at least 1, got {value}")


def _not_negative(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must not be negative, got {value}")


@attrs.frozen
class PersistedEvent:
    """One event of one entity, as stored in a journal.

    Args:
        sequence_nr: Position of the event in its entity's history; the first event is 1 and
            every event persisted by an event-sourced actor gets the next number.
        event: The user's event (a msgspec Struct, attrs class, dataclass, Enum or builtin).
        timestamp: When the event was persisted, in seconds since the epoch (``time.time()``).

    Examples:
        >>> PersistedEvent(1, "deposited 10", 1700000000.0).sequence_nr
        1
    """

    sequence_nr: int = attrs.field(validator=_positive)
    event: Any
    timestamp: float


@attrs.frozen
class Snapshot:
    """An entity's state as of ``sequence_nr``: recovery only replays the events after it.

    Args:
        sequence_nr: Sequence number of the last event folded into ``state``.
        state: The entity's state after that event.
        timestamp: When the snapshot was taken, in seconds since the epoch.

    Examples:
        >>> Snapshot(100, {"balance": 42}, 1700000000.0).state
        {'balance': 42}
    """

    sequence_nr: int = attrs.field(validator=_not_negative)
    state: Any
    timestamp: float


class EventJournal(Protocol):
    """Where event-sourced entities keep their events and snapshots.

    The contract every implementation keeps (``tests/persistence/test_journal_contract.py``
    checks it for each journal of the package):

    - **Idempotent by sequence number.** :meth:`persist` stores each event unless an event with
      the same ``sequence_nr`` is already stored for that entity; such a duplicate is silently
      ignored and the stored event is kept (within one call, the first one wins). Batches may
      arrive out of order or overlap, as replicas receive them.
    - **Ordered.** :meth:`load` returns events sorted by ``sequence_nr``, whatever the order
      they were persisted in.
    - **Atomic per call.** The events of one :meth:`persist` call are stored all or none.
    - **Latest snapshot wins.** :meth:`save_snapshot` keeps the snapshot with the highest
      ``sequence_nr``; saving one older than the stored one is ignored, an equal one replaces it.
    - **Entities are independent**, identified by ``entity_id`` (any string).
    - Failures of the storage are raised as :class:`~casty_trio.JournalError` (with the original
      error as ``__cause__``); use after ``aclose()`` raises
      :class:`~casty_trio.JournalClosedError`.

    A journal does not check that a single writer per entity is running: the event-sourced
    actor (and, in a cluster, sharding) guarantees it.

    Every method is async and a checkpoint.

    Examples:
        >>> async def history(journal: EventJournal) -> list[object]:
        ...     await journal.persist("acc-1", [PersistedEvent(1, "opened", 0.0)])
        ...     return [e.event for e in await journal.load("acc-1")]
    """

    async def persist(self, entity_id: str, events: Sequence[PersistedEvent]) -> None:
        """Store ``events`` of ``entity_id``, skipping sequence numbers already stored.

        Args:
            entity_id: The entity the events belong to.
            events: The events, normally with consecutive sequence numbers; any order works.

        Returns:
            None, once every new event is stored durably (as durable as the journal is).

        Raises:
            JournalError: Nothing of this call was stored.
        """
        ...

    async def load(self, entity_id: str, from_sequence_nr: int = 0) -> list[PersistedEvent]:
        """Events of ``entity_id`` with ``sequence_nr >= from_sequence_nr``, in order.

        Args:
            entity_id: The entity.
            from_sequence_nr: First sequence number wanted (inclusive, like Akka's
                ``fromSequenceNr``); 0 or 1 loads the whole history.

        Returns:
            A new list (empty for an unknown entity).
        """
        ...

    async def save_snapshot(self, entity_id: str, snapshot: Snapshot) -> None:
        """Keep ``snapshot`` as the entity's latest, unless a newer one is stored."""
        ...

    async def load_snapshot(self, entity_id: str) -> Snapshot | None:
        """The entity's snapshot with the highest sequence number, or None."""
        ...

    async def highest_sequence_nr(self, entity_id: str) -> int:
        """The highest ``sequence_nr`` among the entity's stored events; 0 when there are none."""
        ...


@runtime_checkable
class NonBlockingJournal(Protocol):
    """A journal that can also store without blocking (:class:`~casty_trio.InMemoryJournal`).

    Shard replicas store replicated batches into such a journal as they arrive, in the link's
    reader, instead of handing them to an actor first: a replicated write is confirmed sooner.
    Event-sourced actors persist into it in place too, so persisting a command's events is not
    a checkpoint of its own there (the actor's mailbox loop still yields between batches).

    Examples:
        >>> from casty_trio import InMemoryJournal
        >>> isinstance(InMemoryJournal(), NonBlockingJournal)
        True
    """

    def persist_nowait(self, entity_id: str, events: Sequence[PersistedEvent]) -> None:
        """:meth:`EventJournal.persist` at once, without a checkpoint; same contract."""
        ...
