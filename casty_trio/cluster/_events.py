"""Cluster events, and the pure function that derives them from two membership states.

Every node publishes these on its own event stream. They are computed, never gossiped: each
time a node's :class:`~casty_trio.cluster.Gossip` changes it publishes
``diff_events(previous, current)``. Because statuses only move forward (see
:mod:`casty_trio.cluster._membership`), a node that applies a sequence of states publishes
each transition once:

* :class:`MemberUp` when a member becomes ``up`` (from ``joining``, or first seen ``up``);
* :class:`MemberDowned` when a member becomes ``down``;
* :class:`MemberLeft` when a member this node last saw ``leaving`` or ``exiting`` is
  ``removed``: a graceful leave (``leaving → exiting → removed``). A member goes ``removed``
  only through ``exiting`` or ``down``, so one this node last saw ``joining`` or ``up`` and
  now sees ``removed`` was downed meanwhile (this node missed the ``down``, or the downing and
  the removal came in one change): that is a :class:`MemberDowned`. A downed member that is
  later removed gets no ``MemberLeft``: its ``MemberDowned`` said it. A member this node
  never saw gets neither;
* :class:`UnreachableMember` / :class:`ReachableMember` when a live member (not ``down`` nor
  ``removed``) starts / stops being reported unreachable; a member that is downed while
  unreachable gets ``MemberDowned`` and no ``ReachableMember``;
* :class:`LeaderChanged` when the (role-less) :func:`~casty_trio.cluster.leader` changes.

Examples:
    >>> from casty_trio import NodeAddress
    >>> from casty_trio.cluster._membership import (
    ...     Gossip, Member, UniqueAddress, join, leader_actions)
    >>> me = UniqueAddress(NodeAddress("h", 1), 1)
    >>> g1 = join(Gossip(), Member(me, "a"), by=me)
    >>> g2 = leader_actions(g1, me)
    >>> [type(e).__name__ for e in diff_events(g1, g2)]
    ['MemberUp']
    >>> diff_events(Gossip(), g1)
    [LeaderChanged(leader=NodeAddress(host='h', port=1))]
"""

from __future__ import annotations

import attrs

from .._core import NodeAddress
from ._membership import (
    _GONE,
    Gossip,
    Member,
    MemberStatus,
    UniqueAddress,
    leader,
    unreachable_members,
)

__all__ = [
    "ClusterEvent",
    "LeaderChanged",
    "MemberDowned",
    "MemberLeft",
    "MemberUp",
    "ReachableMember",
    "UnreachableMember",
    "diff_events",
]


@attrs.frozen
class MemberUp:
    """``member`` is now ``up``: it counts for sharding, singletons and broadcasts."""

    member: Member


@attrs.frozen
class MemberLeft:
    """``member`` left gracefully and is now ``removed``."""

    member: Member


@attrs.frozen
class MemberDowned:
    """``member`` was marked ``down`` (by the split-brain resolver or by hand); it is gone."""

    member: Member


@attrs.frozen
class UnreachableMember:
    """Some node's failure detector reports ``member`` unreachable."""

    member: Member


@attrs.frozen
class ReachableMember:
    """``member`` is no longer reported unreachable by anyone."""

    member: Member


@attrs.frozen
class LeaderChanged:
    """The cluster leader is now ``leader`` (``None``: there is none)."""

    leader: NodeAddress | None


ClusterEvent = (
    MemberUp | MemberLeft | MemberDowned | UnreachableMember | ReachableMember | LeaderChanged
)


def diff_events(
    old: Gossip, new: Gossip, *, self_unique: UniqueAddress | None = None
) -> list[ClusterEvent]:
    """The cluster events of going from state ``old`` to state ``new`` (on one node).

    Args:
        old: The node's previous state (``Gossip()`` before it joined).
        new: Its current state.
        self_unique: If given, the state is seen from this node (its own reports decide what it
            counts as unreachable and who leads), and it is never reported unreachable or
            reachable to itself.

    Returns:
        Events in a stable order: member events by member address (up, downed, left), then
        unreachable, then reachable, then the leader change.

    Examples:
        >>> from casty_trio import NodeAddress
        >>> from casty_trio.cluster._membership import Gossip, Member, UniqueAddress, down
        >>> a = UniqueAddress(NodeAddress("h", 1), 1)
        >>> b = UniqueAddress(NodeAddress("h", 2), 1)
        >>> g = Gossip([Member(a, "a", MemberStatus.up, up_number=1),
        ...             Member(b, "b", MemberStatus.up, up_number=2)])
        >>> [type(e).__name__ for e in diff_events(g, down(g, b, by=a))]
        ['MemberDowned']
    """
    if old.members == new.members and old.reachability == new.reachability:
        return []  # only the version or the seen set changed: the common gossip round
    events: list[ClusterEvent] = []
    for unique in sorted(new.members):
        member = new.members[unique]
        before = old.members.get(unique)
        if before is not None and before.status.precedence >= member.status.precedence:
            continue
        if member.status is MemberStatus.up:
            events.append(MemberUp(member))
        elif member.status is MemberStatus.down:
            events.append(MemberDowned(member))
        elif member.status is MemberStatus.removed and before is not None:
            if before.status in _LEAVING:
                events.append(MemberLeft(member))
            elif before.status is not MemberStatus.down:
                events.append(MemberDowned(member))  # its down came with, or before, this

    old_unreachable = {m.unique for m in unreachable_members(old, self_unique)}
    new_unreachable = {m.unique for m in unreachable_members(new, self_unique)}
    for unique in sorted(new_unreachable - old_unreachable):
        if unique != self_unique:
            events.append(UnreachableMember(new.members[unique]))
    for unique in sorted(old_unreachable - new_unreachable):
        now = new.members.get(unique)
        if unique != self_unique and now is not None and now.status not in _GONE:
            events.append(ReachableMember(now))

    old_leader = leader(old, self_unique=self_unique)
    new_leader = leader(new, self_unique=self_unique)
    if old_leader != new_leader:
        events.append(LeaderChanged(None if new_leader is None else new_leader.node))
    return events


_LEAVING = frozenset({MemberStatus.leaving, MemberStatus.exiting})
