"""The cluster daemon: the actor at ``/$cluster`` of every node that keeps the membership.

It owns this node's :class:`Gossip` and changes it only through the pure functions of
``_membership``. Timers drive it: a gossip round (push the state to one random member, or ask
the seeds to join while not yet a member), and a heartbeat round (heartbeats to every member,
the failure detector's verdicts into reachability, the split-brain resolver once the
unreachable set was stable for ``stable_after``). After every change the leader actions run,
the events of the change are published, and watchers of actors on downed or removed nodes
learn that those actors are gone.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

import attrs
import trio

from .._core import ActorContext, ActorRef, Behavior, Behaviors, NodeAddress, TimerScheduler
from ._downing import DecisionKind, DowningInput, DowningStrategy, StableAfter
from ._events import MemberDowned, MemberLeft, diff_events
from ._failure_detector import FailureDetectorRegistry, PhiAccrualFailureDetector
from ._membership import (
    _GONE,
    Gossip,
    Member,
    MemberStatus,
    UniqueAddress,
    down,
    is_live,
    join,
    leader,
    leader_actions,
    leave,
    mark_reachable,
    mark_unreachable,
    merge,
    seen_by,
    unreachable_members,
)
from ._wire import (
    GossipPush,
    Heartbeat,
    Join,
    NodeStatus,
    StatusRequest,
    Welcome,
    gossip_from_wire,
    gossip_to_wire,
    member_from_wire,
    member_to_wire,
    unique_address_from_wire,
    unique_address_to_wire,
)

if TYPE_CHECKING:
    from ._system import MembershipSystem

__all__ = ["DAEMON_NAME", "ClusterSettings", "DaemonHooks", "daemon"]

_log = logging.getLogger("casty_trio.cluster")

DAEMON_NAME = "$cluster"
DAEMON_PATH = "/" + DAEMON_NAME


@attrs.frozen
class ClusterSettings:
    """Timings of membership (seconds), from ``[cluster]`` in the configuration."""

    gossip_interval: float = 0.2
    heartbeat_interval: float = 0.5
    threshold: float = 8.0
    max_sample_size: int = 200
    min_std_deviation: float = 0.1
    acceptable_heartbeat_pause: float = 0.0
    first_heartbeat_estimate: float = 1.0
    stable_after: float = 5.0
    join_retry: float = 0.5


class _GossipTick:
    pass


class _HeartbeatTick:
    pass


@attrs.frozen
class GetGossip:
    """Local query: the daemon answers with its current :class:`Gossip`."""

    reply_to: ActorRef[Gossip]


@attrs.frozen
class LeaveCluster:
    """Local command: this node leaves the cluster gracefully."""


@attrs.frozen
class DaemonHooks:
    """How the daemon reports to the system that owns it.

    Attributes:
        ready: Called once with the daemon's state when it starts.
        changed: Called with every new membership value this node adopts.
        left: Called when this node is downed or removed (with that status).
    """

    ready: Callable[[_Daemon], None]
    changed: Callable[[Gossip], None]
    left: Callable[[MemberStatus], None]


class _Daemon:
    """The daemon's state and handlers (one instance per node, used by its actor only)."""

    def __init__(
        self,
        system: MembershipSystem,
        ctx: ActorContext[Any],
        timers: TimerScheduler[Any],
        member: Member,
        seeds: tuple[NodeAddress, ...],
        settings: ClusterSettings,
        strategy: DowningStrategy,
        hooks: DaemonHooks,
    ) -> None:
        self.system = system
        self.hooks = hooks
        self.ctx = ctx
        self.timers = timers
        self.me = member.unique
        self.member = member
        self.seeds = seeds
        self.settings = settings
        self.strategy = strategy
        self.gossip = Gossip()
        self.joined = False
        self.rng = random.Random(member.unique.uid)
        self.detectors: FailureDetectorRegistry[UniqueAddress] = FailureDetectorRegistry(
            partial(
                PhiAccrualFailureDetector,
                threshold=settings.threshold,
                max_sample_size=settings.max_sample_size,
                min_std_deviation=settings.min_std_deviation,
                acceptable_heartbeat_pause=settings.acceptable_heartbeat_pause,
                first_heartbeat_estimate=settings.first_heartbeat_estimate,
            )
        )
        self.stable: StableAfter[UniqueAddress] = StableAfter(settings.stable_after)
        self.heartbeat_seq = 0
        self.seed_index = 0

    # ------------------------------------------------------------------ plumbing

    def daemon_at(self, node: NodeAddress) -> ActorRef[Any]:
        ref = self.system.lookup(DAEMON_PATH, node=node)
        assert ref is not None
        return ref

    def others(self) -> list[Member]:
        return [
            m for m in self.gossip.members.values() if m.unique != self.me and m.status not in _GONE
        ]

    def update(self, new: Gossip, *, spread: bool = False) -> None:
        """Adopt ``new`` (after leader actions), publish what changed, react to it.

        A status change made here (``spread``: a join handled, a leave, a downing decision;
        or a leader action) is pushed to every member at once, asking for their merged state
        back, instead of waiting for gossip rounds to carry it: a member joins, is moved up and
        is seen up everywhere within a few round trips, not a few gossip intervals. Merges of
        received gossip are not pushed on (that would echo every change n times).
        """
        acted = leader_actions(new, self.me)
        spread = spread or _statuses(acted) != _statuses(new)
        new = acted
        old = self.gossip
        if new is old or new == old:
            self.gossip = new
            return
        self.gossip = new
        if spread and self.joined:
            push = GossipPush(gossip_to_wire(new), True)
            for member in self.others():
                self.daemon_at(member.node).tell(push)
        events = diff_events(old, new, self_unique=self.me)
        stream = self.system.event_stream
        for event in events:
            stream.publish(event)
            if isinstance(event, MemberDowned | MemberLeft) and event.member.unique != self.me:
                self.detectors.remove(event.member.unique)
                self.system.remoting.node_gone(event.member.node)
        mine = new.member(self.me)
        was = old.member(self.me)
        if (
            mine is not None
            and mine.status is MemberStatus.exiting
            and (was is None or was.status is not MemberStatus.exiting)
        ):
            # This node is about to go (graceful leave): tell every member it is exiting now,
            # before the system shuts down, so that nobody mistakes its silence for a failure.
            push = GossipPush(gossip_to_wire(new), False)
            for member in self.others():
                self.daemon_at(member.node).tell(push)
        self.hooks.changed(new)
        if mine is not None and mine.status in (MemberStatus.down, MemberStatus.removed):
            status = mine.status
            if status is MemberStatus.removed and (
                was is None or was.status in (MemberStatus.joining, MemberStatus.up)
            ):
                # Removed without leaving: the others downed it while it was cut off (it saw
                # neither its own downing nor theirs). It is as downed as if it had.
                status = MemberStatus.down
            self.hooks.left(status)

    # ------------------------------------------------------------------ rounds

    def gossip_round(self) -> None:
        if not self.joined:
            if not self.seeds or self.seeds == (self.me.node,):
                self.form_cluster()
                return
            seed = self.seeds[self.seed_index % len(self.seeds)]
            self.seed_index += 1
            if seed != self.me.node:
                self.daemon_at(seed).tell(Join(member_to_wire(self.member)))
            return
        targets = self.others()
        if targets:
            target = self.rng.choice(targets)
            self.daemon_at(target.node).tell(GossipPush(gossip_to_wire(self.gossip), True))

    def form_cluster(self) -> None:
        _log.info("%s forms a new cluster", self.me)
        self.joined = True
        self.update(join(Gossip(), self.member, by=self.me))

    def heartbeat_round(self) -> None:
        if not self.joined:
            return
        now = trio.current_time()
        self.heartbeat_seq += 1
        beat = Heartbeat(unique_address_to_wire(self.me), self.heartbeat_seq)
        gossip = self.gossip
        for member in self.others():
            self.daemon_at(member.node).tell(beat)
            subject = member.unique
            if subject not in self.detectors:
                self.detectors.heartbeat(subject, now)  # start monitoring from now
            available = self.detectors.is_available(subject, now)
            record = gossip.reachability.get(self.me)
            marked = record is not None and subject in record.unreachable
            if not available and not marked:
                _log.warning("%s: %s is unreachable", self.me, subject)
                gossip = mark_unreachable(gossip, self.me, subject)
            elif available and marked:
                gossip = mark_reachable(gossip, self.me, subject)
        self.update(gossip)
        self.downing(now)

    def downing(self, now: float) -> None:
        gossip = self.gossip
        unreachable = frozenset(m.unique for m in unreachable_members(gossip))
        self.stable.observe(now, unreachable)
        if not self.stable.should_decide(now) or leader(gossip) != self.me:
            return
        counted = [m for m in gossip.members.values() if is_live(m)]
        members = frozenset(m.unique for m in counted)
        view = DowningInput(
            members=members,
            unreachable=unreachable & members,
            self_member=self.me,
            joining=frozenset(
                m.unique for m in gossip.members.values() if m.status is MemberStatus.joining
            ),
            leaving=frozenset(m.unique for m in counted if m.status is MemberStatus.leaving),
            roles={m.unique: m.roles for m in gossip.members.values()},
        )
        decision = self.strategy.decide(view)
        if not decision.to_down:
            return
        _log.warning(
            "%s: split-brain resolver (%s) downs %s",
            self.me,
            decision.kind.name,
            ", ".join(str(u) for u in sorted(decision.to_down)),
        )
        for unique in sorted(decision.to_down):
            gossip = down(gossip, unique, by=self.me)
        if decision.kind is DecisionKind.DOWN_REACHABLE or decision.downs_self:
            gossip = down(gossip, self.me, by=self.me)
        self.update(gossip, spread=True)

    # ------------------------------------------------------------------ messages

    async def receive(self, ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
        if isinstance(msg, _HeartbeatTick):
            self.heartbeat_round()
        elif isinstance(msg, _GossipTick):
            self.gossip_round()
        elif isinstance(msg, Heartbeat):
            try:
                sender = unique_address_from_wire(msg.sender)
            except ValueError:
                return Behaviors.same()
            self.detectors.heartbeat(sender, trio.current_time())
        elif isinstance(msg, GossipPush):
            self.on_gossip(msg)
        elif isinstance(msg, Join):
            self.on_join(msg)
        elif isinstance(msg, Welcome):
            self.on_welcome(msg)
        elif isinstance(msg, GetGossip):
            msg.reply_to.tell(self.gossip)
        elif isinstance(msg, StatusRequest):
            # From anyone with our system name, member or not (``casty-trio status``).
            status = NodeStatus(unique_address_to_wire(self.me), gossip_to_wire(self.gossip))
            msg.reply_to.tell(status)
        elif isinstance(msg, LeaveCluster) and self.joined:
            self.update(leave(self.gossip, self.me, by=self.me), spread=True)
        return Behaviors.same()

    def decode(self, wire: Any) -> Gossip | None:
        try:
            return gossip_from_wire(wire)
        except ValueError as exc:
            _log.warning("%s: dropped an invalid gossip: %s", self.me, exc)
            return None

    def on_gossip(self, msg: GossipPush) -> None:
        if not self.joined:
            return
        theirs = self.decode(msg.gossip)
        if theirs is None or theirs.member(self.me) is None:
            return
        self.update(seen_by(merge(self.gossip, theirs), self.me))
        if msg.reply and self.gossip != theirs:
            sender = self.reply_target(theirs)
            if sender is not None:
                self.daemon_at(sender).tell(GossipPush(gossip_to_wire(self.gossip), False))

    def reply_target(self, theirs: Gossip) -> NodeAddress | None:
        # The pusher is the only node in ``seen`` of the version it pushed, or one of them.
        seen = [u for u in theirs.seen if u != self.me]
        return seen[0].node if seen else None

    def on_join(self, msg: Join) -> None:
        if not self.joined:
            return
        try:
            joiner = member_from_wire(msg.member)
        except ValueError as exc:
            _log.warning("%s: dropped an invalid join: %s", self.me, exc)
            return
        self.update(join(self.gossip, joiner, by=self.me), spread=True)
        self.daemon_at(joiner.node).tell(Welcome(gossip_to_wire(self.gossip)))

    def on_welcome(self, msg: Welcome) -> None:
        if self.joined:
            return
        theirs = self.decode(msg.gossip)
        if theirs is None or theirs.member(self.me) is None:
            return
        self.joined = True
        _log.info("%s joined the cluster", self.me)
        self.update(seen_by(merge(self.gossip, theirs), self.me))


def _statuses(gossip: Gossip) -> dict[UniqueAddress, MemberStatus]:
    return {unique: member.status for unique, member in gossip.members.items()}


def daemon(
    system: MembershipSystem,
    member: Member,
    seeds: tuple[NodeAddress, ...],
    settings: ClusterSettings,
    strategy: DowningStrategy,
    hooks: DaemonHooks,
) -> Behavior[Any]:
    """The daemon's behavior (spawned once per node at ``/$cluster``)."""

    def with_timers(ctx: ActorContext[Any], timers: TimerScheduler[Any]) -> Behavior[Any]:
        state = _Daemon(system, ctx, timers, member, seeds, settings, strategy, hooks)
        hooks.ready(state)
        timers.start_periodic("gossip", _GossipTick(), settings.gossip_interval)
        timers.start_periodic("heartbeat", _HeartbeatTick(), settings.heartbeat_interval)
        ctx.self.tell(_GossipTick())  # join (or form) right away
        return Behaviors.receive(state.receive)

    return Behaviors.with_timers(with_timers)
