"""The ref side of a shard region: what ``spawn(Behaviors.sharded(...), name)`` returns.

:class:`RegionRouting` is that ref's target. It hands envelopes for entities running here straight
to their mailboxes (one dict lookup, no hop through the region actor) and everything else to the
region; a per-entity count of envelopes queued in the region keeps the fast path shut while any
is queued, so the fast path never overtakes a message of the same sender.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs

from .._core import ActorRef, NodeAddress

if TYPE_CHECKING:
    from ._region import _Region

__all__ = ["Entity", "RegionRouting", "RegionStatistics"]


@attrs.frozen
class RegionStatistics:
    """A snapshot of one node's region of a sharded type.

    Attributes:
        shards: The shards this node hosts.
        entities: Entities running here.
        buffered: Messages waiting for a shard home.
        coordinator: Where this region believes the type's coordinator runs.
    """

    shards: frozenset[int]
    entities: int
    buffered: int
    coordinator: NodeAddress | None


class Entity:
    """A running entity as its region and the fast path see it."""

    __slots__ = ("deliver", "eid", "last", "ref", "shard", "stopping", "waiting")

    def __init__(self, eid: str, shard: int, ref: ActorRef[Any], tick: int) -> None:
        self.eid = eid
        self.shard = shard
        self.ref = ref
        self.deliver = ref.tell
        self.last = tick
        self.stopping = False
        self.waiting: list[Any] = []


class RegionRouting:
    """The target behind the ref that ``spawn(Behaviors.sharded(...), name)`` returns.

    ``deliver`` is that ref's ``tell``: the fast path to running entities, else the region.
    """

    __slots__ = ("fast", "pending", "region", "state", "tick")

    region: ActorRef[Any]  # set right after the region is spawned

    def __init__(self) -> None:
        self.fast: dict[str, Entity] = {}
        self.pending: dict[str, int] = {}
        self.tick = 0
        self.state: _Region | None = None

    def statistics(self) -> RegionStatistics:
        """What the region holds right now."""
        state = self.state
        if state is None:
            return RegionStatistics(frozenset(), 0, 0, None)
        return RegionStatistics(
            frozenset(state.hosted),
            sum(len(h.entities) for h in state.hosted.values()),
            state.buffered,
            state.coordinator_at,
        )

    def deliver(self, envelope: Any) -> None:
        try:
            eid = envelope.entity_id
        except AttributeError:
            raise TypeError(
                f"a sharded region takes ShardEnvelope messages, not {type(envelope).__name__}"
            ) from None
        entity = self.fast.get(eid)
        if entity is not None:
            entity.last = self.tick
            entity.deliver(envelope.message)
            return
        pending = self.pending
        pending[eid] = pending.get(eid, 0) + 1
        self.region.tell(envelope)

    def add_watcher(self, watcher: Callable[[ActorRef[Any]], None]) -> None:
        self.region._target.add_watcher(watcher)

    def remove_watcher(self, watcher: Callable[[ActorRef[Any]], None]) -> None:
        self.region._target.remove_watcher(watcher)
