"""Shard replication: copies of event-sourced entities' journals on replica nodes.

A sharded type with ``ReplicationConfig(replicas=n)`` gets, from its coordinator, ``n`` replica
nodes per shard besides the primary (``ShardReplicas``). Per region there is one
:class:`Replication` (state shared by the region, its replica actor and its replica links, all
in one process) and these actors, children of the region and so owned by its nursery:

- ``replica``: the *replica region* (``_replica.py``). It stores the events primaries send
  (:class:`ReplicateEvents`) into this node's journal, idempotently by sequence number, and
  acks the highest sequence number it holds without gap (:class:`ReplicateEventsAck`, to the
  batch's ``reply_to``); it serves history (``HistoryRequest``) to replicas that are behind
  and to new primaries, answers the coordinator's ``ReplicaQuery`` during a failover, and
  pulls history when this node becomes a shard's primary.
- ``link-<host>-<port>``: the *replica link* to one replica node (``_replica_link.py``), the
  ``reply_to`` of the batches sent to that node. Acks from that node arrive here, not in any
  entity's mailbox, so an entity awaiting acks never blocks them. It also notices events the
  replica has not acked for a while and has them sent again.

On the primary, each entity of a replicated type runs with a :class:`ShardReplicator`: after
the entity persisted a command's events, it sends them to the replicas and, with ``min_acks``
k > 0, waits inside ``trio.move_on_after(ack_timeout)`` until k replicas acked; the write's
reply runs as the k-th ack arrives, in the task that takes it. With k > 0 the events go first
to the k replicas that acked fastest lately, the one on the node the answer goes to among
them (the policy is in ``_replica_choice.py``); the others get them, merged per entity, within
``LAZY_DELAY`` once those acked (:meth:`Replication.defer`), or at once if the first ones are
slow (a hedge delay of a few of their recent ack latencies): a confirmation waits on the
nearest replicas, and the others neither delay it nor compete with it. Fencing: every
batch travels with the shard's allocation epoch (see ``_wire.py``); a replica that knows a
newer epoch refuses it (``ReplicaRefused``), and a primary told so stops hosting the shard.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import attrs
import msgspec
import trio

from ..._core import ActorRef, Behavior, NodeAddress
from ..._errors import ReplicationFencedError, ReplicationTimeoutError, SerializationError
from ...config import FailoverConfig
from ...persistence import EventJournal, EventSourcedBehavior, NonBlockingJournal, PersistedEvent
from ...serialization._wire import decode_run, envelopes_header
from ._config import ReplicationConfig
from ._messages import (
    FLUSH,
    FLUSH_SOON,
    TICK,
    Arrived,
    Fenced,
    Flush,
    FlushSoon,
    PushHistory,
    ReplicateEvents,
    ReplicateEventsAck,
    StartSync,
    SyncDone,
    Tick,
)
from ._replica_choice import first_replicas, hedge_delay, updated_latency
from ._wire import FramedBatch, ReplyRefs, WireEvent, batch_payload, read_batch, wire_events

if TYPE_CHECKING:
    from ...cluster import MembershipSystem
    from ...remote import RawSender

__all__ = [
    "FLUSH",
    "FLUSH_SOON",
    "LAZY_DELAY",
    "REPLICA_NAME",
    "TICK",
    "Arrived",
    "Fenced",
    "Flush",
    "FlushSoon",
    "PrimaryShard",
    "PushHistory",
    "ReplicateEvents",
    "ReplicateEventsAck",
    "Replication",
    "ShardReplicator",
    "StartSync",
    "SyncDone",
    "Tick",
    "link_name",
]

_log = logging.getLogger("casty_trio.replication")

# Once a write is confirmed, the replicas it did not wait for get its events up to
# _LAZY_DELAY seconds later, together with the other writes of that time (one batch per entity).
LAZY_DELAY = 0.005

REPLICA_NAME = "replica"


# ---------------------------------------------------------------------------- shared state


class _Waiter:
    __slots__ = ("acked", "confirmed", "done", "epoch", "needed", "refused", "sequence_nr", "shard")

    def __init__(
        self,
        shard: int,
        epoch: int,
        sequence_nr: int,
        needed: int,
        confirmed: Callable[[], None] | None,
    ) -> None:
        self.shard = shard
        self.epoch = epoch
        self.sequence_nr = sequence_nr
        self.needed = needed
        self.acked: set[NodeAddress] = set()
        self.done = trio.Event()
        self.confirmed = confirmed  # the write's reply, run by whoever sees the last ack
        self.refused = 0  # a newer allocation epoch a replica told of: never confirmed then


class PrimaryShard:
    """A shard this node is the primary of: its allocation epoch and replica nodes."""

    __slots__ = ("epoch", "replicas")

    def __init__(self, epoch: int, replicas: tuple[NodeAddress, ...]) -> None:
        self.epoch = epoch
        self.replicas = replicas


class _Outgoing:
    """Events of one entity, encoded once (see :meth:`Replication.encode`), on their way to
    replicas: a write's, or those that wait for a replica (see :meth:`Replication.defer`)."""

    __slots__ = ("entity_id", "epoch", "events", "last", "shard")

    def __init__(
        self, entity_id: str, shard: int, epoch: int, events: list[WireEvent], last: int
    ) -> None:
        self.entity_id = entity_id
        self.shard = shard
        self.epoch = epoch
        self.events = events
        self.last = last


