"""The replica link: a primary region's actor for one replica node.

It is the ``reply_to`` of the batches sent to that node: it takes that node's acks
(:class:`ReplicateEventsAck`, in the peer link's reader, see :func:`replica_link`) and
refusals, and has events the replica leaves unacked for ``ack_timeout`` sent again. A child
of the region, one per replica node, started and stopped by
:class:`~._primary_side.PrimarySide`.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec
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
    ReplicateEventsAck,
    Replication,
    Tick,
    link_name,
)
from ._wire import ReplicaRefused, check_entity_id, check_sequence_nr

__all__ = ["replica_link", "resend_lagging"]

_log = logging.getLogger("casty_trio.replication")


def replica_link(
    replication: Replication, node: NodeAddress, region: ActorRef[Any]
) -> Behavior[Any]:
    """The replica link of a primary region to the replica at ``node``: takes its acks and
    refusals, has events it leaves unacked for ``ack_timeout`` sent again, and sends the
    events that wait for it (:meth:`Replication.defer`) within ``LAZY_DELAY``.

    Acks are taken in the peer link's reader as they arrive (a bulk receiver,
    ``RemotingPort.set_bulk_receiver``), not after a hop through this actor's mailbox: a
    waiting write is released one scheduler pass sooner. The receiver is told the node of the
    peer link: acks count only when they come from ``node``. Refusals fence the shard there
    too, ahead of any ack after them; everything else goes through the mailbox.
    """

    def with_timers(ctx: ActorContext[Any], timers: TimerScheduler[Any]) -> Behavior[Any]:
        timers.start_periodic("resend", TICK, replication.retry_interval)
        path = f"{replication.region_path}/{link_name(node)}"
        acks = replication.ack_manifest
        remoting = replication.system.remoting
        mailbox = ctx.self

        def take_ack(ack: ReplicateEventsAck) -> None:
            """Count ``ack`` (from ``node``), its fields checked.

            Raises:
                ValueError: A field is out of range.
            """
            replication.acked(
                check_entity_id(ack.entity_id), node, check_sequence_nr(ack.sequence_nr)
            )

        def take_run(peer: NodeAddress, manifest: str, run: msgspec.Raw, count: int) -> int:
            messages, bad = replication.read_messages(peer, path, manifest, run, count)
            if manifest == acks:
                if peer != node:
                    _log.warning(
                        "%s: %d acks from %s dropped: this link takes those of %s",
                        path,
                        len(messages),
                        peer,
                        node,
                    )
                    return bad + len(messages)
                for ack in messages:
                    try:
                        take_ack(ack)
                    except ValueError as exc:
                        bad += 1
                        _log.warning("%s: dropped an invalid ack from %s: %s", path, peer, exc)
                return bad
            for msg in messages:
                if type(msg) is ReplicaRefused:
                    replication.fence(msg.shard, msg.epoch)
                mailbox.tell(msg)
            return bad

        remoting.set_bulk_receiver(path, take_run)
        replication.links[node] = mailbox

        async def receive(ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
            if isinstance(msg, ReplicateEventsAck):
                # Sent to this link's path before its receiver was registered: ``node``'s.
                try:
                    take_ack(msg)
                except ValueError as exc:
                    _log.warning("%s: dropped an invalid ack: %s", path, exc)
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
            remoting.set_bulk_receiver(path, None)
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
