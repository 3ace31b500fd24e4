"""The values of shard replication: the public shapes (:class:`ReplicateEvents`,
:class:`ReplicateEventsAck`) and the messages between a region, its replica actor and its
replica links (all in one process). What travels between nodes is in ``_wire.py``.
"""

from __future__ import annotations

from typing import Any

import attrs

from ..._core import ActorRef, NodeAddress
from ...persistence import PersistedEvent

__all__ = [
    "FLUSH",
    "FLUSH_SOON",
    "TICK",
    "Fenced",
    "Flush",
    "FlushSoon",
    "PushHistory",
    "ReplicateEvents",
    "ReplicateEventsAck",
    "StartSync",
    "SyncDone",
    "Tick",
]


@attrs.frozen
class ReplicateEvents:
    """Persisted events of one entity on their way to a replica.

    Sent (encoded on the wire) by the primary of the entity's shard after persisting them, and
    by a holder of the shard's history to a replica or new primary that lacks them.

    Args:
        entity_id: Entity whose events are being replicated.
        shard_id: Shard that owns the entity.
        events: The events, in sequence-number order.
        reply_to: Who gets the :class:`ReplicateEventsAck` (None when nobody waits).

    Examples:
        >>> evt = PersistedEvent(1, "opened", 0.0)
        >>> ReplicateEvents("user-1", shard_id=7, events=(evt,))  # doctest: +ELLIPSIS
        ReplicateEvents(entity_id='user-1', shard_id=7, ...)
    """

    entity_id: str
    shard_id: int
    events: tuple[PersistedEvent, ...]
    reply_to: ActorRef[Any] | None = None


@attrs.frozen
class ReplicateEventsAck:
    """A replica holds every event of ``entity_id`` up to ``sequence_nr``.

    Args:
        entity_id: Entity whose events were replicated.
        sequence_nr: Highest sequence number the replica persisted, with no gap before it.

    Examples:
        >>> ReplicateEventsAck("user-1", sequence_nr=5)
        ReplicateEventsAck(entity_id='user-1', sequence_nr=5)
    """

    entity_id: str
    sequence_nr: int


# ---------------------------------------------------------------------------- internal messages


class StartSync:
    """Region to its replica actor: this node is ``shard``'s new primary (allocation
    ``epoch``); copy the history the ``sources`` hold, then answer :class:`SyncDone`."""

    __slots__ = ("epoch", "shard", "sources")

    def __init__(self, shard: int, epoch: int, sources: tuple[NodeAddress, ...]) -> None:
        self.shard = shard
        self.epoch = epoch
        self.sources = sources


class SyncDone:
    """Replica actor to its region: ``shard``'s history is here; serve it."""

    __slots__ = ("shard",)

    def __init__(self, shard: int) -> None:
        self.shard = shard


class PushHistory:
    """To the replica actor (as primary): send ``node`` the history of ``shard`` beyond
    ``known`` (every entity of the shard when ``known`` is None)."""

    __slots__ = ("known", "node", "shard")

    def __init__(self, shard: int, node: NodeAddress, known: dict[str, int] | None) -> None:
        self.shard = shard
        self.node = node
        self.known = known


class Fenced:
    """Replica link to its region: a replica knows allocation ``epoch`` of ``shard``."""

    __slots__ = ("epoch", "shard")

    def __init__(self, shard: int, epoch: int) -> None:
        self.shard = shard
        self.epoch = epoch


class Tick:
    __slots__ = ()


TICK = Tick()


class FlushSoon:
    """To a replica link: events wait for its replica (see :meth:`Replication.defer`); send
    them after ``_LAZY_DELAY``."""

    __slots__ = ()


class Flush:
    """The replica link's timer: send the events waiting for its replica now."""

    __slots__ = ()


FLUSH_SOON = FlushSoon()
FLUSH = Flush()
