"""The replica region of a replicated sharded type: the ``replica`` child of its region.

It owns this node's side of replication that touches the journal, one message at a time:

- stores the ``ReplicateEvents`` a primary sends, idempotently by sequence number, after
  checking the batch's allocation epoch (older than one it knows: refused with
  ``ReplicaRefused``), and acks the highest sequence number it holds without a gap
  (``ReplicateEventsAck``) to the batch's ``reply_to``, the primary's replica link; a batch
  that starts after a gap is not stored: the missing history is requested instead;
- serves history (``HistoryRequest``, and ``PushHistory`` from its own region as primary) from
  the journal;
- when this node becomes a shard's primary, pulls what the other holders have (``StartSync``)
  and reports ``SyncDone`` to the region, or gives up on a silent source after
  ``sync_timeout``;
- answers the coordinator's ``ReplicaQuery`` during a failover.

Journal reads and writes happen here, never in the region, so routing never waits for them.
Its peers' messages arrive whole in the peer link's reader (a bulk receiver, which knows the
sender's node); batches are read and checked there (:meth:`Replication.read_batches`).
"""

from __future__ import annotations

import logging
from typing import Any, cast

import msgspec
import trio

from ..._core import ActorContext, ActorRef, Behavior, Behaviors, NodeAddress, TimerScheduler
from ..._errors import JournalError, SerializationError
from ...persistence import NonBlockingJournal, PersistedEvent
from ._replication import (
    TICK,
    Arrived,
    Fenced,
    PushHistory,
    ReplicateEvents,
    ReplicateEventsAck,
    Replication,
    StartSync,
    SyncDone,
    Tick,
)
from ._wire import (
    HistoryEnd,
    HistoryRequest,
    ReplicaHoldings,
    ReplicaQuery,
    ReplicaRefused,
    check_shard,
    node_of,
)

__all__ = ["replica_actor"]

_log = logging.getLogger("casty_trio.replication")


