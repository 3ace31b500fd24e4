"""The region's routing of entity messages: where an envelope goes once the region has it.

:class:`RegionRoutes` holds the routing methods of the region actor (``_region.py``), a base
of its state class ``_Region``: an envelope goes to a local entity when this node hosts the
shard (the entity is started on its first message), to the region of the shard's home node
otherwise, and into a bounded buffer while the home is unknown (asked of the coordinator) or
moving (handoff); the buffer is flushed once the home is known. What the ref side does before
a message reaches the region is in ``_routing.py``.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import attrs

from .._core import ActorContext, ActorRef, NodeAddress
from ..config import ShardingConfig
from ..persistence import EventSourcedBehavior
from ._deliveries import Deliveries
from ._hosted import ACTIVE as _ACTIVE
from ._hosted import STOPPING as _STOPPING
from ._hosted import Hosted as _Hosted
from ._routing import Entity, RegionRouting
from ._sharded import ShardedBehavior, entity_shard
from ._wire import GetShardHome
from .replication._replication import Replication

__all__ = ["RegionRoutes"]

_log = logging.getLogger("casty_trio.sharding")

_SHARD_CACHE_SIZE = 100_000


class RegionRoutes:
    """The routing methods of the region's state (``_Region``, which sets every attribute
    declared here)."""

    ctx: ActorContext[Any]
    name: str
    path: str
    spec: ShardedBehavior[Any]
    num_shards: int
    settings: ShardingConfig
    routing: RegionRouting
    me: NodeAddress
    homes: dict[int, NodeAddress]
    shard_cache: dict[str, int]
    hosted: dict[int, _Hosted]
    by_ref: dict[ActorRef[Any], Entity]
    buffers: dict[int, deque[tuple[str, Any]]]
    buffered: int
    requested: set[int]
    deliveries: Deliveries
    registered: bool
    replication: Replication | None

    if TYPE_CHECKING:  # defined by ``_Region``

        def to_coordinator(self, message: Any) -> None: ...

        def dead_letter(self, eid: str, message: Any) -> None: ...

    def shard_of(self, eid: str) -> int:
        """``entity_shard`` of ``eid``, memoized: MD5 is the largest cost of a routed message."""
        cache = self.shard_cache
        shard = cache.get(eid)
        if shard is None:
            if len(cache) >= _SHARD_CACHE_SIZE:
                cache.clear()
            shard = cache[eid] = entity_shard(eid, self.num_shards)
        return shard

    def homes_changed(self) -> None:
        """Call after any change of ``homes`` or ``hosted``: the ref's remote fast path
        (``RegionRouting.away``) holds routes worked out from them."""
        self.routing.away.clear()

    def route(self, eid: str, message: Any, forwarded: bool, shard: int | None = None) -> None:
        if shard is None:
            shard = self.shard_of(eid)
        hosted = self.hosted.get(shard)
        if hosted is not None:
            if hosted.state < _STOPPING:
                self.deliver_local(hosted, eid, message)
                return
        elif forwarded:
            # The sender thought this node is the home and it is not: ask the coordinator
            # rather than trust a cache that may point back at the sender.
            self.homes.pop(shard, None)
            self.homes_changed()
        elif self.forward(eid, shard, message):
            return
        self.buffer(shard, eid, message)

    def deliver_local(self, hosted: _Hosted, eid: str, message: Any) -> None:
        entity = hosted.entities.get(eid)
        if entity is None:
            entity = self.start_entity(hosted, eid)
            if entity is None:
                self.dead_letter(eid, message)
                return
        elif entity.stopping:
            entity.waiting.append(message)
            return
        routing = self.routing
        entity.last = routing.tick
        entity.deliver(message)
        if hosted.state == _ACTIVE and eid not in routing.pending:
            routing.fast[eid] = entity

    def start_entity(self, hosted: _Hosted, eid: str) -> Entity | None:
        try:
            behavior = self.spec.entity_factory(eid)
            if self.replication is not None:
                if not isinstance(behavior, EventSourcedBehavior):
                    raise TypeError(
                        f"sharded type {self.name} is replicated: its entity factory must "
                        f"return Behaviors.event_sourced(...), not {type(behavior).__name__}"
                    )
                replicator = self.replication.replicator(hosted.shard)
                behavior = attrs.evolve(behavior, replicator=replicator)
            ref = self.ctx.spawn(behavior, "e." + quote(eid, safe=""))
        except Exception:
            _log.exception("%s: could not start entity %r", self.path, eid)
            return None
        self.ctx.watch(ref)
        entity = Entity(eid, hosted.shard, ref, self.routing.tick)
        hosted.entities[eid] = entity
        self.by_ref[ref] = entity
        return entity

    def forward(self, eid: str, shard: int, message: Any) -> bool:
        """Send ``message`` to the region of ``shard``'s home when that is known to be another
        node (and the shard is not hosted here); False, doing nothing, otherwise.

        The one way a message leaves for a remote home, from the region (:meth:`route`) and
        from the ref (``RegionRouting._route``); a message the link refuses is a dead letter.
        The ref sends the id's later messages the same way itself (``RegionRouting.away``).
        """
        home = self.homes.get(shard)
        if home is None or home == self.me or shard in self.hosted:
            return False
        deliveries = self.deliveries
        sender = deliveries.sender_to(home)
        prefix = deliveries.prefix(eid, shard)
        if deliveries.send(sender, eid, prefix, message):
            self.routing.went_away(eid, prefix, sender)
        else:
            self.dead_letter(eid, message)
        return True

    def buffer(self, shard: int, eid: str, message: Any) -> None:
        if self.buffered >= self.settings.buffer_size:
            _log.warning(
                "%s: buffer full (%d messages waiting for shard homes); message for %r dropped",
                self.path,
                self.buffered,
                eid,
            )
            self.dead_letter(eid, message)
            return
        queue = self.buffers.get(shard)
        if queue is None:
            queue = self.buffers[shard] = deque()
        queue.append((eid, message))
        self.buffered += 1
        if shard not in self.hosted:
            self.request_home(shard)

    def request_home(self, shard: int) -> None:
        if shard in self.requested:
            return
        self.requested.add(shard)
        if self.registered:
            self.to_coordinator(GetShardHome(shard, self.me.host, self.me.port))

    def flush(self, shard: int) -> None:
        queue = self.buffers.pop(shard, None)
        if queue is None:
            return
        self.buffered -= len(queue)
        for eid, message in queue:
            self.route(eid, message, False)
