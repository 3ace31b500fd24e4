"""The shard coordinator: decides which node hosts each shard of one sharded type.

One runs per type, as the child ``coordinator`` of the region on the oldest member with the
type's role (:func:`~casty_trio.cluster.oldest`: the regions compute that node from the
membership, so they agree without asking).
It keeps no durable state: a new coordinator recovers the allocation from the regions, which
report the shards they host (with the allocation epoch) when they register; shards that were on
a node that is gone are simply allocated again on their next message.

Allocation is least-shard-first (:class:`LeastShardAllocation`) among the regions hosting the
type. Rebalancing, a leaving region and a downed node move shards through the handoff protocol
described in ``_region.py``; a shard is never allocated while a handoff of it is under way, and
requests for it wait. A replicated shard whose primary is gone is promoted to one of its
replicas: :class:`Promotions` (``replication/_promotion.py``) decides which, without I/O, and the
coordinator performs its decisions.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import attrs
import trio

from .._core import ActorContext, ActorRef, Behavior, Behaviors, NodeAddress, TimerScheduler
from ..cluster import Gossip, is_live
from ..cluster._incarnations import Incarnations
from ..config import FailoverConfig, ShardingConfig
from ._allocation import LeastShardAllocation, ShardAllocationStrategy, place_replicas
from ._wire import (
    BeginHandOff,
    DropShard,
    GetShardHome,
    HandOff,
    RegionLeaving,
    RegionLeavingAck,
    RegionRegistered,
    RegisterRegion,
    ShardHome,
    ShardStopped,
)
from .replication._config import ReplicationConfig
from .replication._promotion import (
    AllocateAfresh,
    Promote,
    PromotionAction,
    Promotions,
    Query,
)
from .replication._wire import ReplicaHoldings, ReplicaQuery, ShardReplicas, check_shard, node_of

if TYPE_CHECKING:
    from ..cluster import MembershipSystem

__all__ = ["COORDINATOR_NAME", "Membership", "coordinator"]

COORDINATOR_NAME = "coordinator"

_log = logging.getLogger("casty_trio.sharding")


@attrs.define
class _RegionInfo:
    hosting: bool
    leaving: bool = False


@attrs.define
class _HandOff:
    home: NodeAddress
    epoch: int
    round: int
    deadline: float


class Membership:
    """Internal: the membership changed (posted to regions and coordinators by the system)."""

    __slots__ = ("gossip",)

    def __init__(self, gossip: Gossip) -> None:
        self.gossip = gossip


class _RebalanceTick:
    __slots__ = ()


_REBALANCE = _RebalanceTick()


class _PromotionTick:
    __slots__ = ()


_PROMOTION_TICK = _PromotionTick()


class _Coordinator:
    def __init__(
        self,
        system: MembershipSystem,
        ctx: ActorContext[Any],
        region_path: str,
        num_shards: int,
        settings: ShardingConfig,
        strategy: ShardAllocationStrategy,
        replication: ReplicationConfig | None = None,
        failover: FailoverConfig | None = None,
    ) -> None:
        self.system = system
        self.ctx = ctx
        self.region_path = region_path
        self.num_shards = num_shards
        self.settings = settings
        self.strategy = strategy
        self.me = system.self_node
        self.regions: dict[NodeAddress, _RegionInfo] = {}
        self.allocation: dict[int, tuple[NodeAddress, int]] = {}
        self.handoffs: dict[int, _HandOff] = {}
        self.waiting: dict[int, set[NodeAddress]] = {}
        self.epoch = 0
        self.rounds = 0
        self.live: frozenset[NodeAddress] = frozenset()
        # a new incarnation at an address: a restarted node, what it held is gone
        self.incarnations = Incarnations()
        self.recovering = True
        self.recovery_deadline = trio.current_time() + settings.recovery_timeout
        self.next_rebalance = trio.current_time() + settings.rebalance_interval
        self.replicas = replication.replicas if replication is not None else 0
        self.failover = failover if failover is not None else FailoverConfig()
        # The other side of a partition is gone within the downing notice window of its own
        # decision: waiting less could leave two primaries of a shard serving at once.
        self.failover_margin = max(
            self.failover.failover_margin, system.cluster_settings.down_notice_window
        )
        self.replica_sets: dict[int, tuple[NodeAddress, ...]] = {}
        self.sources: dict[int, tuple[NodeAddress, ...]] = {}
        self.promotions = Promotions(query_timeout=self.failover.query_timeout)
        # when the promotion timer fires, while it is set
        self.promotion_wake = 0.0
        self.timers: TimerScheduler[Any] | None = None
        # Epochs grow across coordinators: a later coordinator runs on a younger member, whose
        # up number is higher, so its epochs are above any an older coordinator gave out.
        me = system.self_unique
        member = system.cluster_gossip().members.get(me)
        self.epoch = (member.up_number if member is not None else 0) << 32

    # ------------------------------------------------------------------ plumbing

    def region(self, node: NodeAddress) -> ActorRef[Any] | None:
        return self.system.lookup(self.region_path, node=node)

    def tell(self, node: NodeAddress, message: Any) -> None:
        ref = self.region(node)
        if ref is not None:
            ref.tell(message)

    def takes_shards(self, node: NodeAddress, info: _RegionInfo) -> bool:
        """Whether ``node``'s region may receive shards or replicas now."""
        return info.hosting and not info.leaving and node in self.live

    def candidates(self) -> dict[NodeAddress, list[int]]:
        """Shards per region that may receive shards now."""
        current: dict[NodeAddress, list[int]] = {
            node: [] for node, info in self.regions.items() if self.takes_shards(node, info)
        }
        for shard, (node, _) in self.allocation.items():
            if node in current:
                current[node].append(shard)
        return current

    def announce(self, shard: int) -> None:
        """Tell every region, and whoever asked, where ``shard`` lives now."""
        node, epoch = self.allocation[shard]
        if self.replicas:
            self.send_replicas(shard, self.sources.pop(shard, ()))
        home = ShardHome(shard, node.host, node.port, epoch)
        self.tell(node, home)  # the home first, so it hosts before forwarded messages arrive
        for target in set(self.regions) | self.waiting.pop(shard, set()):
            if target != node:
                self.tell(target, home)

    def allocate(self, shard: int, requester: NodeAddress) -> bool:
        current = self.candidates()
        if not current:
            return False
        node = self.strategy.allocate(shard, requester, current)
        if node not in current:
            raise ValueError(f"allocation strategy chose {node}, which is not a candidate")
        self.epoch += 1
        self.allocation[shard] = (node, self.epoch)
        if self.replicas:
            self.place(shard)
        return True

    # ------------------------------------------------------------------ replicas

    def replica_candidates(self) -> set[NodeAddress]:
        return {node for node, info in self.regions.items() if self.takes_shards(node, info)}

    def replica_load(self) -> dict[NodeAddress, int]:
        load: dict[NodeAddress, int] = {}
        for nodes in self.replica_sets.values():
            for node in nodes:
                load[node] = load.get(node, 0) + 1
        return load

    def place(
        self,
        shard: int,
        load: dict[NodeAddress, int] | None = None,
        candidates: set[NodeAddress] | None = None,
    ) -> bool:
        """Choose ``shard``'s replicas around its primary; whether they changed. ``load`` (kept
        up to date here) and ``candidates`` save recomputing them for many shards."""
        if load is None:
            load = self.replica_load()
        if candidates is None:
            candidates = self.replica_candidates()
        primary, _ = self.allocation[shard]
        current = self.replica_sets.get(shard, ())
        chosen = place_replicas(primary, current, candidates, load, self.replicas)
        if chosen == current:
            return False
        for node in current:
            load[node] -= 1
        for node in chosen:
            load[node] = load.get(node, 0) + 1
        self.replica_sets[shard] = chosen
        return True

    def send_replicas(self, shard: int, sources: tuple[NodeAddress, ...]) -> None:
        """Tell the primary (first) and every replica of ``shard`` who its replicas are."""
        node, epoch = self.allocation[shard]
        replicas = self.replica_sets.get(shard, ())
        listed = [(n.host, n.port) for n in replicas]
        self.tell(
            node,
            ShardReplicas(
                shard, epoch, node.host, node.port, listed, [(n.host, n.port) for n in sources]
            ),
        )
        for replica in replicas:
            self.tell(replica, ShardReplicas(shard, epoch, node.host, node.port, listed, []))

    def refresh_replicas(self) -> None:
        """Top up the replicas of every allocated shard (members came or went)."""
        if not self.replicas or self.recovering:
            return
        load = self.replica_load()
        candidates = self.replica_candidates()
        for shard in sorted(self.allocation):
            if shard not in self.handoffs and self.place(shard, load, candidates):
                self.send_replicas(shard, ())

    # ------------------------------------------------------------------ promotion

    def start_promotion(self, shard: int, delay: float) -> bool:
        """``shard`` lost its primary: ask its live replicas, after ``delay``, which holds the
        most; False when it has none."""
        candidates = [n for n in self.replica_sets.get(shard, ()) if n in self.live]
        if not candidates:
            return False
        self.perform(self.promotions.lost_primary(shard, candidates, trio.current_time(), delay))
        return True

    def perform(self, actions: list[PromotionAction]) -> None:
        """Carry out the decisions of ``promotions``, then wake it when it next has to decide."""
        for action in actions:
            if isinstance(action, Query):
                self.query(action)
            elif isinstance(action, Promote):
                self.promote(action)
            else:
                self.allocate_afresh(action)
        self.wake_promotions()

    def wake_promotions(self) -> None:
        """Set the promotion timer for the next deadline of ``promotions`` (unless it is set
        for earlier already): the rebalance tick is coarser."""
        at = self.promotions.next_deadline()
        if at is None or self.timers is None:
            return
        if self.timers.is_active("promotion") and self.promotion_wake <= at:
            return
        self.promotion_wake = at
        self.timers.start_single("promotion", _PROMOTION_TICK, max(0.0, at - trio.current_time()))

    def query(self, action: Query) -> None:
        path = f"{self.region_path}/replica"
        question = ReplicaQuery(action.shard, action.round, self.me.host, self.me.port)
        for node in action.nodes:
            ref = self.system.lookup(path, node=node)
            if ref is not None:
                ref.tell(question)

    def promote(self, action: Promote) -> None:
        """Make the replica holding the most of the shard its primary; the others that
        answered are its sources of history (and stay replicas)."""
        shard = action.shard
        self.epoch += 1
        self.allocation[shard] = (action.primary, self.epoch)
        self.place(shard)
        self.sources[shard] = action.sources
        _log.info(
            "coordinator %s: shard %d promoted to %s (holds %d; others %s)",
            self.region_path,
            shard,
            action.primary,
            dict(action.holdings)[action.primary],
            {str(n): t for n, t in action.holdings if n != action.primary},
        )
        self.waiting.setdefault(shard, set())
        self.announce(shard)

    def allocate_afresh(self, action: AllocateAfresh) -> None:
        _log.warning(
            "coordinator %s: no replica of shard %d answered; allocating it afresh",
            self.region_path,
            action.shard,
        )
        if action.sources:
            self.sources[action.shard] = action.sources
        self.reallocate(action.shard)

    def on_holdings(self, msg: ReplicaHoldings) -> None:
        shard = check_shard(msg.shard, self.num_shards)
        node = node_of(msg.host, msg.port)
        self.perform(self.promotions.holdings(node, shard, msg.round, msg.total))

    # ------------------------------------------------------------------ requests

    def on_register(self, msg: RegisterRegion) -> None:
        node = node_of(msg.host, msg.port)
        if msg.uid and not self.incarnations.may_be_current(node, msg.uid):
            _log.info(
                "coordinator %s: registration of %s#%d ignored: that incarnation is over",
                self.region_path,
                node,
                msg.uid,
            )
            return
        info = self.regions.get(node)
        if info is None:
            self.regions[node] = _RegionInfo(msg.hosting)
        else:
            info.hosting = msg.hosting
        for shard, epoch in msg.shards:
            self.claim(check_shard(shard, self.num_shards), node, epoch)
        for shard, epoch in msg.replicas:
            check_shard(shard, self.num_shards)
            self.epoch = max(self.epoch, epoch)
            current = self.replica_sets.get(shard, ())
            if node not in current:
                self.replica_sets[shard] = (*current, node)
        self.tell(node, RegionRegistered(self.me.host, self.me.port))
        self.maybe_recovered()
        if not self.recovering:
            self.serve_waiting()
            self.refresh_replicas()

    def claim(self, shard: int, node: NodeAddress, epoch: int) -> None:
        """A region reports hosting ``shard``: adopt it, or settle a double claim."""
        self.epoch = max(self.epoch, epoch)
        current = self.allocation.get(shard)
        if current is None or current[0] == node or current[0] not in self.live:
            if shard not in self.handoffs:
                self.allocation[shard] = (node, epoch)
            return
        # Two live regions claim it: the later allocation (then the lower address) keeps it.
        if (epoch, current[0]) > (current[1], node):
            self.allocation[shard] = (node, epoch)
            loser, loser_epoch = current
        else:
            loser, loser_epoch = node, epoch
        _log.warning(
            "coordinator %s: shard %d claimed twice; %s drops it", self.region_path, shard, loser
        )
        self.tell(loser, DropShard(shard, loser_epoch))

    def on_get_home(self, msg: GetShardHome) -> None:
        shard = check_shard(msg.shard, self.num_shards)
        requester = node_of(msg.host, msg.port)
        if self.recovering or shard in self.handoffs or shard in self.promotions:
            self.waiting.setdefault(shard, set()).add(requester)
            return
        current = self.allocation.get(shard)
        if current is not None:
            node, epoch = current
            self.tell(requester, ShardHome(shard, node.host, node.port, epoch))
            return
        self.waiting.setdefault(shard, set()).add(requester)
        if self.start_promotion(shard, self.failover_margin):
            return  # known replicas, primary unknown (it was on a coordinator that died)
        if self.allocate(shard, requester):
            self.announce(shard)

    def serve_waiting(self) -> None:
        for shard in list(self.waiting):
            if shard in self.handoffs or shard in self.promotions:
                continue
            if shard not in self.allocation and self.start_promotion(shard, self.failover_margin):
                continue
            if shard in self.allocation or self.allocate(shard, self.me):
                self.announce(shard)

    def maybe_recovered(self) -> None:
        if not self.recovering:
            return
        expected = {node for node in self.live}
        if expected <= set(self.regions) or trio.current_time() >= self.recovery_deadline:
            self.recovering = False
            _log.debug(
                "coordinator %s at %s: %d shards known from %d regions",
                self.region_path,
                self.me,
                len(self.allocation),
                len(self.regions),
            )
            self.serve_waiting()

    # ------------------------------------------------------------------ handoff

    def start_hand_off(self, shard: int) -> None:
        home, epoch = self.allocation[shard]
        if home not in self.live:
            del self.allocation[shard]
            return
        self.rounds += 1
        deadline = trio.current_time() + self.settings.handoff_timeout
        self.handoffs[shard] = _HandOff(home, epoch, self.rounds, deadline)
        regions = [node for node in self.regions if node in self.live]
        begin = BeginHandOff(shard, epoch, self.rounds, home.host, home.port)
        for node in regions:
            self.tell(node, begin)
        self.tell(home, HandOff(shard, epoch, self.rounds, [(n.host, n.port) for n in regions]))

    def on_stopped(self, msg: ShardStopped) -> None:
        shard = check_shard(msg.shard, self.num_shards)
        node = node_of(msg.host, msg.port)
        if self.allocation.get(shard) == (node, msg.epoch):
            del self.allocation[shard]
        handoff = self.handoffs.get(shard)
        if handoff is not None and handoff.home == node:
            del self.handoffs[shard]
            if self.replicas and not msg.hosted:
                # The home never had it (a node restarted at that address, say): its history is
                # with the replicas only.
                if not self.start_promotion(shard, 0.0):
                    self.reallocate(shard)
                return
            if self.replicas:
                # The old home stopped cleanly, so it holds all the shard's history.
                self.sources[shard] = (node,) if node in self.live else ()
            self.reallocate(shard)
        elif shard in self.waiting and shard not in self.handoffs:
            self.reallocate(shard)
        if not self.handoffs:
            self.rebalance()

    def reallocate(self, shard: int) -> None:
        """After a handoff: allocate ``shard`` again and tell every region, which flush."""
        self.waiting.setdefault(shard, set())
        if shard not in self.allocation and not self.allocate(shard, self.me):
            return  # no region can take it now; requests wait for one
        self.announce(shard)

    def on_leaving(self, msg: RegionLeaving) -> None:
        node = node_of(msg.host, msg.port)
        info = self.regions.setdefault(node, _RegionInfo(hosting=False))
        info.leaving = True
        self.tell(node, RegionLeavingAck(self.me.host, self.me.port))
        for shard, (home, _) in list(self.allocation.items()):
            if home == node and shard not in self.handoffs:
                self.start_hand_off(shard)

    def on_tick(self) -> None:
        self.maybe_recovered()
        now = trio.current_time()
        self.perform(self.promotions.tick(now))
        for shard, handoff in list(self.handoffs.items()):
            if now >= handoff.deadline:
                _log.warning(
                    "coordinator %s: handoff of shard %d from %s timed out; it stays there",
                    self.region_path,
                    shard,
                    handoff.home,
                )
                del self.handoffs[shard]
                if self.allocation.get(shard) == (handoff.home, handoff.epoch):
                    self.announce(shard)
                else:
                    self.reallocate(shard)
        if now >= self.next_rebalance:
            self.next_rebalance = now + self.settings.rebalance_interval
            self.rebalance()
            self.refresh_replicas()

    def rebalance(self) -> None:
        if self.recovering:
            return
        moving = (*self.handoffs, *self.promotions)
        for shard in sorted(self.strategy.rebalance(self.candidates(), moving)):
            if shard in self.allocation and shard not in self.handoffs:
                self.start_hand_off(shard)

    # ------------------------------------------------------------------ membership

    def on_membership(self, gossip: Gossip) -> None:
        self.live = frozenset(m.node for m in gossip.members.values() if is_live(m))
        restarted = self.incarnations.update(gossip)
        if restarted:
            _log.info(
                "coordinator %s: %s restarted; what it hosted or replicated is gone",
                self.region_path,
                ", ".join(map(str, sorted(restarted))),
            )
        # What a restarted node held counts as gone, like what a node no longer live held. Its
        # region's registration may already be the new incarnation's: it stays.
        held = self.live - restarted
        for node in [n for n in self.regions if n not in self.live]:
            del self.regions[node]
        for node in restarted:
            info = self.regions.get(node)
            if info is not None:
                info.leaving = False
        lost = []
        for shard, (node, _) in list(self.allocation.items()):
            if node not in held:
                del self.allocation[shard]
                lost.append(shard)
        for shard, nodes in list(self.replica_sets.items()):
            kept = tuple(n for n in nodes if n in held)
            if kept != nodes:
                self.replica_sets[shard] = kept
        self.perform(self.promotions.members_changed(held))
        for shard in lost:
            if self.replicas and shard not in self.handoffs and shard not in self.promotions:
                self.start_promotion(shard, self.failover_margin)
        for shard, handoff in list(self.handoffs.items()):
            if handoff.home not in held:
                del self.handoffs[shard]
                if not (self.replicas and self.start_promotion(shard, self.failover_margin)):
                    self.reallocate(shard)
        for requesters in self.waiting.values():
            requesters &= self.live
        self.maybe_recovered()
        if not self.recovering:
            self.serve_waiting()
            self.refresh_replicas()

    # ------------------------------------------------------------------ dispatch

    async def receive(self, ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
        try:
            if isinstance(msg, GetShardHome):
                self.on_get_home(msg)
            elif isinstance(msg, ShardStopped):
                self.on_stopped(msg)
            elif isinstance(msg, RegisterRegion):
                self.on_register(msg)
            elif isinstance(msg, RegionLeaving):
                self.on_leaving(msg)
            elif isinstance(msg, _RebalanceTick):
                self.on_tick()
            elif isinstance(msg, Membership):
                self.on_membership(msg.gossip)
            elif isinstance(msg, ReplicaHoldings):
                self.on_holdings(msg)
            elif isinstance(msg, _PromotionTick):
                self.perform(self.promotions.tick(trio.current_time()))
            else:
                _log.warning("coordinator %s: unexpected %s", self.region_path, type(msg).__name__)
        except ValueError as exc:
            _log.warning(
                "coordinator %s: dropped an invalid %s: %s",
                self.region_path,
                type(msg).__name__,
                exc,
            )
        return Behaviors.same()


def coordinator(
    system: MembershipSystem,
    region_path: str,
    num_shards: int,
    settings: ShardingConfig,
    strategy: ShardAllocationStrategy | None = None,
    *,
    replication: ReplicationConfig | None = None,
    failover: FailoverConfig | None = None,
) -> Behavior[Any]:
    """The behavior of the coordinator of the sharded type whose regions live at
    ``region_path``."""
    if strategy is None:
        strategy = LeastShardAllocation(
            threshold=settings.rebalance_threshold,
            max_simultaneous=settings.max_simultaneous_rebalance,
        )
    chosen = strategy

    def with_timers(ctx: ActorContext[Any], timers: TimerScheduler[Any]) -> Behavior[Any]:
        state = _Coordinator(
            system, ctx, region_path, num_shards, settings, chosen, replication, failover
        )
        state.timers = timers
        state.on_membership(system.cluster_gossip())
        timers.start_periodic(
            "rebalance", _REBALANCE, min(settings.rebalance_interval, settings.recovery_timeout)
        )
        return Behaviors.receive(state.receive)

    return Behaviors.with_timers(with_timers)
