"""An event journal kept in memory: for tests, examples and entities that need no durability."""

from __future__ import annotations

import bisect
from collections.abc import Sequence

import trio

from ._journal import PersistedEvent, Snapshot

__all__ = ["InMemoryJournal"]


def _sequence_nr(event: PersistedEvent) -> int:
    return event.sequence_nr


class _History:
    __slots__ = ("events", "numbers")

    def __init__(self) -> None:
        self.events: list[PersistedEvent] = []  # sorted by sequence_nr
        self.numbers: set[int] = set()


class InMemoryJournal:
    """An :class:`~casty_trio.EventJournal` in a dictionary; everything is lost with the object.

    Events and snapshots are stored as the objects given (not copied or encoded), so any value
    works as an event or a state. One journal may be shared by several actor systems running in
    the same ``trio.run`` (it then plays a database all nodes can reach). Every method is a
    checkpoint and completes at once; it keeps the whole :class:`~casty_trio.EventJournal`
    contract (idempotent by sequence number, ordered loads, latest snapshot wins).

    Examples:
        >>> import trio
        >>> async def main() -> list[int]:
        ...     journal = InMemoryJournal()
        ...     late, early = PersistedEvent(2, "b", 0.0), PersistedEvent(1, "a", 0.0)
        ...     await journal.persist("a", [late, early])
        ...     await journal.persist("a", [PersistedEvent(2, "dup", 0.0)])  # ignored
        ...     return [e.sequence_nr for e in await journal.load("a")]
        >>> trio.run(main)
        [1, 2]
    """

    __slots__ = ("_histories", "_snapshots")

    def __init__(self) -> None:
        self._histories: dict[str, _History] = {}
        self._snapshots: dict[str, Snapshot] = {}

    async def persist(self, entity_id: str, events: Sequence[PersistedEvent]) -> None:
        """Store ``events``, skipping sequence numbers already stored (a checkpoint)."""
        await trio.lowlevel.checkpoint()
        self.persist_nowait(entity_id, events)

    def persist_nowait(self, entity_id: str, events: Sequence[PersistedEvent]) -> None:
        """:meth:`persist` without the checkpoint: the store never blocks. Not a checkpoint.

        Shard replicas use it to store a replicated batch as soon as it arrives.

        Raises:
            TypeError: An element of ``events`` is not a :class:`PersistedEvent`.

        Examples:
            >>> journal = InMemoryJournal()
            >>> journal.persist_nowait("a", [PersistedEvent(1, "x", 0.0)])
        """
        for event in events:
            if not isinstance(event, PersistedEvent):
                raise TypeError(f"expected PersistedEvent values, got {type(event).__name__}")
        history = self._histories.get(entity_id)
        if history is None:
            history = self._histories[entity_id] = _History()
        stored, numbers = history.events, history.numbers
        for event in events:
            number = event.sequence_nr
            if number in numbers:
                continue
            numbers.add(number)
            if not stored or stored[-1].sequence_nr < number:
                stored.append(event)
            else:
                bisect.insort(stored, event, key=_sequence_nr)

    async def load(self, entity_id: str, from_sequence_nr: int = 0) -> list[PersistedEvent]:
        """Events with ``sequence_nr >= from_sequence_nr``, in order (a checkpoint)."""
        await trio.lowlevel.checkpoint()
        history = self._histories.get(entity_id)
        if history is None:
            return []
        stored = history.events
        start = bisect.bisect_left(stored, from_sequence_nr, key=_sequence_nr)
        return stored[start:]

    async def save_snapshot(self, entity_id: str, snapshot: Snapshot) -> None:
        """Keep ``snapshot`` unless a newer one is stored (a checkpoint)."""
        await trio.lowlevel.checkpoint()
        if not isinstance(snapshot, Snapshot):
            raise TypeError(f"expected a Snapshot, got {type(snapshot).__name__}")
        current = self._snapshots.get(entity_id)
        if current is None or current.sequence_nr <= snapshot.sequence_nr:
            self._snapshots[entity_id] = snapshot

    async def load_snapshot(self, entity_id: str) -> Snapshot | None:
        """The latest snapshot, or None (a checkpoint)."""
        await trio.lowlevel.checkpoint()
        return self._snapshots.get(entity_id)

    async def highest_sequence_nr(self, entity_id: str) -> int:
        """The highest stored sequence number; 0 when none (a checkpoint)."""
        await trio.lowlevel.checkpoint()
        history = self._histories.get(entity_id)
        return history.events[-1].sequence_nr if history and history.events else 0
