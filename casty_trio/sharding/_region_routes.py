"""The region's routes: where an entity's message goes once the region has it.

:class:`Routes` is owned by the region actor (``_region.py``): an envelope goes to a local entity
when this node hosts the shard (the region starts the entity on its first message), to the region
of the shard's home node otherwise, and into a bounded buffer while the home is unknown (asked of
the coordinator) or moving (handoff); the buffer is flushed once the home is known. What the ref
side does before a message reaches the region is in ``_routing.py``.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .._core import NodeAddress
from ._deliveries import Deliveries
from ._hosted import STOPPING, Hosted
from ._routing import RegionRouting
from ._sharded import entity_shard

__all__ = ["Routes"]

_log = logging.getLogger("casty_trio.sharding")

_SHARD_CACHE_SIZE = 100_000


class Routes:
    """The routing table of one region: each shard's home as last heard of, the shards whose
    home was asked of the coordinator, and the messages waiting for a home.

    Args:
        path: The region's path (for the log).
        me: This node.
        num_shards: The sharded type's shard count.
        buffer_size: Messages that may wait for shard homes, over all shards.
        routing: The region's ref side, whose remote routes are worked out from the homes.
        deliveries: How messages go to other nodes' regions.
        hosted: The shards this node hosts (the region's, read only here).
        deliver_local: Hands a message to an entity of a shard hosted here.
        ask_home: Asks the coordinator where a shard lives.
        dead_letter: Reports a message that cannot be delivered.
    """

    def __init__(
        self,
        *,
        path: str,
        me: NodeAddress,
        num_shards: int,
        buffer_size: int,
        routing: RegionRouting,
        deliveries: Deliveries,
        hosted: Mapping[int, Hosted],
        deliver_local: Callable[[Hosted, str, Any], None],
        ask_home: Callable[[int], None],
        dead_letter: Callable[[str, Any], None],
    ) -> None:
        self.path = path
        self.me = me
        self.num_shards = num_shards
        self.buffer_size = buffer_size
        self.routing = routing
        self.deliveries = deliveries
        self.hosted = hosted
        self.deliver_local = deliver_local
        self.ask_home = ask_home
        self.dead_letter = dead_letter
        self.homes: dict[int, NodeAddress] = {}
        self.shard_cache: dict[str, int] = {}
        self.buffers: dict[int, deque[tuple[str, Any]]] = {}
        self.buffered = 0
        self.requested: set[int] = set()

    def shard_of(self, eid: str) -> int:
        """``entity_shard`` of ``eid``, memoized: MD5 is the largest cost of a routed message."""
        cache = self.shard_cache
        shard = cache.get(eid)
        if shard is None:
            if len(cache) >= _SHARD_CACHE_SIZE:
                cache.clear()
            shard = cache[eid] = entity_shard(eid, self.num_shards)
        return shard

    # ------------------------------------------------------------------ homes

    def homes_changed(self) -> None:
        """Call after any change of ``homes`` or of the shards hosted here: the ref's remote
        fast path (``RegionRouting.away``) holds routes worked out from them."""
        self.routing.away.clear()

    def set_home(self, shard: int, home: NodeAddress) -> None:
        """``shard`` lives at ``home``: send it what waited for that."""
        self.homes[shard] = home
        self.homes_changed()
        self.requested.discard(shard)
        self.flush(shard)

    def forget_home(self, shard: int) -> None:
        """``shard`` is moving (or stopped here): its messages wait until its home is known."""
        self.homes.pop(shard, None)
        self.homes_changed()

    def forget_nodes(self, live: frozenset[NodeAddress]) -> None:
        """Only ``live`` are members: the shards homed elsewhere have no known home."""
        for shard, home in list(self.homes.items()):
            if home not in live:
                del self.homes[shard]
                self.homes_changed()

    def stopped(self, shard: int) -> None:
        """``shard`` stopped here: ask where it goes if messages wait for it."""
        self.forget_home(shard)
        if shard in self.buffers:
            self.request_home(shard)

    def request_home(self, shard: int) -> None:
        if shard in self.requested:
            return
        self.requested.add(shard)
        self.ask_home(shard)

    # ------------------------------------------------------------------ messages

    def route(self, eid: str, message: Any, forwarded: bool, shard: int | None = None) -> None:
        """Send ``message`` for entity ``eid`` on its way; ``forwarded`` when another region
        sent it here as the shard's home."""
        if shard is None:
            shard = self.shard_of(eid)
        hosted = self.hosted.get(shard)
        if hosted is not None:
            if hosted.state < STOPPING:
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
        if self.buffered >= self.buffer_size:
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

    def buffer_first(self, shard: int, eid: str, messages: Sequence[Any]) -> None:
        """Put ``messages`` for ``eid`` before anything waiting for ``shard``'s home: they are
        older (an entity stopping with the shard held them)."""
        queue = self.buffers.setdefault(shard, deque())
        queue.extendleft((eid, m) for m in reversed(messages))
        self.buffered += len(messages)

    def flush(self, shard: int) -> None:
        """Route again what waited for ``shard``, in order."""
        queue = self.buffers.pop(shard, None)
        if queue is None:
            return
        self.buffered -= len(queue)
        for eid, message in queue:
            self.route(eid, message, False)
