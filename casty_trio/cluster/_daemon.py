"""The cluster daemon: the actor at ``/$cluster`` of every node that keeps the membership.

It owns this node's :class:`Gossip` and changes it only through the pure functions of
``_membership``. Timers drive it: a gossip round (push the state to one random member, or ask
the seeds to join while not yet a member), and a heartbeat round (heartbeats to every member,
the failure detector's verdicts into reachability, the split-brain resolver once the
unreachable set of this node's view was stable for ``stable_after`` and its side has seen it,
or downing everybody when that set has not settled within the instability bound). After every
change the leader actions run, the events of the change are published, and watchers of actors
on downed or removed nodes learn that those actors are gone.

A downing decision reaches the members it downs: the new gossip is pushed to them as well as
to the live members, and re-sent to them every heartbeat interval until they acknowledge it
(they answer with a gossip they have seen, in which they are down) or
:attr:`ClusterSettings.down_notice_window` has passed. A node that downs itself (the leader of a
losing side) exits only then, so the rest of its side hears the decision from it and exits
within a round trip instead of waiting to decide the same by itself.
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
from ._downing import (
    Decision,
    DecisionKind,
    DowningInput,
    DowningStrategy,
    StableAfter,
    default_down_all_when_unstable,
)
from ._events import MemberDowned, MemberLeft, diff_events
from ._failure_detector import FailureDetectorRegistry, PhiAccrualFailureDetector
from ._membership import (
    _GONE,
    Gossip,
    Member,
    MemberStatus,
    ReachabilityView,
    UniqueAddress,
    down,
    downing_counted,
    join,
    leader,
    leader_actions,
    leave,
    mark_reachable,
    mark_unreachable,
    member_at,
    merge,
    reachability,
    seen_by,
    side_has_seen,
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


DOWN_NOTICE_RESENDS = 2
"""How many times a downing decision is re-sent (one heartbeat interval apart) to a downed
member that has not acknowledged it."""


@attrs.frozen
class ClusterSettings:
    """Timings of membership (seconds), from ``[cluster]`` in the configuration.

    ``down_all_when_unstable`` is the instability bound of the split-brain resolver: when the
    unreachable set has not settled (become empty, or been decided on) within ``stable_after``
    plus this many seconds, every node downs every member. ``None`` means the default
    (3/4 of ``stable_after``, at least 4 s); ``math.inf`` never downs all.

    ``leave_timeout`` is how long a graceful leave waits for this node to be seen ``exiting``
    before the node stops anyway (the others still complete its leave).
    """

    gossip_interval: float = 0.2
    heartbeat_interval: float = 0.5
    threshold: float = 8.0
    max_sample_size: int = 200
    min_std_deviation: float = 0.1
    acceptable_heartbeat_pause: float = 0.0
    first_heartbeat_estimate: float = 1.0
    stable_after: float = 5.0
    join_retry: float = 0.5
    down_all_when_unstable: float | None = None
    leave_timeout: float = 20.0

    @property
    def unstable_bound(self) -> float:
        """``down_all_when_unstable``, its default filled in."""
        if self.down_all_when_unstable is None:
            return default_down_all_when_unstable(self.stable_after)
        return self.down_all_when_unstable

    @property
    def down_notice_window(self) -> float:
        """Seconds a downing decision keeps being re-sent to the members it downs.

        ``DOWN_NOTICE_RESENDS`` heartbeat intervals. A downed member that any of these
        messages reaches exits within one (one-way) latency of receiving it, and a node that
        downed itself exits at the latest this long after its decision: a losing side is gone
        within this window of its leader's decision unless every re-send is lost.

        Examples:
            >>> ClusterSettings().down_notice_window
            1.0
        """
        return DOWN_NOTICE_RESENDS * self.heartbeat_interval


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
        self.stable: StableAfter[UniqueAddress] = StableAfter(
            settings.stable_after, down_all_when_unstable=settings.unstable_bound
        )
        self.heartbeat_seq = 0
        self.seed_index = 0
        # Members this node downed that have not acknowledged it yet: re-sends left for each.
        self.notices: dict[UniqueAddress, int] = {}
        # Set once this node is downed: it exits when no notice is pending any more.
        self.exit_status: MemberStatus | None = None

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
            # The members this change downs hear it too (they are not among the others any
            # more): otherwise each of them would have to reach the same decision by itself.
            for unique in _newly_downed(old, new, self.me):
                self.notices[unique] = DOWN_NOTICE_RESENDS
                self.daemon_at(unique.node).tell(push)
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
            if self.exit_status is not MemberStatus.down:
                # A node downed while it still tells the rest of its side stays downed when it
                # then sees itself removed: it shuts down as downed, not as having left.
                self.exit_status = status
            self.exit_when_notified()

    def exit_when_notified(self) -> None:
        """Report this node's exit, once the members it downed were told (or gave up on)."""
        if self.exit_status is None:
            return
        if self.exit_status is MemberStatus.down and self.notices:
            return  # it still re-sends its decision to the rest of its side
        self.hooks.left(self.exit_status)

    def resend_notices(self) -> None:
        """Re-send the current gossip to the downed members that have not acknowledged it."""
        if not self.notices:
            return
        push = GossipPush(gossip_to_wire(self.gossip), True)
        for unique, left in list(self.notices.items()):
            self.daemon_at(unique.node).tell(push)
            if left > 1:
                self.notices[unique] = left - 1
            else:
                del self.notices[unique]
        self.exit_when_notified()

    def acknowledged(self, theirs: Gossip) -> None:
        """Drop the notices ``theirs`` acknowledges: a downed member that has seen a gossip
        in which it is down knows it."""
        if not self.notices:
            return
        for unique in [u for u in self.notices if u in theirs.seen]:
            member = theirs.member(unique)
            if member is not None and member.status in _GONE:
                del self.notices[unique]
        self.exit_when_notified()

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
        self.resend_notices()
        if self.exit_status is not None:
            return  # downed, only telling the rest of its side before it exits
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
        """Run the split-brain resolver on this node's view (see ``_downing``).

        Every node tracks its own view's unreachable set: when it has kept changing (or stayed
        undecided) past the instability bound, the node downs every member. Otherwise only the
        leader of the view decides, once the set was stable for ``stable_after`` and every
        member of its side has seen the state it decides on.
        """
        gossip = self.gossip
        view = reachability(gossip, self.me)
        self.stable.observe(now, view.unreachable, view.indirectly_connected)
        if self.stable.should_down_all(now):
            unsettled = now - (self.stable.unstable_since or now)
            _log.warning(
                "%s: reachability has not settled for %.1f s; the split-brain resolver downs all",
                self.me,
                unsettled,
            )
            everyone = _downing_input(gossip, self.me, view)
            if everyone is not None:
                self.act(Decision.of(DecisionKind.DOWN_ALL, everyone), everyone, now)
            return
        if (
            not self.stable.should_decide(now)
            or leader(gossip, self_unique=self.me) != self.me
            or not side_has_seen(gossip, self.me)
        ):
            return
        mine = _downing_input(gossip, self.me, view)
        if mine is not None:
            self.act(self.strategy.decide(mine), mine, now)

    def act(
        self, decision: Decision[UniqueAddress], view: DowningInput[UniqueAddress], now: float
    ) -> None:
        """Down the members ``decision`` names (taken on ``view``), and spread it."""
        if not decision.to_down:
            return
        _log.warning(
            "%s: split-brain resolver (%s) downs %s%s",
            self.me,
            decision.kind.name,
            ", ".join(str(u) for u in sorted(decision.to_down)),
            (
                " (indirectly connected: "
                + ", ".join(str(u) for u in sorted(view.indirectly_connected))
                + ")"
                if view.indirectly_connected
                else ""
            ),
        )
        gossip = self.gossip
        for unique in sorted(decision.to_down):
            gossip = down(gossip, unique, by=self.me)
        if decision.kind is DecisionKind.DOWN_REACHABLE or decision.downs_self:
            gossip = down(gossip, self.me, by=self.me)
        self.stable.reset(now)
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
        self.acknowledged(theirs)
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


