"""The replica link: a primary region's actor for one replica node.

It takes that node's acks (in the peer link's reader, see :func:`replica_link`) and refusals,
and has events the replica leaves unacked for ``ack_timeout`` sent again. A child of the region,
one per replica node, started and stopped by :class:`~._primary_side.PrimarySide`.
"""

from __future__ import annotations

import logging
from typing import Any

import trio

from ..._core import ActorContext, ActorRef, Behavior, Behaviors, NodeAddress, TimerScheduler
from ._replication import (
    FLUSH,
    LAZY_DELAY,
    REPLICA_NAME,
    TICK,
    Fenced,
    Flush,
    FlushSoon,
    PushHistory,
    Replication,
    Tick,
    link_name,
)
from ._wire import ReplicaAck, ReplicaRefused

__all__ = ["replica_link", "resend_lagging"]

_log = logging.getLogger("casty_trio.replication")


def replica_link(
    replication: Replication, node: NodeAddress, region: ActorRef[Any]
) -> Behavior[Any]:
    """The replica link of a primary region to the replica at ``node``: takes its acks and
    refusals, has events it leaves unacked for ``ack_timeout`` sent again, and sends the
    events that wait for it (:meth:`Replication.defer`) within ``LAZY_DELAY``.

    Acks are taken in the peer link's reader as they arrive (``RemotingPort.set_receiver``), not
    after a hop through this actor's mailbox: a waiting write is released one scheduler pass
    sooner. Everything else goes through the mailbox.
    """

    def with_timers(ctx: ActorContext[Any], timers: TimerScheduler[Any]) -> Behavior[Any]:
        timers.start_periodic("resend", TICK, replication.retry_interval)
        path = f"{replication.region_path}/{link_name(node)}"
        remoting = replication.system.remoting
        mailbox = ctx.self

        def take_ack(msg: Any) -> None:
            if type(msg) is ReplicaAck:
                if msg.port == node.port and msg.host == node.host:
                    replication.acked(msg.entity_id, node, msg.sequence_nr)
                return
            if type(msg) is ReplicaRefused:
                replication.fence(msg.shard, msg.epoch)
            mailbox.tell(msg)

        remoting.set_receiver(path, take_ack)
        replication.links[node] = mailbox

        async def receive(ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
            if isinstance(msg, ReplicaAck):
                take_ack(msg)
            elif isinstance(msg, ReplicaRefused):
                replication.fence(msg.shard, msg.epoch)
                region.tell(Fenced(msg.shard, msg.epoch))
            elif isinstance(msg, Tick):
                resend_lagging(replication, node)
            elif isinstance(msg, FlushSoon):
                timers.start_single("flush", FLUSH, LAZY_DELAY)
            elif isinstance(msg, Flush):
                replication.flush(node)
            else:
                _log.warning("replica link to %s: unexpected %s", node, type(msg).__name__)
            return Behaviors.same()

        async def post_stop(ctx: ActorContext[Any]) -> None:
            remoting.set_receiver(path, None)
            if replication.links.get(node) == mailbox:
                del replication.links[node]
                replication.flush(node)  # nobody else would send what waits for it

        return Behaviors.with_lifecycle(Behaviors.receive(receive), post_stop=post_stop)

    return Behaviors.with_timers(with_timers)


def resend_lagging(replication: Replication, node: NodeAddress) -> None:
    """Have events ``node`` left unacked for ``ack_timeout`` sent again, per shard."""
    sent = replication.sent.get(node)
    if not sent:
        return
    cutoff = trio.current_time() - replication.config.ack_timeout
    lagging: dict[int, dict[str, int]] = {}
    for entity_id, record in list(sent.items()):
        if record.at <= cutoff:
            del sent[entity_id]
            lagging.setdefault(record.shard, {})[entity_id] = 0
    replica = replication.system.lookup(f"{replication.region_path}/{REPLICA_NAME}")
    if replica is None:
        return
    for shard, entities in lagging.items():
        if replication.primaries.get(shard) is not None:
            replica.tell(PushHistory(shard, node, entities))
