"""Cluster membership as a pure value: members, reachability, version, and who has seen it.

This module holds no tasks, no I/O and no clock: every function is synchronous, pure and never
a checkpoint, so it is safe anywhere, cancellation included. The gossip actor owns one
:class:`Gossip` per node, changes it only through the functions below and spreads it to random
peers; everything else (leader election, convergence, events) is computed from that value. The
design follows Akka Cluster. This module holds the functions (merge, queries, changes); the
value classes themselves are defined in :mod:`casty_trio.cluster._membership_state` and
re-exported here, so users of membership import values and functions from one module.

Identities
    A :class:`UniqueAddress` is one *incarnation* of a node: its :class:`NodeAddress` plus a
    ``uid`` drawn when the node starts. A node restarted at the same address is a new member
    with a new ``uid``. :class:`Member` adds the user's ``node_id``, the roles, the
    :class:`MemberStatus` and ``up_number`` (the member's age: assigned when the leader moves it
    to ``up``; lower is older; ``0`` means "never up").

Statuses
    ``joining → up → leaving → exiting → removed``, plus ``down`` from any status but
    ``removed``. A status never goes back: merge keeps the one of highest precedence
    ``joining < up < leaving < exiting < down < removed``. Removed members stay in the gossip as
    small tombstones, so a stale gossip can never bring them back; their reachability records
    are dropped.

Versions
    Every change is made *by* a node (``by=``), which increments its own key in the
    :class:`VectorClock` and becomes the only node in ``seen``. A node that receives a gossip
    calls ``seen_by(merge(local, remote), self)``: :func:`merge` is a join semilattice
    (commutative, associative, idempotent) and every change below is monotone in it, so merging
    an older version into a newer one returns the newer one unchanged. ``seen`` after a merge is
    the union of the ``seen`` sets of the inputs whose version equals the merged version: an
    empty set for concurrent versions (as in Akka), the newer one's for ordered versions, the
    union for equal versions.

Reachability
    Each observer owns one :class:`ObserverRecord` (its set of unreachable subjects and a
    version only it increments); merge keeps the record with the higher version per observer,
    so the newest observation wins. Which members count as unreachable is a view
    (:func:`reachability`): the records of ``down`` and ``removed`` observers never count, nor
    those of observers that are cleanly cut off themselves (they can no longer refresh them);
    a node's own records always count in its own view, and it is never unreachable in it.
    Members reported only by observers that are reported themselves are *indirectly
    connected* (a cut link between members that both still reach the others); the split-brain
    resolver handles them. ``down`` and ``removed`` members are never reported as unreachable.

Convergence and the leader
    The gossip is converged (:func:`is_converged`) when no member that is ``joining`` or ``up``
    is unreachable and every reachable ``up``/``leaving``/``exiting`` member has seen this
    version; ``down`` and ``removed`` members never block it, nor do unreachable ``leaving``
    ones (a leaving member that went silent is completing its leave, see
    :func:`downing_counted`). The leader (:func:`leader`)
    is the reachable ``up``/``leaving`` member with the lowest unique address (``joining`` or
    ``exiting`` ones when there are none, indirectly connected ones when every live member is
    unreachable): a function of the gossip's content (and, with ``self_unique``, of whose view
    it is), so every node with the same members and reachability agrees on it whatever its
    ``seen`` set. On convergence the leader runs :func:`leader_actions`: ``joining → up``
    (fresh up numbers), ``leaving → exiting``, ``exiting → removed`` and ``down → removed``.

New incarnations
    :func:`join` of a member whose address is held by another incarnation downs that older
    incarnation in the same change (if it is not down or removed already); the old one is then
    removed by the leader like any downed member, and never blocks the new one.

Examples:
    A one-node cluster forms, then a second node joins through it:

    >>> a = Member(UniqueAddress(NodeAddress("10.0.0.1", 25520), 1), "a")
    >>> b = Member(UniqueAddress(NodeAddress("10.0.0.2", 25520), 7), "b")
    >>> g = join(Gossip(), a, by=a.unique)
    >>> g = leader_actions(g, a.unique)
    >>> g.member(a.unique).status, g.member(a.unique).up_number
    (<MemberStatus.up: 'up'>, 1)
    >>> g = join(g, b, by=a.unique)                  # a handles b's join request
    >>> g_b = seen_by(merge(Gossip(), g), b.unique)  # b receives the welcome
    >>> g = seen_by(merge(g, g_b), a.unique)         # ... and gossips back
    >>> g = leader_actions(g, a.unique)
    >>> [(m.node_id, m.status.value, m.up_number) for m in g.sorted_members()]
    [('a', 'up', 1), ('b', 'up', 2)]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from .._core import NodeAddress
from ._membership_state import (
    Gossip,
    Member,
    MemberStatus,
    ObserverRecord,
    ReachabilityView,
    UniqueAddress,
)

__all__ = [
    "LIVE_STATUSES",
    "Gossip",
    "Member",
    "MemberStatus",
    "ObserverRecord",
    "ReachabilityView",
    "UniqueAddress",
    "down",
    "downing_counted",
    "is_converged",
    "is_live",
    "join",
    "leader",
    "leader_actions",
    "leave",
    "mark_reachable",
    "mark_unreachable",
    "member_at",
    "merge",
    "oldest",
    "reachability",
    "seen_by",
    "side_has_seen",
    "unreachable_members",
]


LIVE_STATUSES: frozenset[MemberStatus] = frozenset({MemberStatus.up, MemberStatus.leaving})
"""The statuses of a *live* member: one that serves the cluster (hosts shards, may lead, may be
the :func:`oldest`). A ``joining`` member does not serve yet; an ``exiting`` one has finished
its graceful leave and is about to shut down; ``down`` and ``removed`` ones are gone. A
``leaving`` member is still live: it keeps serving (and stays the oldest or the leader) until
the leader moves it to ``exiting``."""

_GONE = frozenset({MemberStatus.down, MemberStatus.removed})
_MUST_SEE = frozenset({MemberStatus.up, MemberStatus.leaving, MemberStatus.exiting})
_BLOCKS_WHEN_UNREACHABLE = frozenset({MemberStatus.joining, MemberStatus.up})


# --------------------------------------------------------------------------- merge


def _merge_member(a: Member, b: Member) -> Member:
    if a == b:
        return a
    status = a.status if a.status.precedence >= b.status.precedence else b.status
    assigned = [n for n in (a.up_number, b.up_number) if n > 0]
    # node_id and roles never change for one incarnation; pick deterministically anyway.
    base = max(a, b, key=lambda m: (m.node_id, sorted(m.roles)))
    return Member(a.unique, base.node_id, status, base.roles, min(assigned, default=0))


def _merge_record(a: ObserverRecord, b: ObserverRecord) -> ObserverRecord:
    if a.version != b.version:
        return a if a.version > b.version else b
    if a.unreachable == b.unreachable:
        return a
    return ObserverRecord(a.version, a.unreachable | b.unreachable)


def _normalized(gossip: Gossip) -> Gossip:
    """Drop reachability records by and about removed members."""
    removed = {u for u, m in gossip.members.items() if m.status is MemberStatus.removed}
    if not removed:
        return gossip
    records = {}
    changed = False
    for observer, record in gossip.reachability.items():
        if observer in removed:
            changed = True
            continue
        if record.unreachable & removed:
            changed = True
            record = ObserverRecord(record.version, record.unreachable - removed)
        records[observer] = record
    return attrs.evolve(gossip, reachability=records) if changed else gossip


def merge(a: Gossip, b: Gossip) -> Gossip:
    """Combine two gossip states: the least state that contains both.

    Members are united, each member keeping its status of highest precedence and its lowest
    assigned up number; per observer the reachability record with the higher version wins; the
    clocks are merged. ``seen`` is kept from the inputs whose version equals the merged version
    (so it is empty for concurrent versions). Commutative, associative and idempotent; merging
    an older version into a newer one returns the newer one.

    Examples:
        >>> from casty_trio.cluster._vector_clock import VectorClock
        >>> u1 = UniqueAddress(NodeAddress("h", 1), 1)
        >>> up, leaving = MemberStatus.up, MemberStatus.leaving
        >>> a = Gossip([Member(u1, "n1", up, up_number=1)], version=VectorClock({"x": 1}))
        >>> b = Gossip([Member(u1, "n1", leaving, up_number=1)], version=VectorClock({"y": 1}))
        >>> m = merge(a, b)
        >>> m.member(u1).status, m.version, m.seen
        (<MemberStatus.leaving: 'leaving'>, VectorClock({'x': 1, 'y': 1}), frozenset())
    """
    members = dict(a.members)
    for unique, theirs in b.members.items():
        mine = members.get(unique)
        members[unique] = theirs if mine is None else _merge_member(mine, theirs)
    records = dict(a.reachability)
    for observer, theirs_record in b.reachability.items():
        mine_record = records.get(observer)
        records[observer] = (
            theirs_record if mine_record is None else _merge_record(mine_record, theirs_record)
        )
    version = a.version.merge(b.version)
    seen: frozenset[UniqueAddress] = frozenset()
    if a.version == version:
        seen |= a.seen
    if b.version == version:
        seen |= b.seen
    return _normalized(Gossip(members, records, version, seen))


def seen_by(gossip: Gossip, unique: UniqueAddress) -> Gossip:
    """Record that ``unique`` has seen this version (call it after every merge, for self).

    Examples:
        >>> u = UniqueAddress(NodeAddress("h", 1), 1)
        >>> seen_by(Gossip(), u).seen == {u}
        True
    """
    if unique in gossip.seen:
        return gossip
    return attrs.evolve(gossip, seen=gossip.seen | {unique})


# --------------------------------------------------------------------------- queries


def reachability(gossip: Gossip, self_unique: UniqueAddress | None = None) -> ReachabilityView:
    """Which members count as unreachable, in the view of ``self_unique`` (or of no node).

    Only the reports of some observers count: never those of ``down`` or ``removed`` members,
    nor those of observers that are *cleanly* unreachable themselves (they cannot refresh their
    reports, so what they said before they were cut off is stale). An observer is cleanly
    unreachable when an observer whose reports count, and which nobody whose reports count
    reports, reports it; that is a least fixpoint, computed by rounds. Every report of
    ``self_unique`` counts whoever reports it (a node's own observations decide its side), and
    ``self_unique`` is never unreachable in its own view.

    A member reported only by observers that are reported themselves (a cut link between two
    members that both still reach the others, or a chain of such links) is *indirectly
    connected*: unreachable, but not on the other side of a clean partition. Those are resolved
    by the split-brain resolver on purpose (see :mod:`casty_trio.cluster._downing`).

    Pure, never a checkpoint. Depends on members and reachability records only, not on ``seen``.

    Args:
        gossip: The state.
        self_unique: The node whose view this is, or ``None`` for the view of no member.

    Returns:
        The unreachable members and which of them are indirectly connected.

    Examples:
        Link 0-1 is cut; both still reach 2. Seen from 2 both are indirectly connected; seen
        from 0, 1 is on the other side of the cut:

        >>> u = [UniqueAddress(NodeAddress("h", i), 1) for i in range(3)]
        >>> g = Gossip([Member(x, str(i), MemberStatus.up) for i, x in enumerate(u)])
        >>> g = mark_unreachable(mark_unreachable(g, u[0], u[1]), u[1], u[0])
        >>> view = reachability(g, u[2])
        >>> sorted(view.unreachable) == sorted(view.indirectly_connected) == [u[0], u[1]]
        True
        >>> reachability(g, u[0]) == ReachabilityView(frozenset({u[1]}), frozenset())
        True
    """
    members = gossip.members
    reports: dict[UniqueAddress, frozenset[UniqueAddress]] = {}
    for observer, record in gossip.reachability.items():
        by = members.get(observer)
        if by is None or by.status in _GONE:
            continue
        subjects = frozenset(
            subject
            for subject in record.unreachable
            if subject != observer
            and (member := members.get(subject)) is not None
            and member.status not in _GONE
        )
        if subjects:
            reports[observer] = subjects
    if not reports:
        return _ALL_REACHABLE
    mine = reports.get(self_unique, frozenset()) if self_unique is not None else frozenset()
    # Rounds of: drop the reports of the cleanly unreachable observers; whatever an observer
    # nobody (still counted) reports says is cleanly unreachable. Monotone: a round only adds.
    cleanly: frozenset[UniqueAddress] = mine
    while True:
        counted = [(o, subjects) for o, subjects in reports.items() if o not in cleanly]
        suspected = frozenset().union(*(subjects for _, subjects in counted))
        found = set(mine)
        for observer, subjects in counted:
            if observer not in suspected:
                found |= subjects
        if self_unique is not None:
            found.discard(self_unique)
        if found == cleanly:
            break
        cleanly = frozenset(found)
    unreachable = suspected - {self_unique} if self_unique is not None else suspected
    return ReachabilityView(unreachable, unreachable - cleanly)


_ALL_REACHABLE = ReachabilityView()


def _unreachable(gossip: Gossip, self_unique: UniqueAddress | None) -> frozenset[UniqueAddress]:
    return reachability(gossip, self_unique).unreachable


def unreachable_members(
    gossip: Gossip, self_unique: UniqueAddress | None = None
) -> frozenset[Member]:
    """Members counted as unreachable in the view of ``self_unique`` (see :func:`reachability`).

    Examples:
        >>> a = UniqueAddress(NodeAddress("h", 1), 1)
        >>> b = UniqueAddress(NodeAddress("h", 2), 1)
        >>> g = Gossip([Member(a, "a", MemberStatus.up), Member(b, "b", MemberStatus.up)])
        >>> [m.node_id for m in unreachable_members(mark_unreachable(g, a, b))]
        ['b']
    """
    return frozenset(gossip.members[u] for u in _unreachable(gossip, self_unique))


def side_has_seen(gossip: Gossip, self_unique: UniqueAddress) -> bool:
    """Whether every ``up``/``leaving``/``exiting`` member on this node's side has seen this state.

    This node's side: the members not cleanly unreachable in its view (indirectly connected
    ones included). The split-brain resolver decides only on a state its whole side has seen:
    a member that cannot see it is not on this side, whatever the failure detectors have said
    so far (one slow to be noticed across a partition would otherwise be counted here).

    Examples:
        >>> a = UniqueAddress(NodeAddress("h", 1), 1)
        >>> b = UniqueAddress(NodeAddress("h", 2), 1)
        >>> c = UniqueAddress(NodeAddress("h", 3), 1)
        >>> g = Gossip([Member(x, "n", MemberStatus.up) for x in (a, b, c)])
        >>> g = seen_by(mark_unreachable(g, a, c), a)
        >>> side_has_seen(g, a), side_has_seen(seen_by(g, b), a)
        (False, True)
    """
    if self_unique not in gossip.seen:
        return False
    away = reachability(gossip, self_unique).cleanly_unreachable
    return all(
        unique in gossip.seen
        for unique, member in gossip.members.items()
        if member.status in _MUST_SEE and unique not in away
    )


def is_converged(gossip: Gossip, self_unique: UniqueAddress) -> bool:
    """Whether the state is converged, so the leader may move members on.

    Converged means: ``self_unique`` has seen this version; no ``joining`` or ``up`` member is
    unreachable (unreachable ``leaving`` and ``exiting`` members are tolerated: they are on
    their way out, and the leader completes their leave without them); every reachable
    ``up``, ``leaving`` or ``exiting`` member has seen this version. ``down`` and ``removed``
    members never block convergence, nor do ``joining`` ones that have not seen it yet.

    Examples:
        >>> a = UniqueAddress(NodeAddress("h", 1), 1)
        >>> b = UniqueAddress(NodeAddress("h", 2), 1)
        >>> g = Gossip([Member(a, "a", MemberStatus.up), Member(b, "b", MemberStatus.up)], seen={a})
        >>> is_converged(g, a), is_converged(seen_by(g, b), a)
        (False, True)
    """
    if self_unique not in gossip.seen:
        return False
    unreachable = _unreachable(gossip, self_unique)
    for unique, member in gossip.members.items():
        if unique in unreachable:
            if member.status in _BLOCKS_WHEN_UNREACHABLE:
                return False
        elif member.status in _MUST_SEE and unique not in gossip.seen:
            return False
    return True


def downing_counted(gossip: Gossip, unreachable: frozenset[UniqueAddress]) -> list[Member]:
    """The members a downing decision counts, on either side: ``up`` and reachable ``leaving``.

    A ``leaving`` member in ``unreachable`` went silent while leaving (it stopped waiting after
    its leave timeout, or it is cut off after handing everything off): it is completing its
    leave, on no side of a partition, and is neither counted nor downed; the leader removes it
    as a leave (:func:`is_converged` tolerates it). ``joining``, ``exiting``, ``down`` and
    ``removed`` members are never counted.

    Args:
        gossip: The membership.
        unreachable: The members the decision treats as unreachable.

    Returns:
        The counted members, in no particular order.

    Examples:
        >>> a = UniqueAddress(NodeAddress("h", 1), 1)
        >>> b = UniqueAddress(NodeAddress("h", 2), 1)
        >>> c = UniqueAddress(NodeAddress("h", 3), 1)
        >>> g = Gossip([Member(a, "a", MemberStatus.up), Member(b, "b", MemberStatus.leaving),
        ...             Member(c, "c", MemberStatus.up)])
        >>> sorted(m.node_id for m in downing_counted(g, frozenset({c})))
        ['a', 'b', 'c']
        >>> sorted(m.node_id for m in downing_counted(g, frozenset({b, c})))
        ['a', 'c']
    """
    return [
        m
        for m in gossip.members.values()
        if m.status is MemberStatus.up
        or (m.status is MemberStatus.leaving and m.unique not in unreachable)
    ]


def leader(
    gossip: Gossip, *, role: str | None = None, self_unique: UniqueAddress | None = None
) -> UniqueAddress | None:
    """The leader in the view of ``self_unique``: the lowest reachable ``up``/``leaving`` member.

    When there is none, the lowest reachable ``joining`` or ``exiting`` member (so a cluster
    that is only forming gets its first member up, and the last members leaving still get
    removed). When every live member is unreachable, the lowest indirectly connected one
    (``up``/``leaving`` first), so that a leader exists as long as a live member is not
    cleanly cut off (see :func:`reachability`). ``down`` and ``removed`` members are never
    leader. Depends only on members and reachability (not on ``seen``), so every node holding
    the same state agrees; with ``self_unique`` the node's own reports decide what it counts
    as unreachable, and it is reachable itself, so nodes agree once no reports are pending
    (the converged case). With ``role``, only members with that role count (a role leader).

    Examples:
        >>> a = UniqueAddress(NodeAddress("h", 1), 1)
        >>> b = UniqueAddress(NodeAddress("h", 2), 1)
        >>> g = Gossip([Member(a, "a", MemberStatus.joining), Member(b, "b", MemberStatus.up)])
        >>> leader(g) == b
        True
        >>> leader(mark_unreachable(g, a, b)) == a
        True
        >>> leader(mark_unreachable(g, a, b), self_unique=b) == b
        True
    """
    view = reachability(gossip, self_unique)
    found = _lowest(gossip, role, lambda u: u not in view.unreachable)
    if found is None and view.indirectly_connected:
        found = _lowest(gossip, role, view.indirectly_connected.__contains__)
    return found


def _lowest(
    gossip: Gossip, role: str | None, eligible: Callable[[UniqueAddress], bool]
) -> UniqueAddress | None:
    best: UniqueAddress | None = None
    fallback: UniqueAddress | None = None
    for unique, member in gossip.members.items():
        if member.status in _GONE or not member.has_role(role) or not eligible(unique):
            continue
        if member.status in LIVE_STATUSES:
            if best is None or unique < best:
                best = unique
        elif fallback is None or unique < fallback:
            fallback = unique
    return best if best is not None else fallback


def is_live(member: Member) -> bool:
    """Whether ``member`` is live: ``up`` or ``leaving`` (see :data:`LIVE_STATUSES`).

    Reachability does not count: an unreachable member stays live until it is downed.

    Examples:
        >>> u = UniqueAddress(NodeAddress("h", 1), 1)
        >>> is_live(Member(u, "a", MemberStatus.leaving, up_number=1))
        True
        >>> is_live(Member(u, "a", MemberStatus.exiting, up_number=1))
        False
    """
    return member.status in LIVE_STATUSES


def oldest(gossip: Gossip, *, role: str | None = None) -> Member | None:
    """The oldest live member: the lowest up number among ``up`` and ``leaving`` members
    (ties: the lowest unique address), reachable or not; with ``role``, among those having it.

    The one rule for what runs on a single member: shard coordinators and the barrier host
    live on it (and singletons will). It depends only on members, statuses and up numbers, so
    every node holding the same membership agrees on it, whatever it knows of reachability.

    A member that started leaving stays the oldest until the leader moves it to ``exiting``
    (as in Akka's singleton manager): what runs there keeps working through its graceful
    leave, finishing the hand-offs under way instead of being restarted in the middle of
    them, and moves once, to the next oldest, when the member exits and shuts down. An
    unreachable member stays the oldest until it is downed: the failure detector and the
    downing strategy decide that, not this rule. A member that left before it was ever ``up``
    has no up number and is never the oldest.

    Examples:
        >>> a = UniqueAddress(NodeAddress("h", 1), 1)
        >>> b = UniqueAddress(NodeAddress("h", 2), 1)
        >>> g = Gossip([Member(a, "a", MemberStatus.up, up_number=2),
        ...             Member(b, "b", MemberStatus.leaving, up_number=1)])
        >>> oldest(g).node_id  # b is leaving, not exiting yet
        'b'
        >>> g = Gossip([Member(a, "a", MemberStatus.up, up_number=2),
        ...             Member(b, "b", MemberStatus.exiting, up_number=1)])
        >>> oldest(g).node_id
        'a'
    """
    best: Member | None = None
    for member in gossip.members.values():
        if member.status not in LIVE_STATUSES or not member.up_number or not member.has_role(role):
            continue
        if best is None or (member.up_number, member.unique) < (best.up_number, best.unique):
            best = member
    return best


def member_at(gossip: Gossip, node: NodeAddress) -> Member | None:
    """The incarnation at ``node`` that is neither ``down`` nor ``removed``, if any.

    Maps a transport peer (an address) to the member behind it.

    Examples:
        >>> old = UniqueAddress(NodeAddress("h", 1), 1)
        >>> new = UniqueAddress(NodeAddress("h", 1), 2)
        >>> g = Gossip([Member(old, "a", MemberStatus.down), Member(new, "a")])
        >>> member_at(g, NodeAddress("h", 1)).unique == new
        True
    """
    found = [m for m in gossip.members.values() if m.node == node and m.status not in _GONE]
    return min(found, key=lambda m: m.unique) if found else None


# --------------------------------------------------------------------------- changes


def _changed(gossip: Gossip, by: UniqueAddress, **changes: Any) -> Gossip:
    """Apply a change made by ``by``: bump its clock entry, only it has seen the result."""
    updated = attrs.evolve(
        gossip, version=gossip.version.increment(by.key), seen=frozenset({by}), **changes
    )
    return _normalized(updated)


def join(gossip: Gossip, member: Member, *, by: UniqueAddress) -> Gossip:
    """Add ``member`` as ``joining`` (a change made by ``by``, the node handling the join).

    Older incarnations at the same address that are not ``down`` or ``removed`` yet are downed
    in the same change. A member already known (under this unique address) is left as is and
    the gossip returned unchanged, so a repeated join request is harmless. To form a new
    cluster a node joins itself: ``join(Gossip(), me, by=me.unique)``.

    Examples:
        >>> old = Member(UniqueAddress(NodeAddress("h", 1), 1), "a", MemberStatus.up, up_number=1)
        >>> new = Member(UniqueAddress(NodeAddress("h", 1), 2), "a")
        >>> g = join(Gossip([old]), new, by=old.unique)
        >>> g.member(old.unique).status, g.member(new.unique).status
        (<MemberStatus.down: 'down'>, <MemberStatus.joining: 'joining'>)
    """
    if member.unique in gossip.members:
        return gossip
    members = dict(gossip.members)
    members[member.unique] = attrs.evolve(member, status=MemberStatus.joining, up_number=0)
    for unique, other in gossip.members.items():
        if other.node == member.node and other.status not in _GONE:
            members[unique] = attrs.evolve(other, status=MemberStatus.down)
    return _changed(gossip, by, members=members)


def _set_status(
    gossip: Gossip,
    unique: UniqueAddress,
    status: MemberStatus,
    allowed: frozenset[MemberStatus],
    by: UniqueAddress,
) -> Gossip:
    member = gossip.members.get(unique)
    if member is None or member.status not in allowed:
        return gossip
    members = dict(gossip.members)
    members[unique] = attrs.evolve(member, status=status)
    return _changed(gossip, by, members=members)


_LEAVABLE = frozenset({MemberStatus.joining, MemberStatus.up})
_DOWNABLE = frozenset(
    {MemberStatus.joining, MemberStatus.up, MemberStatus.leaving, MemberStatus.exiting}
)


def leave(gossip: Gossip, unique: UniqueAddress, *, by: UniqueAddress) -> Gossip:
    """Move a ``joining`` or ``up`` member to ``leaving`` (graceful leave); otherwise no change.

    Examples:
        >>> u = UniqueAddress(NodeAddress("h", 1), 1)
        >>> g = leave(Gossip([Member(u, "a", MemberStatus.up, up_number=1)]), u, by=u)
        >>> g.member(u).status
        <MemberStatus.leaving: 'leaving'>
    """
    return _set_status(gossip, unique, MemberStatus.leaving, _LEAVABLE, by)


def down(gossip: Gossip, unique: UniqueAddress, *, by: UniqueAddress) -> Gossip:
    """Mark a member ``down`` (it is removed at the next convergence); no change if gone already.

    Examples:
        >>> u = UniqueAddress(NodeAddress("h", 1), 1)
        >>> v = UniqueAddress(NodeAddress("h", 2), 1)
        >>> g = Gossip([Member(u, "a", MemberStatus.up), Member(v, "b", MemberStatus.up)])
        >>> down(g, v, by=u).member(v).status
        <MemberStatus.down: 'down'>
    """
    return _set_status(gossip, unique, MemberStatus.down, _DOWNABLE, by)


def _set_observation(
    gossip: Gossip, observer: UniqueAddress, subject: UniqueAddress, unreachable: bool
) -> Gossip:
    if observer == subject or subject not in gossip.members:
        return gossip
    record = gossip.reachability.get(observer, ObserverRecord(0))
    if (subject in record.unreachable) == unreachable:
        return gossip
    subjects = record.unreachable | {subject} if unreachable else record.unreachable - {subject}
    records = dict(gossip.reachability)
    records[observer] = ObserverRecord(record.version + 1, subjects)
    return _changed(gossip, observer, reachability=records)


def mark_unreachable(gossip: Gossip, observer: UniqueAddress, subject: UniqueAddress) -> Gossip:
    """``observer`` (this node) reports ``subject`` unreachable; a change made by ``observer``.

    No change if it already did, if ``subject`` is unknown, or if both are the same node.

    Examples:
        >>> a = UniqueAddress(NodeAddress("h", 1), 1)
        >>> b = UniqueAddress(NodeAddress("h", 2), 1)
        >>> g = Gossip([Member(a, "a", MemberStatus.up), Member(b, "b", MemberStatus.up)])
        >>> g = mark_unreachable(g, a, b)
        >>> g.reachability[a].version, g.reachability[a].unreachable == {b}
        (1, True)
    """
    return _set_observation(gossip, observer, subject, True)


def mark_reachable(gossip: Gossip, observer: UniqueAddress, subject: UniqueAddress) -> Gossip:
    """``observer`` (this node) reports ``subject`` reachable again; no change if it did not
    report it unreachable.

    Examples:
        >>> a = UniqueAddress(NodeAddress("h", 1), 1)
        >>> b = UniqueAddress(NodeAddress("h", 2), 1)
        >>> g = Gossip([Member(a, "a", MemberStatus.up), Member(b, "b", MemberStatus.up)])
        >>> g = mark_reachable(mark_unreachable(g, a, b), a, b)
        >>> unreachable_members(g), g.reachability[a].version
        (frozenset(), 2)
    """
    return _set_observation(gossip, observer, subject, False)


def leader_actions(gossip: Gossip, self_unique: UniqueAddress) -> Gossip:
    """What the leader does on convergence; the gossip unchanged on any other node or state.

    Acts only if ``self_unique`` is the :func:`leader` and the state :func:`is_converged` for
    it. Then, in one change made by the leader: ``joining → up`` with up numbers above every up
    number ever given (in address order), ``leaving → exiting``, and ``exiting`` and ``down`` →
    ``removed``. Each step needs a converged state, so a leaving member goes
    ``leaving → exiting → removed`` over two rounds, and every member has seen it ``exiting``
    (or it is unreachable) before it is removed.

    Examples:
        >>> u = UniqueAddress(NodeAddress("h", 1), 1)
        >>> g = join(Gossip(), Member(u, "a"), by=u)
        >>> leader_actions(g, u).member(u).status
        <MemberStatus.up: 'up'>
    """
    if leader(gossip, self_unique=self_unique) != self_unique or not is_converged(
        gossip, self_unique
    ):
        return gossip
    next_up = max((m.up_number for m in gossip.members.values()), default=0) + 1
    members = dict(gossip.members)
    changed = False
    for unique in sorted(gossip.members):
        member = gossip.members[unique]
        if member.status is MemberStatus.joining:
            members[unique] = attrs.evolve(member, status=MemberStatus.up, up_number=next_up)
            next_up += 1
        elif member.status is MemberStatus.leaving:
            members[unique] = attrs.evolve(member, status=MemberStatus.exiting)
        elif member.status in (MemberStatus.exiting, MemberStatus.down):
            members[unique] = attrs.evolve(member, status=MemberStatus.removed)
        else:
            continue
        changed = True
    if not changed:
        return gossip
    return _changed(gossip, self_unique, members=members)