class _Replica:
    """The replica actor's handlers (see the module docstring)."""

    def __init__(self, replication: Replication, region: ActorRef[Any]) -> None:
        self.r = replication
        self.region = region
        # history asked for and not complete: (shard, source) -> deadline
        self.expected: dict[tuple[int, NodeAddress], float] = {}
        # new primaries waiting for their sources: shard -> sources not done
        self.syncing: dict[int, set[NodeAddress]] = {}

    def refuse(self, batch: ReplicateEvents, epoch: int) -> None:
        if batch.reply_to is not None:
            batch.reply_to.tell(
                ReplicaRefused(batch.shard_id, epoch, self.r.me.host, self.r.me.port)
            )

    def ask_history(
        self,
        source: NodeAddress,
        shard: int,
        known: list[tuple[str, int]],
        whole: bool,
        epoch: int = 0,
    ) -> None:
        ref = self.r.replica_ref(source)
        if ref is None:
            return
        self.expected[(shard, source)] = trio.current_time() + self.r.failover.sync_timeout
        ref.tell(HistoryRequest(shard, self.r.me.host, self.r.me.port, known, whole, epoch))

    def learn(self, shard: int, epoch: int, primary: NodeAddress) -> None:
        """``primary`` holds allocation ``epoch`` of ``shard``: remember the newest epoch (a
        batch from an older one is refused from now on), and stop being the primary of an
        older one."""
        mine = self.r.primaries.get(shard)
        if mine is not None and epoch > mine.epoch:
            self.r.fence(shard, epoch)
            self.region.tell(Fenced(shard, epoch))
        replica = self.r.replica_of.get(shard)
        if replica is None or epoch > replica[0]:
            self.r.replica_of[shard] = (epoch, primary)

    def fresh(self, batch: ReplicateEvents) -> list[PersistedEvent] | None:
        """The events of ``batch`` not yet here (maybe none), or None when they start after a
        gap (then nothing of it may be stored)."""
        highest = self.r.index.get(batch.shard_id, {}).get(batch.entity_id, 0)
        fresh = [e for e in batch.events if e.sequence_nr > highest]
        if fresh and fresh[0].sequence_nr > highest + 1:
            return None
        return fresh

    def highest(self, batch: ReplicateEvents) -> int:
        return self.r.index.get(batch.shard_id, {}).get(batch.entity_id, 0)

    async def store(self, batch: ReplicateEvents) -> int | None:
        """Persist the events of ``batch`` not yet here; the new highest sequence number, or
        None when the batch starts after a gap (nothing is stored then)."""
        fresh = self.fresh(batch)
        if not fresh:
            return None if fresh is None else self.highest(batch)
        await self.r.journal_of(batch.entity_id).persist(batch.entity_id, fresh)
        return self.r.note(batch.shard_id, batch.entity_id, fresh[-1].sequence_nr)

    def admit(self, msg: Arrived) -> bool:
        """Whether to store ``msg``'s batch: history (no ``reply_to``) only when asked for; a
        primary's batch only with an epoch no older than one known here (else it is
        refused)."""
        batch = msg.batch
        shard = batch.shard_id
        sender = msg.sender
        if batch.reply_to is None:
            if (shard, sender) not in self.expected:
                _log.debug(
                    "replica %s: unrequested history of shard %d from %s",
                    self.r.region_path,
                    shard,
                    sender,
                )
                return False
            return True
        known = self.r.known_epoch(shard)
        if msg.epoch < known:
            _log.info(
                "%s: refused events of shard %d from %s (epoch %d, newer %d known)",
                self.r.region_path,
                shard,
                sender,
                msg.epoch,
                known,
            )
            self.refuse(batch, known)
            return False
        self.learn(shard, msg.epoch, sender)
        return True

    def stored(self, msg: Arrived, highest: int | None) -> None:
        """After a primary's batch: ask for the history a gap shows missing, and ack to the
        batch's ``reply_to``."""
        batch = msg.batch
        shard = batch.shard_id
        if highest is None:
            have = self.r.index.get(shard, {}).get(batch.entity_id, 0)
            if (shard, msg.sender) not in self.expected:
                self.ask_history(msg.sender, shard, [(batch.entity_id, have)], whole=False)
            highest = have
        if batch.reply_to is not None and highest > 0:
            batch.reply_to.tell(ReplicateEventsAck(batch.entity_id, highest))

    def store_at_once(self, msg: Arrived) -> bool:
        """Store a primary's batch right away, in the peer link's reader, when this node's
        journal for the entity stores without blocking; False when the actor must do it."""
        batch = msg.batch
        if batch.reply_to is None:
            return False
        journal = self.r.journal_of(batch.entity_id)
        if not self.r.stores_at_once(journal):
            return False
        stores = cast(NonBlockingJournal, journal)  # stores_at_once checked (cached per class)
        if not self.admit(msg):
            return True
        fresh = self.fresh(batch)
        if fresh:
            stores.persist_nowait(batch.entity_id, fresh)
            highest: int | None = self.r.note(
                batch.shard_id, batch.entity_id, fresh[-1].sequence_nr
            )
        else:
            highest = None if fresh is None else self.highest(batch)
        self.stored(msg, highest)
        return True

    async def on_events(self, msg: Arrived) -> None:
        if not self.admit(msg):
            await trio.lowlevel.checkpoint()
            return
        batch = msg.batch
        try:
            highest = await self.store(batch)
        except (JournalError, TypeError) as exc:
            _log.error(
                "%s: could not store replicated events of %r from %s: %s",
                self.r.region_path,
                batch.entity_id,
                msg.sender,
                exc,
            )
            return
        if batch.reply_to is not None:
            self.stored(msg, highest)

    async def send_history(
        self,
        requester: NodeAddress,
        shard: int,
        known: dict[str, int],
        whole: bool,
        as_history: bool,
    ) -> None:
        ref = self.r.replica_ref(requester)
        if ref is None:
            return
        entities = set(known)
        if whole:
            entities |= set(self.r.index.get(shard, {}))
        epoch = self.r.known_epoch(shard)
        me = self.r.me
        for entity_id in sorted(entities):
            try:
                events = await self.r.journal_of(entity_id).load(
                    entity_id, known.get(entity_id, 0) + 1
                )
                if events:
                    self.r.send_batch(
                        requester,
                        entity_id,
                        shard,
                        epoch,
                        self.r.encode(events),
                        acked=not as_history,
                    )
            except (JournalError, TypeError, SerializationError) as exc:
                _log.error(
                    "%s: could not send the history of %r to %s: %s",
                    self.r.region_path,
                    entity_id,
                    requester,
                    exc,
                )
        if as_history:
            ref.tell(HistoryEnd(shard, me.host, me.port))

    def finish_sync(self, shard: int) -> None:
        self.syncing.pop(shard, None)
        self.region.tell(SyncDone(shard))

    def on_history_end(self, msg: HistoryEnd) -> None:
        source = node_of(msg.host, msg.port)
        self.expected.pop((msg.shard, source), None)
        waiting = self.syncing.get(msg.shard)
        if waiting is not None:
            waiting.discard(source)
            if not waiting:
                self.finish_sync(msg.shard)

    def on_sync(self, msg: StartSync) -> None:
        known = list(self.r.index.get(msg.shard, {}).items())
        sources = {s for s in msg.sources if s != self.r.me}
        if not sources:
            self.finish_sync(msg.shard)
            return
        self.syncing[msg.shard] = sources
        for source in sources:
            self.ask_history(source, msg.shard, known, whole=True, epoch=msg.epoch)

    def on_tick(self) -> None:
        now = trio.current_time()
        for key, deadline in list(self.expected.items()):
            if now < deadline:
                continue
            del self.expected[key]
            shard, source = key
            waiting = self.syncing.get(shard)
            if waiting is not None and source in waiting:
                _log.warning(
                    "%s: no history of shard %d from %s within %s s; serving it without",
                    self.r.region_path,
                    shard,
                    source,
                    self.r.failover.sync_timeout,
                )
                waiting.discard(source)
                if not waiting:
                    self.finish_sync(shard)

    async def receive(self, ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
        try:
            if isinstance(msg, Arrived):  # read and checked by the receiver (take_run)
                await self.on_events(msg)
            elif isinstance(msg, HistoryRequest):
                check_shard(msg.shard, self.r.num_shards)
                requester = node_of(msg.host, msg.port)
                if msg.epoch:  # a new primary: fence the old one here before the history leaves
                    self.learn(msg.shard, msg.epoch, requester)
                await self.send_history(requester, msg.shard, dict(msg.known), msg.whole, True)
            elif isinstance(msg, PushHistory):
                await self.send_history(
                    msg.node, msg.shard, msg.known or {}, msg.known is None, False
                )
            elif isinstance(msg, HistoryEnd):
                self.on_history_end(msg)
            elif isinstance(msg, ReplicaQuery):
                coordinator = self.r.system.lookup(
                    f"{self.r.region_path}/coordinator", node=node_of(msg.host, msg.port)
                )
                if coordinator is not None:
                    holdings = self.r.holdings(check_shard(msg.shard, self.r.num_shards))
                    coordinator.tell(
                        ReplicaHoldings(
                            msg.shard, msg.round, holdings, self.r.me.host, self.r.me.port
                        )
                    )
            elif isinstance(msg, StartSync):
                self.on_sync(msg)
            elif isinstance(msg, Tick):
                self.on_tick()
            else:
                _log.warning("%s: replica: unexpected %s", self.r.region_path, type(msg).__name__)
        except (ValueError, SerializationError) as exc:
            _log.warning(
                "%s: replica dropped an invalid %s: %s", self.r.region_path, type(msg).__name__, exc
            )
        return Behaviors.same()


def replica_actor(replication: Replication, region: ActorRef[Any]) -> Behavior[Any]:
    """The replica region of one sharded type on this node (see the module docstring)."""

    def with_timers(ctx: ActorContext[Any], timers: TimerScheduler[Any]) -> Behavior[Any]:
        timers.start_periodic("expire", TICK, replication.retry_interval)
        replica = _Replica(replication, region)
        path = replication.replica_path
        batches = replication.batch_manifest
        remoting = replication.system.remoting
        mailbox = ctx.self

        def take_run(peer: NodeAddress, manifest: str, run: msgspec.Raw, count: int) -> int:
            # Everything peers send this actor arrives here, in the peer link's reader. Batches
            # for journals that store without blocking are stored here; everything else waits
            # its turn in the mailbox.
            if manifest != batches:
                messages, bad = replication.read_messages(peer, path, manifest, run, count)
                for msg in messages:
                    mailbox.tell(msg)
                return bad
            arrived, bad = replication.read_batches(peer, run)
            for msg in arrived:
                try:
                    if replica.store_at_once(msg):
                        continue
                except (ValueError, TypeError, JournalError) as exc:
                    _log.warning(
                        "%s: replica could not store events of %r from %s: %s",
                        replication.region_path,
                        msg.batch.entity_id,
                        peer,
                        exc,
                    )
                    continue
                mailbox.tell(msg)
            return bad

        remoting.set_bulk_receiver(path, take_run)

        async def post_stop(ctx: ActorContext[Any]) -> None:
            remoting.set_bulk_receiver(path, None)

        return Behaviors.with_lifecycle(Behaviors.receive(replica.receive), post_stop=post_stop)

    return Behaviors.with_timers(with_timers)
