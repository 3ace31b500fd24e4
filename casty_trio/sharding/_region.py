"""The shard region: one actor per sharded type per node, owning that type's entities here.

A region routes :class:`ShardEnvelope` messages: to a local entity when this node hosts the
shard, to the region of the shard's home node otherwise, and into a bounded buffer while the
home is unknown (asked of the coordinator) or moving (handoff). Entities are children of the
region, started on their first message and watched.

The ref users hold is not the region's own: its target, :class:`RegionRouting` (``_routing.py``),
delivers straight to running entities and sends everything else here. What the region does with
an entity's message (:class:`Routes`, the region's routing table and buffer) is in
``_region_routes.py``.

Handoff, seen from the shard's home: the coordinator sends every region ``BeginHandOff``;
each stops routing the shard, buffers it, and sends a ``HandOffMarker`` to the home behind
whatever it forwarded earlier (same link, so FIFO). When the home has the marker of every
region it stops the shard's entities after their queued messages (:func:`stop_after_queued`),
then reports ``ShardStopped``; the coordinator allocates the shard again and every region
flushes its buffer to the new home, in order. When a hosted shard stops is decided by
:class:`Hosted` (``_hosted.py``), a state machine without I/O; the region performs its answers.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import attrs
import trio

from .._core import (
    ActorContext,
    ActorRef,
    Behavior,
    Behaviors,
    NodeAddress,
    Terminated,
    TimerScheduler,
    dead_letter,
    stop_after_queued,
)
from .._errors import SerializationError
from ..cluster import Gossip, is_live, oldest
from ..config import FailoverConfig, ShardingConfig
from ..persistence import EventSourcedBehavior
from ._coordinator import COORDINATOR_NAME, Membership, coordinator
from ._deliveries import Deliveries
from ._hosted import ACTIVE, NOT_HOSTED, STOP, STOPPING, Hosted, ShardAction
from ._region_routes import Routes
from ._routing import DRAIN, Entity, Inbound, RegionRouting, RegionStatistics
from ._sharded import ShardedBehavior, ShardEnvelope
from ._wire import (
    BeginHandOff,
    DropShard,
    GetShardHome,
    HandOff,
    HandOffMarker,
    RegionLeaving,
    RegionLeavingAck,
    RegionRegistered,
    RegisterRegion,
    ShardHome,
    ShardStopped,
)
from .replication._primary_side import PrimarySide
from .replication._replica import replica_actor
from .replication._replication import REPLICA_NAME, Fenced, Replication, SyncDone
from .replication._wire import ShardReplicas, check_shard, node_of

if TYPE_CHECKING:
    from ..cluster import MembershipSystem

__all__ = ["RegionLeave", "RegionRouting", "RegionStatistics", "region"]

_log = logging.getLogger("casty_trio.sharding")


class RegionLeave:
    """Internal: hand every shard of this node off, then set ``done``."""

    __slots__ = ("done",)

    def __init__(self, done: trio.Event) -> None:
        self.done = done


class _Tick:
    __slots__ = ()


class _PassivationTick:
    __slots__ = ()


_TICK = _Tick()
_PASSIVATION_TICK = _PassivationTick()


class _Region:
    """The region's state and handlers (used by its actor only)."""

    def __init__(
        self,
        system: MembershipSystem,
        ctx: ActorContext[Any],
        name: str,
        spec: ShardedBehavior[Any],
        settings: ShardingConfig,
        routing: RegionRouting,
        failover: FailoverConfig,
    ) -> None:
        self.system = system
        self.ctx = ctx
        self.name = name
        self.path = "/" + name
        self.spec = spec
        self.num_shards = spec.num_shards
        self.settings = settings
        self.routing = routing
        self.me = system.self_node
        self.hosting = spec.role is None or spec.role in system.roles
        self.codec = system.remoting.codec
        self.hosted: dict[int, Hosted] = {}
        self.by_ref: dict[ActorRef[Any], Entity] = {}
        self.regions: dict[NodeAddress, ActorRef[Any]] = {}
        self.deliveries = Deliveries(system.remoting, self.path)
        self.routes = Routes(
            path=self.path,
            me=self.me,
            num_shards=self.num_shards,
            buffer_size=settings.buffer_size,
            routing=routing,
            deliveries=self.deliveries,
            hosted=self.hosted,
            deliver_local=self.deliver_local,
            ask_home=self.ask_home,
            dead_letter=self.dead_letter,
        )
        self.coordinator_at: NodeAddress | None = None
        self.coordinator_ref: ActorRef[Any] | None = None
        self.registered = False
        self.live: frozenset[NodeAddress] = frozenset()
        self.leave: trio.Event | None = None
        self.leave_acked = False
        self.failover = failover
        self.replication: Replication | None = None
        self.primary: PrimarySide | None = None
        config = spec.replication
        if config is not None and config.replicas > 0 and self.hosting:
            self.replication = Replication(
                system,
                self.path,
                spec.entity_factory,
                spec.num_shards,
                config,
                failover,
                settings.retry_interval,
            )
            ctx.spawn(replica_actor(self.replication, ctx.self), REPLICA_NAME)
            self.primary = PrimarySide(self, self.replication)

    # ------------------------------------------------------------------ plumbing

    def region_at(self, node: NodeAddress) -> ActorRef[Any] | None:
        if node == self.me:
            return self.ctx.self
        ref = self.regions.get(node)
        if ref is None:
            ref = self.regions[node] = self.system.lookup(self.path, node=node)  # type: ignore[assignment]
        return ref

    def to_coordinator(self, message: Any) -> None:
        node = self.coordinator_at
        if node is None:
            return
        if self.coordinator_ref is None:
            self.coordinator_ref = self.system.lookup(f"{self.path}/{COORDINATOR_NAME}", node=node)
        if self.coordinator_ref is not None:
            self.coordinator_ref.tell(message)

    def dead_letter(self, eid: str, message: Any) -> None:
        dead_letter(self.system, ShardEnvelope(eid, message), self.ctx.self)

    def ask_home(self, shard: int) -> None:
        """Ask the coordinator where ``shard`` lives. Until the region is registered with it,
        the question waits: :meth:`on_registered` asks for every shard still requested."""
        if self.registered:
            self.to_coordinator(GetShardHome(shard, self.me.host, self.me.port))

    def flush(self, shard: int) -> None:
        """Deliver what waited for ``shard`` to be served (the replication's ``HostingRegion``
        port: a new primary's history copy is over)."""
        self.routes.flush(shard)

    # ------------------------------------------------------------------ entity lifecycle

    def deliver_local(self, hosted: Hosted, eid: str, message: Any) -> None:
        """Hand ``message`` to entity ``eid`` of ``hosted``, started if it is not running."""
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
        if hosted.state == ACTIVE and eid not in routing.pending:
            routing.fast[eid] = entity

    def start_entity(self, hosted: Hosted, eid: str) -> Entity | None:
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

    def on_terminated(self, ref: ActorRef[Any]) -> None:
        entity = self.by_ref.pop(ref, None)
        if entity is None:
            return
        hosted = self.hosted.get(entity.shard)
        if hosted is None:
            return
        if hosted.entities.get(entity.eid) is entity:
            del hosted.entities[entity.eid]
        if self.routing.fast.get(entity.eid) is entity:
            del self.routing.fast[entity.eid]
        waiting = entity.waiting
        if waiting:
            if hosted.state == STOPPING:
                # Older than anything buffered for the shard since the stop began.
                self.routes.buffer_first(entity.shard, entity.eid, waiting)
            else:
                for message in waiting:
                    self.deliver_local(hosted, entity.eid, message)
        if hosted.state == STOPPING and not hosted.entities:
            self.shard_stopped(hosted)

    def passivate_idle(self) -> None:
        routing = self.routing
        routing.tick += 1
        now = routing.tick
        for hosted in self.hosted.values():
            for entity in hosted.entities.values():
                # Ticks come every passivate_after / 2: three apart means idle at least that long.
                if not entity.stopping and now - entity.last >= 3:
                    if routing.fast.get(entity.eid) is entity:
                        del routing.fast[entity.eid]
                    entity.stopping = True
                    stop_after_queued(entity.ref)

    # ------------------------------------------------------------------ handoff

    def perform(self, hosted: Hosted, action: ShardAction | None) -> None:
        """Do what ``hosted`` decided (see ``_hosted.py``; its ``NOT_HOSTED`` answers a
        ``HandOff``, in :meth:`on_hand_off`)."""
        if action is STOP:
            self.stop_entities(hosted)

    def not_hosted(self, shard: int, epoch: int) -> None:
        """Tell the coordinator this node does not host allocation ``epoch`` of ``shard``, so
        that a handoff of it goes on."""
        self.to_coordinator(ShardStopped(shard, epoch, self.me.host, self.me.port, hosted=False))

    def stop_entities(self, hosted: Hosted) -> None:
        """``hosted`` is stopping: stop its entities after their queued messages; once they are
        all gone it is stopped."""
        fast = self.routing.fast
        for entity in hosted.entities.values():
            if fast.get(entity.eid) is entity:
                del fast[entity.eid]
            if not entity.stopping:
                entity.stopping = True
                stop_after_queued(entity.ref)
        if not hosted.entities:
            self.shard_stopped(hosted)

    def shard_stopped(self, hosted: Hosted) -> None:
        del self.hosted[hosted.shard]
        if self.replication is not None:
            primary = self.replication.primaries.get(hosted.shard)
            if primary is not None and primary.epoch == hosted.epoch:
                del self.replication.primaries[hosted.shard]
        self.to_coordinator(ShardStopped(hosted.shard, hosted.epoch, self.me.host, self.me.port))
        self.routes.stopped(hosted.shard)
        self.check_left()

    def on_begin_hand_off(self, msg: BeginHandOff) -> None:
        home = node_of(msg.host, msg.port)
        self.routes.forget_home(check_shard(msg.shard, self.num_shards))
        if home == self.me:
            return
        ref = self.region_at(home)
        if ref is not None:
            ref.tell(HandOffMarker(msg.shard, msg.round, self.me.host, self.me.port))

    def on_marker(self, msg: HandOffMarker) -> None:
        hosted = self.hosted.get(msg.shard)
        if hosted is not None:
            self.perform(hosted, hosted.marker(msg.round, node_of(msg.host, msg.port)))

    def on_hand_off(self, msg: HandOff) -> None:
        """The coordinator hands a shard hosted here off (also called by the replication's
        ``PrimarySide`` for a handoff that waited for the end of a history copy)."""
        regions = {node_of(host, port) for host, port in msg.regions}
        hosted = self.hosted.get(check_shard(msg.shard, self.num_shards))
        if hosted is None:
            self.not_hosted(msg.shard, msg.epoch)
            return
        expected = (regions & self.live) - {self.me}
        deadline = trio.current_time() + self.settings.handoff_timeout
        action = hosted.hand_off(msg, expected, deadline)
        if action is NOT_HOSTED:  # another allocation epoch: this one is not here
            self.not_hosted(msg.shard, msg.epoch)
        else:
            self.perform(hosted, action)

    def on_shard_home(self, msg: ShardHome) -> None:
        shard = check_shard(msg.shard, self.num_shards)
        home = node_of(msg.host, msg.port)
        hosted = self.hosted.get(shard)
        if home == self.me:
            if hosted is None:
                hosted = self.hosted[shard] = Hosted(shard, msg.epoch)
                if self.primary is not None:
                    self.primary.start(hosted)
            else:
                hosted.home_confirmed()
        elif hosted is not None and (action := hosted.moved()) is not None:
            _log.warning(
                "%s: shard %d moved to %s while hosted here; stopping it", self.path, shard, home
            )
            self.perform(hosted, action)
        self.routes.set_home(shard, home)

    def fence(self, shard: int, epoch: int) -> None:
        """Someone knows allocation ``epoch`` of ``shard``: stop hosting an older one."""
        hosted = self.hosted.get(shard)
        if hosted is not None and (action := hosted.fence(epoch)) is not None:
            _log.warning(
                "%s: shard %d has a newer allocation (epoch %d > %d); this node no longer "
                "owns it and stops it",
                self.path,
                shard,
                epoch,
                hosted.epoch,
            )
            self.perform(hosted, action)

    def on_drop(self, msg: DropShard) -> None:
        hosted = self.hosted.get(msg.shard)
        if hosted is not None:
            self.perform(hosted, hosted.drop(msg.epoch))

    # ------------------------------------------------------------------ membership, coordinator

    def on_membership(self, gossip: Gossip) -> None:
        self.live = frozenset(m.node for m in gossip.members.values() if is_live(m))
        self.routes.forget_nodes(self.live)
        for node in list(self.regions):
            if node not in self.live:
                del self.regions[node]
        self.deliveries.forget(self.live)
        if self.primary is not None:
            self.primary.forget(self.live)
        for hosted in list(self.hosted.values()):
            self.perform(hosted, hosted.members_changed(self.live))
        host = oldest(gossip, role=self.spec.role)  # where the coordinator runs
        self.place_coordinator(host.node if host is not None else None)
        child = self.ctx.child(COORDINATOR_NAME)
        if child is not None:
            child.tell(Membership(gossip))

    def place_coordinator(self, node: NodeAddress | None) -> None:
        if node == self.coordinator_at:
            return
        old, self.coordinator_at = self.coordinator_at, node
        self.coordinator_ref = None
        self.registered = False
        self.leave_acked = False
        child = self.ctx.child(COORDINATOR_NAME)
        if old == self.me and child is not None:
            self.ctx.stop(child)
        if node == self.me and child is None:
            self.ctx.spawn(
                coordinator(
                    self.system,
                    self.path,
                    self.num_shards,
                    self.settings,
                    replication=self.spec.replication,
                    failover=self.failover,
                ),
                COORDINATOR_NAME,
            )
        self.register()

    def register(self) -> None:
        shards = [(h.shard, h.epoch) for h in self.hosted.values() if h.state != STOPPING]
        replicas = []
        if self.replication is not None:
            replicas = [(s, epoch) for s, (epoch, _) in self.replication.replica_of.items()]
        self.to_coordinator(
            RegisterRegion(
                self.me.host,
                self.me.port,
                self.hosting,
                shards,
                replicas,
                self.system.self_unique.uid,
            )
        )

    def on_registered(self, msg: RegionRegistered) -> None:
        if node_of(msg.host, msg.port) != self.coordinator_at or self.registered:
            return
        self.registered = True
        for shard in self.routes.requested:
            self.to_coordinator(GetShardHome(shard, self.me.host, self.me.port))
        if self.leave is not None:
            self.to_coordinator(RegionLeaving(self.me.host, self.me.port))

    def on_tick(self) -> None:
        if not self.registered:
            self.coordinator_ref = None  # look it up again: it may have started meanwhile
            self.register()
        else:
            for shard in self.routes.requested:
                self.to_coordinator(GetShardHome(shard, self.me.host, self.me.port))
            if self.leave is not None and not self.leave_acked:
                self.to_coordinator(RegionLeaving(self.me.host, self.me.port))
        now = trio.current_time()
        for hosted in list(self.hosted.values()):
            action = hosted.tick(now)
            if action is not None:
                _log.warning(
                    "%s: handoff of shard %d: no marker from %s in time; stopping it anyway",
                    self.path,
                    hosted.shard,
                    ", ".join(map(str, sorted(hosted.awaiting))),
                )
                self.perform(hosted, action)

    def on_leave(self, msg: RegionLeave) -> None:
        self.leave = msg.done
        self.leave_acked = False
        if self.registered:
            self.to_coordinator(RegionLeaving(self.me.host, self.me.port))
        self.check_left()

    def on_leaving_ack(self, msg: RegionLeavingAck) -> None:
        if node_of(msg.host, msg.port) == self.coordinator_at:
            self.leave_acked = True
            self.check_left()

    def check_left(self) -> None:
        acked = self.leave_acked or self.coordinator_at is None
        if self.leave is not None and acked and not self.hosted:
            self.leave.set()

    # ------------------------------------------------------------------ dispatch

    async def receive(self, ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
        routing = self.routing
        if msg is DRAIN:
            # Entities owed a wake-up for peers' deliveries get it (none are owed when another
            # message handed them over before this one).
            if routing.owed:
                await routing.drain_inbound()
            return Behaviors.same()
        if routing.owed:
            routing.flush_inbound()  # before anything else
        if type(msg) is ShardEnvelope:
            eid = msg.entity_id
            routing.took(eid)
            self.routes.route(eid, msg.message, False)
            return Behaviors.same()
        try:
            self.dispatch(msg)
        except (ValueError, SerializationError) as exc:
            _log.warning("%s: dropped an invalid %s: %s", self.path, type(msg).__name__, exc)
        return Behaviors.same()

    def dispatch(self, msg: Any) -> None:
        if type(msg) is Inbound:
            # The sender hashed the id with the same function and shard count: reuse it.
            self.routing.took(msg.eid)
            self.routes.route(msg.eid, msg.message, True, check_shard(msg.shard, self.num_shards))
        elif isinstance(msg, Terminated):
            self.on_terminated(msg.ref)
        elif isinstance(msg, ShardHome):
            self.on_shard_home(msg)
        elif isinstance(msg, BeginHandOff):
            self.on_begin_hand_off(msg)
        elif isinstance(msg, HandOffMarker):
            self.on_marker(msg)
        elif isinstance(msg, HandOff):
            self.on_hand_off(msg)
        elif isinstance(msg, _Tick):
            self.on_tick()
        elif isinstance(msg, _PassivationTick):
            self.passivate_idle()
        elif isinstance(msg, Membership):
            self.on_membership(msg.gossip)
        elif isinstance(msg, RegionRegistered):
            self.on_registered(msg)
        elif isinstance(msg, RegionLeave):
            self.on_leave(msg)
        elif isinstance(msg, RegionLeavingAck):
            self.on_leaving_ack(msg)
        elif isinstance(msg, DropShard):
            self.on_drop(msg)
        elif isinstance(msg, ShardReplicas):
            if self.primary is not None:
                self.primary.on_shard_replicas(msg)
        elif isinstance(msg, SyncDone):
            if self.primary is not None:
                self.primary.on_sync_done(msg)
        elif isinstance(msg, Fenced):
            self.fence(msg.shard, msg.epoch)
        else:
            _log.warning("%s: unexpected message %r", self.path, type(msg).__name__)


def region(
    system: MembershipSystem,
    name: str,
    spec: ShardedBehavior[Any],
    settings: ShardingConfig,
    routing: RegionRouting,
    failover: FailoverConfig,
) -> Behavior[Any]:
    """The behavior of the region of sharded type ``name`` on ``system``."""

    def with_timers(ctx: ActorContext[Any], timers: TimerScheduler[Any]) -> Behavior[Any]:
        state = routing.state = _Region(system, ctx, name, spec, settings, routing, failover)
        timers.start_periodic("retry", _TICK, settings.retry_interval)
        passivate_after = spec.passivate_after or settings.passivate_after
        if passivate_after is not None:
            timers.start_periodic("passivate", _PASSIVATION_TICK, passivate_after / 2)
        unsubscribe = system.subscribe_membership(lambda gossip: ctx.self.tell(Membership(gossip)))
        state.on_membership(system.cluster_gossip())
        system.remoting.set_receiver(state.path, routing.receive)
        system.remoting.set_bulk_receiver(state.deliveries.path, routing.receive_run)

        async def post_stop(ctx: ActorContext[Any]) -> None:
            unsubscribe()
            system.remoting.set_receiver(state.path, None)
            system.remoting.set_bulk_receiver(state.deliveries.path, None)
            routing.flush_inbound()
            routing.fast.clear()
            routing.away.clear()
            if state.leave is not None:
                state.leave.set()

        return Behaviors.with_lifecycle(Behaviors.receive(state.receive), post_stop=post_stop)

    return Behaviors.with_timers(with_timers)
