"""The primary's side of shard replication, inside the region: new primaries and replica sets.

The region hands :class:`PrimarySide` what concerns the shards it is the primary of: the
coordinator's ``ShardReplicas`` (who the replicas are, where to copy history from), the start
of a newly hosted replicated shard (``SYNCING`` until the history is here), the replica links
(children of the region, one per replica node) and the pushes of whole histories to new
replicas. What the replicas do is in ``_replica.py``; the shared state in ``_replication.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from ..._core import ActorContext, ActorRef, NodeAddress
from ._replica_link import replica_link
from ._replication import (
    REPLICA_NAME,
    PrimaryShard,
    PushHistory,
    Replication,
    StartSync,
    SyncDone,
    link_name,
)
from ._wire import ShardReplicas, check_shard, node_of

__all__ = ["HostedShard", "HostingRegion", "PrimarySide"]


class HostedShard(Protocol):
    """A shard as the region hosting it holds it, as far as replication is concerned."""

    shard: int
    epoch: int
    handoff: Any  # a handoff asked for while syncing, started once the history is here
    syncing: bool  # copying its history before serving it


class HostingRegion(Protocol):
    """What the primary side needs of the region it belongs to."""

    ctx: ActorContext[Any]
    me: NodeAddress
    num_shards: int

    @property
    def hosted(self) -> Mapping[int, HostedShard]: ...

    def flush(self, shard: int) -> None:
        """Deliver what waited for ``shard`` to be served."""
        ...

    def on_hand_off(self, msg: Any) -> None:
        """Start a handoff that waited for the end of a history copy."""
        ...

    def fence(self, shard: int, epoch: int) -> None:
        """This node replicates ``shard`` since ``epoch``: stop serving it as a primary."""
        ...


class PrimarySide:
    """The replication handlers of one region (see the module docstring)."""

    def __init__(self, region: HostingRegion, replication: Replication) -> None:
        self.region = region
        self.replication = replication
        self.links: dict[NodeAddress, ActorRef[Any]] = {}

    def forget(self, live: frozenset[NodeAddress]) -> None:
        """Members left: drop what concerns them, and stop their replica links."""
        self.replication.forget(live)
        for node in [n for n in self.links if n not in live]:
            self.region.ctx.stop(self.links.pop(node))

    def start(self, hosted: HostedShard) -> None:
        """A replicated shard is newly hosted here: copy its history from the sources the
        coordinator named before serving it."""
        pending = self.replication.sources.pop(hosted.shard, None)
        sources = pending[1] if pending is not None and pending[0] == hosted.epoch else ()
        if sources:
            hosted.syncing = True
            self.region.ctx.child(REPLICA_NAME).tell(StartSync(hosted.shard, hosted.epoch, sources))  # type: ignore[union-attr]
        else:
            self.push(hosted.shard, ())

    def push(self, shard: int, skip: tuple[NodeAddress, ...]) -> None:
        """Fill the shard's replicas (except ``skip``) with its whole history."""
        primary = self.replication.primaries.get(shard)
        replica = self.region.ctx.child(REPLICA_NAME)
        if primary is None or replica is None:
            return
        for node in primary.replicas:
            if node not in skip:
                replica.tell(PushHistory(shard, node, None))

    def on_sync_done(self, msg: SyncDone) -> None:
        hosted = self.region.hosted.get(msg.shard)
        if hosted is None or not hosted.syncing:
            return
        hosted.syncing = False
        self.push(msg.shard, ())
        self.region.flush(msg.shard)
        handoff, hosted.handoff = hosted.handoff, None
        if handoff is not None:
            self.region.on_hand_off(handoff)

    def ensure_link(self, node: NodeAddress) -> None:
        if node not in self.links:
            self.links[node] = self.region.ctx.spawn(
                replica_link(self.replication, node, self.region.ctx.self), link_name(node)
            )

    def on_shard_replicas(self, msg: ShardReplicas) -> None:
        repl = self.replication
        shard = check_shard(msg.shard, self.region.num_shards)
        primary = node_of(msg.host, msg.port)
        replicas = tuple(node_of(host, port) for host, port in msg.replicas)
        if primary == self.region.me:
            current = repl.primaries.get(shard)
            if current is not None and current.epoch > msg.epoch:
                return
            previous = (
                current.replicas if current is not None and current.epoch == msg.epoch else None
            )
            repl.primaries[shard] = PrimaryShard(msg.epoch, replicas)
            repl.replica_of.pop(shard, None)
            for node in replicas:
                self.ensure_link(node)
            hosted = self.region.hosted.get(shard)
            if hosted is None or hosted.epoch != msg.epoch:
                repl.sources[shard] = (msg.epoch, tuple(node_of(h, p) for h, p in msg.sources))
            elif not hosted.syncing and previous is not None:
                self.push(shard, previous)
        elif self.region.me in replicas:
            known = repl.replica_of.get(shard)
            if known is None or msg.epoch >= known[0]:
                repl.replica_of[shard] = (msg.epoch, primary)
            self.region.fence(shard, msg.epoch)