class _Sent:
    __slots__ = ("at", "sequence_nr", "shard")

    def __init__(self, shard: int, sequence_nr: int, at: float) -> None:
        self.shard = shard
        self.sequence_nr = sequence_nr
        self.at = at


def link_name(node: NodeAddress) -> str:
    """The name of the replica link (a child of the region) to the replica at ``node``.

    Examples:
        >>> link_name(NodeAddress("10.0.0.1", 25520))
        'link-10.0.0.1-25520'
    """
    return f"link-{quote(node.host, safe='')}-{node.port}"


class Replication:
    """The replication state of one region (one sharded type on one node).

    Shared, in one process, by the region (which routes and hosts shards), its replica actor
    and its replica links: each mutates it only from its own handlers, between checkpoints.
    """

    def __init__(
        self,
        system: MembershipSystem,
        region_path: str,
        entity_factory: Callable[[str], Behavior[Any]],
        num_shards: int,
        config: ReplicationConfig,
        failover: FailoverConfig,
        retry_interval: float,
    ) -> None:
        self.system = system
        self.region_path = region_path
        self.entity_factory = entity_factory
        self.num_shards = num_shards
        self.config = config
        self.failover = failover
        self.retry_interval = retry_interval
        self.me = system.self_node
        self.codec = system.remoting.codec
        # shard -> entity -> highest sequence number stored here without a gap
        self.index: dict[int, dict[str, int]] = {}
        # shards replicated here: shard -> (epoch, primary)
        self.replica_of: dict[int, tuple[int, NodeAddress]] = {}
        # shards this node is the primary of (or is about to be)
        self.primaries: dict[int, PrimaryShard] = {}
        # new primary: shard -> (epoch, sources) announced before the ShardHome
        self.sources: dict[int, tuple[int, tuple[NodeAddress, ...]]] = {}
        self.waiters: dict[str, list[_Waiter]] = {}
        # shard -> a newer allocation epoch than this node's as its primary, told by a replica
        self.fenced: dict[int, int] = {}
        self.sent: dict[NodeAddress, dict[str, _Sent]] = {}
        # replica node -> its recent ack latency, seconds (which replicas a write goes to first)
        self.ack_latency: dict[NodeAddress, float] = {}
        # replica node -> entity -> events that wait to be sent together (see ``defer``)
        self.deferred: dict[NodeAddress, dict[str, _Outgoing]] = {}
        # replica node -> its replica link actor (registered by the link while it runs)
        self.links: dict[NodeAddress, ActorRef[Any]] = {}
        self._replica_refs: dict[NodeAddress, ActorRef[Any]] = {}
        self._nonblocking: dict[type, bool] = {}
        self._journals: dict[str, EventJournal] = {}
        # Batches: the replica actor's path is the same on every node, so is their header.
        self.replica_path = f"{region_path}/{REPLICA_NAME}"
        self.batch_manifest = self.codec.manifest(ReplicateEvents)
        self.ack_manifest = self.codec.manifest(ReplicateEventsAck)
        self._batch_header = envelopes_header(self.replica_path, self.batch_manifest)
        self._encode = self.codec.payload_encoder
        self._batch_senders: dict[NodeAddress, RawSender] = {}
        # replica node -> the ``reply_to`` of the batches sent to it (its link), encoded
        self._reply_to: dict[NodeAddress, msgspec.Raw] = {}
        self._framed_run = self.codec.shaped_decoder(
            self.batch_manifest,
            lambda _cls: list[FramedBatch],
        ).decode
        self._framed_one = self.codec.shaped_decoder(
            self.batch_manifest,
            lambda _cls: FramedBatch,
        ).decode
        self._reply_refs = ReplyRefs(self.codec, self.batch_manifest)

    # ------------------------------------------------------------------ lookups

    def replica_ref(self, node: NodeAddress) -> ActorRef[Any] | None:
        """The replica actor of this type on ``node``."""
        ref = self._replica_refs.get(node)
        if ref is None:
            ref = self.system.lookup(f"{self.region_path}/{REPLICA_NAME}", node=node)
            if ref is not None:
                self._replica_refs[node] = ref
        return ref

    def reply_to(self, node: NodeAddress) -> msgspec.Raw | None:
        """The ``reply_to`` of batches for ``node``: this node's replica link to it, encoded
        (None while there is no such link)."""
        raw = self._reply_to.get(node)
        if raw is None:
            link = self.system.lookup(f"{self.region_path}/{link_name(node)}")
            if link is None:
                return None
            raw = self._reply_to[node] = msgspec.Raw(self._encode(link))
        return raw

    def forget(self, live: frozenset[NodeAddress]) -> None:
        """Drop cached refs and bookkeeping of nodes no longer live."""
        caches = (
            self._replica_refs,
            self._batch_senders,
            self._reply_to,
            self.sent,
            self.ack_latency,
            self.deferred,
        )
        for cache in caches:
            for node in [n for n in cache if n not in live]:
                del cache[node]

    def journal_of(self, entity_id: str) -> EventJournal:
        """The journal this node keeps ``entity_id``'s events in (from the entity factory,
        called once per entity id: its answer is remembered, like the ``index``).

        Raises:
            TypeError: The factory does not return an event-sourced behavior.
        """
        journal = self._journals.get(entity_id)
        if journal is not None:
            return journal
        behavior = self.entity_factory(entity_id)
        if not isinstance(behavior, EventSourcedBehavior):
            raise TypeError(
                f"sharded type {self.region_path} is replicated, so its entity factory must "
                f"return Behaviors.event_sourced(...), not {type(behavior).__name__}"
            )
        journal = self._journals[entity_id] = behavior.journal
        return journal

    def stores_at_once(self, journal: EventJournal) -> bool:
        """Whether ``journal`` is a :class:`NonBlockingJournal` (remembered per class: a
        protocol ``isinstance`` check is slow for a hot path)."""
        cls = type(journal)
        answer = self._nonblocking.get(cls)
        if answer is None:
            answer = self._nonblocking[cls] = isinstance(journal, NonBlockingJournal)
        return answer

    def known_epoch(self, shard: int) -> int:
        """The newest allocation epoch of ``shard`` this node has heard of."""
        epoch = 0
        replica = self.replica_of.get(shard)
        if replica is not None:
            epoch = replica[0]
        primary = self.primaries.get(shard)
        if primary is not None:
            epoch = max(epoch, primary.epoch)
        return epoch

    def holdings(self, shard: int) -> int:
        """How much of ``shard`` is here: the sum of its entities' highest sequence numbers."""
        return sum(self.index.get(shard, {}).values())

    def note(self, shard: int, entity_id: str, sequence_nr: int) -> int:
        """Record that events of ``entity_id`` up to ``sequence_nr`` are stored here; the
        highest sequence number stored for it now."""
        entities = self.index.setdefault(shard, {})
        highest = entities.get(entity_id, 0)
        if sequence_nr > highest:
            entities[entity_id] = highest = sequence_nr
        return highest

    # ------------------------------------------------------------------ the wire

    def encode(self, events: Iterable[PersistedEvent]) -> list[WireEvent]:
        """Events as they travel: user events encoded by this system's codec.

        Raises:
            SerializationError: An event's type cannot be encoded.
        """
        return wire_events(self.codec.encode, events)

    def send_batch(
        self,
        node: NodeAddress,
        entity_id: str,
        shard: int,
        epoch: int,
        events: list[WireEvent],
        *,
        acked: bool,
    ) -> bool:
        """Send ``node``'s replica actor the :class:`ReplicateEvents` of ``events`` (encoded
        by :meth:`encode`) for allocation ``epoch`` of ``shard``; with ``acked``, its
        ``reply_to`` is this node's replica link to ``node``, else it has none (history asked
        for). Sync, not a checkpoint.

        Returns:
            False when it was not sent: no link to take the acks, or the peer link refused it
            (outbox full, shutting down); events left unacked are sent again later.

        Raises:
            SerializationError: The batch does not fit a frame.
        """
        reply_to = None
        if acked:
            reply_to = self.reply_to(node)
            if reply_to is None:
                return False
        sender = self._batch_senders.get(node)
        if sender is None:
            sender = self._batch_senders[node] = self.system.remoting.raw_sender(
                node, self.replica_path
            )
        payload = batch_payload(self._encode, epoch, entity_id, shard, events, reply_to)
        if sender.send(self._batch_header, payload):
            return True
        _log.debug("%s: events of %r for %s not sent", self.region_path, entity_id, node)
        return False

    def read_batches(self, peer: NodeAddress, run: msgspec.Raw) -> tuple[list[Arrived], int]:
        """The batches of a run (a msgpack array of them) from ``peer`` (see ``_wire.py``),
        checked and their events decoded, and how many were malformed (dropped, logged naming
        the peer): one decode for the run, one per batch only if that fails.
        """
        bad = 0

        def malformed(exc: Exception) -> None:
            nonlocal bad
            bad += 1
            _log.warning(
                "%s: dropped a malformed ReplicateEvents from %s: %s",
                self.region_path,
                peer,
                exc,
            )

        arrived = []
        decode = self.codec.decode
        num_shards = self.num_shards
        reply_refs = self._reply_refs
        for framed in decode_run(run, self._framed_run, self._framed_one, malformed):
            try:
                epoch, batch = read_batch(framed, peer, num_shards, decode, reply_refs)
            except (ValueError, SerializationError) as exc:
                malformed(exc)
                continue
            arrived.append(Arrived(peer, epoch, batch))
        return arrived, bad

    def read_messages(
        self, peer: NodeAddress, path: str, manifest: str, run: msgspec.Raw, count: int
    ) -> tuple[list[Any], int]:
        """The messages of a run of ``count`` of ``manifest`` from ``peer`` for ``path`` that
        decode, and how many did not (logged naming the peer), decoded as the remoting would.
        """
        codec = self.codec
        try:
            whole = codec.run_decoder(manifest)
            one = codec.payload_decoder(manifest)
        except SerializationError as exc:
            _log.warning("%s: %d messages from %s dropped: %s", path, count, peer, exc)
            return [], count
        bad = 0

        def malformed(exc: Exception) -> None:
            nonlocal bad
            bad += 1
            _log.warning(
                "%s: dropped a malformed message from %s: %s",
                path,
                peer,
                codec.decode_failed(manifest, exc),
            )

        return decode_run(run, whole, one, malformed), bad

    # ------------------------------------------------------------------ primary side

    def replicator(self, shard: int) -> ShardReplicator:
        return ShardReplicator(self, shard)

    async def replicate(
        self,
        shard: int,
        entity_id: str,
        events: Sequence[PersistedEvent],
        confirmed: Callable[[], None] | None = None,
        origin: NodeAddress | None = None,
    ) -> None:
        """Send freshly persisted events to the shard's replicas and await ``min_acks`` acks.

        ``confirmed`` (the write's reply) runs in the task that takes the last ack needed,
        before the entity is woken (see :class:`~casty_trio.persistence.Replicator`).
        ``origin``, the node the reply goes to, is among the first replicas sent to when it
        is one (see :func:`~._replica_choice.first_replicas`).

        Raises:
            ReplicationTimeoutError: Fewer than ``min_acks`` replicas acked in ``ack_timeout``.
            ReplicationFencedError: A replica knows a newer allocation of the shard: this
                node is no longer its primary.
            SerializationError: An event cannot be encoded for the wire.
        """
        last = events[-1].sequence_nr
        self.note(shard, entity_id, last)
        primary = self.primaries.get(shard)
        targets = primary.replicas if primary is not None else ()
        epoch = primary.epoch if primary is not None else 0
        needed = self.config.min_acks
        fenced = self.fenced.get(shard, 0)
        if fenced > epoch:
            raise self._refusal(entity_id, shard, last, fenced)
        first: Sequence[NodeAddress] = targets
        later: Sequence[NodeAddress] = ()
        if targets and primary is not None:
            item = _Outgoing(entity_id, shard, primary.epoch, self.encode(events), last)
            if needed and len(targets) > needed:
                first, later = first_replicas(targets, needed, self.ack_latency, origin)
            self._send(item, first)
        if not needed:
            await trio.lowlevel.checkpoint()
            return
        # The waiter is made once the events are on their way (no ack can come before this
        # task's next checkpoint: replicas are other nodes).
        waiter = _Waiter(shard, epoch, last, needed, confirmed)
        self.waiters.setdefault(entity_id, []).append(waiter)
        try:
            # One cancel scope per wait: the usual write (acked before the hedge delay) has one.
            deadline = trio.current_time() + self.config.ack_timeout
            if later:
                with trio.move_on_at(min(deadline, trio.current_time() + self._hedge_delay(first))):
                    await waiter.done.wait()
                others = self._still_replicas(shard, later)
                if waiter.done.is_set():
                    self.defer(item, others)
                else:
                    self._slow(first, waiter)
                    self._send(item, others)
            if not waiter.done.is_set():
                with trio.move_on_at(deadline):
                    await waiter.done.wait()
        finally:
            self._discard(entity_id, waiter)
        if waiter.refused:
            raise self._refusal(entity_id, shard, last, waiter.refused)
        if not waiter.done.is_set():
            acked = len(waiter.acked)
            raise ReplicationTimeoutError(
                f"entity {entity_id!r} (shard {shard}): events up to {last} acknowledged by "
                f"{acked} of the {needed} replicas needed within "
                f"{self.config.ack_timeout} s (replicas: "
                f"{', '.join(map(str, targets)) or 'none'})",
                entity_id=entity_id,
                shard=shard,
                sequence_nr=last,
                needed=needed,
                acked=acked,
            )

    @staticmethod
    def _refusal(entity_id: str, shard: int, last: int, epoch: int) -> ReplicationFencedError:
        return ReplicationFencedError(
            f"entity {entity_id!r} (shard {shard}): events up to {last} not confirmed: a "
            f"replica knows allocation epoch {epoch} of the shard, so this node is no longer "
            f"its primary",
            entity_id=entity_id,
            shard=shard,
            sequence_nr=last,
            epoch=epoch,
        )

    def fence(self, shard: int, epoch: int) -> None:
        """A replica knows allocation ``epoch`` of ``shard``: if that is newer than this
        node's as the shard's primary, no write of the shard may be confirmed from now on
        (the writes waiting fail at once, later ones before they are sent). Called where a
        refusal is read, ahead of any ack that comes after it."""
        primary = self.primaries.get(shard)
        if primary is None or epoch <= primary.epoch or epoch <= self.fenced.get(shard, 0):
            return
        self.fenced[shard] = epoch
        for waiting in self.waiters.values():
            for waiter in waiting:
                if waiter.shard == shard and waiter.epoch < epoch and not waiter.done.is_set():
                    waiter.refused = epoch
                    waiter.done.set()

    def _send(self, item: _Outgoing, nodes: Sequence[NodeAddress]) -> None:
        now = trio.current_time()
        sent = self.sent
        deferred = self.deferred
        for node in nodes:
            if node in deferred:
                self.flush(node)  # what waits for it goes first: a replica takes no gap
            self.send_batch(node, item.entity_id, item.shard, item.epoch, item.events, acked=True)
            sent.setdefault(node, {})[item.entity_id] = _Sent(item.shard, item.last, now)

    def defer(self, item: _Outgoing, nodes: Sequence[NodeAddress]) -> None:
        """Have ``item`` sent to ``nodes`` within ``LAZY_DELAY``, merged with the other
        batches of its entity that wait for them (a confirmed write's replicas beyond the
        ``min_acks`` it waited for): one message and one ack per entity and batch instead of
        one per write, and off the way of the writes that follow. Their replica links send
        them (:data:`FLUSH_SOON`); to a node without one, ``item`` goes at once."""
        for node in nodes:
            link = self.links.get(node)
            if link is None:
                self._send(item, (node,))
                continue
            waiting = self.deferred.get(node)
            if waiting is None:
                waiting = self.deferred[node] = {}
                link.tell(FLUSH_SOON)
            entry = waiting.get(item.entity_id)
            if entry is not None and entry.epoch == item.epoch:
                entry.events.extend(item.events)
                entry.last = item.last
                continue
            if entry is not None:  # another allocation of the shard: the older batch goes now
                self.flush(node)
                self.deferred[node] = waiting = {}
                link.tell(FLUSH_SOON)
            waiting[item.entity_id] = _Outgoing(
                item.entity_id, item.shard, item.epoch, list(item.events), item.last
            )

    def flush(self, node: NodeAddress) -> None:
        """Send what waits for ``node`` (see :meth:`defer`) now. Not a checkpoint."""
        waiting = self.deferred.pop(node, None)
        if not waiting:
            return
        now = trio.current_time()
        sent = self.sent.setdefault(node, {})
        for entity_id, entry in waiting.items():
            self.send_batch(node, entity_id, entry.shard, entry.epoch, entry.events, acked=True)
            sent[entity_id] = _Sent(entry.shard, entry.last, now)

    def _hedge_delay(self, nodes: Sequence[NodeAddress]) -> float:
        return hedge_delay(self.ack_latency, nodes, self.config.ack_timeout)

    def _slow(self, nodes: Sequence[NodeAddress], waiter: _Waiter) -> None:
        """The hedge delay passed without acks from some of ``nodes``: count them at least
        that slow, so that the next writes go to the others first."""
        delay = self._hedge_delay(nodes)
        latency = self.ack_latency
        for node in nodes:
            if node not in waiter.acked:
                latency[node] = max(latency.get(node, 0.0), 2 * delay)

    def _still_replicas(self, shard: int, nodes: Sequence[NodeAddress]) -> list[NodeAddress]:
        primary = self.primaries.get(shard)
        if primary is None:
            return []
        return [node for node in nodes if node in primary.replicas]

    def _discard(self, entity_id: str, waiter: _Waiter) -> None:
        waiting = self.waiters.get(entity_id)
        if waiting is None:
            return
        if waiter in waiting:
            waiting.remove(waiter)
        if not waiting:
            del self.waiters[entity_id]

    def acked(self, entity_id: str, node: NodeAddress, sequence_nr: int) -> None:
        """``node`` holds ``entity_id``'s events up to ``sequence_nr``: release the writes it
        confirms."""
        for waiter in self.waiters.get(entity_id, ()):
            if sequence_nr >= waiter.sequence_nr and node not in waiter.acked:
                waiter.acked.add(node)
                if len(waiter.acked) >= waiter.needed and not waiter.done.is_set():
                    confirmed = waiter.confirmed
                    if confirmed is not None:
                        confirmed()  # the reply leaves now, the entity resumes later
                    waiter.done.set()
        sent = self.sent.get(node)
        if sent is not None:
            record = sent.get(entity_id)
            if record is not None and record.sequence_nr <= sequence_nr:
                del sent[entity_id]
                latency = self.ack_latency
                latency[node] = updated_latency(latency.get(node), trio.current_time() - record.at)


@attrs.frozen
class ShardReplicator:
    """The :class:`~casty_trio.persistence.Replicator` of one primary entity: replicates its
    events through its region's :class:`Replication`."""

    replication: Replication
    shard: int

    async def replicate(
        self,
        entity_id: str,
        events: Sequence[PersistedEvent],
        confirmed: Callable[[], None] | None = None,
        origin: NodeAddress | None = None,
    ) -> None:
        """See :meth:`Replication.replicate` (a checkpoint)."""
        await self.replication.replicate(self.shard, entity_id, events, confirmed, origin)