def _downing_input(
    gossip: Gossip, me: UniqueAddress, view: ReachabilityView
) -> DowningInput[UniqueAddress] | None:
    """This node's view as the resolver needs it; ``None`` if this node does not take part.

    Counted: ``up`` members and reachable ``leaving`` ones (``_membership.downing_counted``: a
    leaver that went silent is on no side). Unreachable: the counted members cleanly cut off in
    this node's view; indirectly connected ones are on this side (see
    ``_membership.reachability``).
    """
    mine = gossip.member(me)
    if mine is None or mine.status not in (
        MemberStatus.joining,
        MemberStatus.up,
        MemberStatus.leaving,
    ):
        return None
    counted = downing_counted(gossip, view.unreachable)
    members = frozenset(m.unique for m in counted)
    return DowningInput(
        members=members,
        unreachable=view.cleanly_unreachable & members,
        self_member=me,
        joining=frozenset(
            m.unique for m in gossip.members.values() if m.status is MemberStatus.joining
        ),
        leaving=frozenset(m.unique for m in counted if m.status is MemberStatus.leaving),
        roles={m.unique: m.roles for m in gossip.members.values()},
        indirectly_connected=view.indirectly_connected & members,
    )


def _statuses(gossip: Gossip) -> dict[UniqueAddress, MemberStatus]:
    return {unique: member.status for unique, member in gossip.members.items()}


def _newly_downed(old: Gossip, new: Gossip, me: UniqueAddress) -> list[UniqueAddress]:
    """The members this change downs: ``down`` in ``new`` (or already ``removed``, when the
    leader removed them in the same change) and neither in ``old``. Not ``me``, and not older
    incarnations whose address a live member holds now (that one is not downed)."""
    found = []
    for unique, member in new.members.items():
        before = None if unique == me else old.members.get(unique)
        if before is None or before.status in _GONE or member_at(new, member.node) is not None:
            continue
        if member.status is MemberStatus.down or (
            member.status is MemberStatus.removed
            and before.status in (MemberStatus.joining, MemberStatus.up)
        ):
            found.append(unique)
    return sorted(found)


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
