"""The values of cluster membership: :class:`Gossip` and what it is made of.

A :class:`Gossip` holds :class:`Member` values keyed by :class:`UniqueAddress` (one incarnation
of a node), each with its :class:`MemberStatus`, and one :class:`ObserverRecord` of reachability
per observer. They are immutable values with no behavior beyond lookups; the functions that
merge, query and change them, and the rules they follow, are in
:mod:`casty_trio.cluster._membership` (which re-exports these classes).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from types import MappingProxyType

import attrs

from .._core import NodeAddress
from ._vector_clock import VectorClock

__all__ = [
    "Gossip",
    "Member",
    "MemberStatus",
    "ObserverRecord",
    "ReachabilityView",
    "UniqueAddress",
]


class MemberStatus(enum.Enum):
    """Where a member is in its life cycle; merge keeps the one of highest :attr:`precedence`.

    Examples:
        >>> MemberStatus.down.precedence > MemberStatus.exiting.precedence
        True
        >>> max(MemberStatus.up, MemberStatus.joining, key=lambda s: s.precedence)
        <MemberStatus.up: 'up'>
    """

    joining = "joining"
    up = "up"
    leaving = "leaving"
    exiting = "exiting"
    down = "down"
    removed = "removed"

    @property
    def precedence(self) -> int:
        """Rank in ``joining < up < leaving < exiting < down < removed``."""
        return _PRECEDENCE[self]


_PRECEDENCE: dict[MemberStatus, int] = {status: rank for rank, status in enumerate(MemberStatus)}


@attrs.frozen(order=True, cache_hash=True)
class UniqueAddress:
    """One incarnation of a node: its address plus a ``uid`` drawn when the node started.

    Ordered by address (host, then port), then uid: "lowest address" in this module means the
    smallest value in this order.

    Args:
        node: Where the node listens.
        uid: Distinguishes incarnations of the same address; a restarted node draws a new one.

    Examples:
        >>> u = UniqueAddress(NodeAddress("10.0.0.1", 25520), 42)
        >>> str(u), u.key
        ('10.0.0.1:25520#42', '10.0.0.1:25520#42')
        >>> u < UniqueAddress(NodeAddress("10.0.0.1", 25521), 1)
        True
    """

    node: NodeAddress
    uid: int

    @property
    def key(self) -> str:
        """This incarnation's key in the gossip's :class:`VectorClock`."""
        return str(self)

    def __str__(self) -> str:
        return f"{self.node}#{self.uid}"


def _to_roles(roles: Iterable[str]) -> frozenset[str]:
    if isinstance(roles, str):
        raise TypeError(f"roles must be a collection of strings, not the string {roles!r}")
    return frozenset(roles)


@attrs.frozen
class Member:
    """A member of the cluster as the gossip knows it.

    Args:
        unique: The member's incarnation.
        node_id: The user's name for the node (``ClusteredActorSystem(node_id=...)``).
        status: Life-cycle status.
        roles: Roles the node was started with.
        up_number: Age: assigned by the leader when the member becomes ``up`` (1 for the first
            one, then increasing); lower is older; ``0`` until then.

    Examples:
        >>> m = Member(UniqueAddress(NodeAddress("h", 1), 5), "n1", roles={"web"})
        >>> m.status, m.has_role("web"), m.node
        (<MemberStatus.joining: 'joining'>, True, NodeAddress(host='h', port=1))
    """

    unique: UniqueAddress
    node_id: str
    status: MemberStatus = MemberStatus.joining
    roles: frozenset[str] = attrs.field(default=frozenset(), converter=_to_roles)
    up_number: int = 0

    @property
    def node(self) -> NodeAddress:
        """The member's address."""
        return self.unique.node

    def has_role(self, role: str | None) -> bool:
        """True if ``role`` is ``None`` (no filter) or one of the member's roles."""
        return role is None or role in self.roles


@attrs.frozen
class ObserverRecord:
    """What one observer reports as unreachable, with a version only that observer increments.

    Examples:
        >>> ObserverRecord(3, frozenset()).version
        3
    """

    version: int
    unreachable: frozenset[UniqueAddress] = frozenset()


@attrs.frozen
class ReachabilityView:
    """Which members one node counts as unreachable, and which of them are indirectly connected.

    Computed from a :class:`Gossip` by ``casty_trio.cluster._membership.reachability``.

    Attributes:
        unreachable: Members reported unreachable by an observer whose reports count (never
            ``down`` or ``removed`` members, never the node whose view this is).
        indirectly_connected: The members of ``unreachable`` that are not cleanly cut off:
            reported only by observers that are themselves reported unreachable by someone
            whose reports count (a cut link between members that still reach the others).

    Examples:
        >>> view = ReachabilityView(frozenset({1, 2, 3}), frozenset({2, 3}))
        >>> sorted(view.cleanly_unreachable)
        [1]
    """

    unreachable: frozenset[UniqueAddress] = frozenset()
    indirectly_connected: frozenset[UniqueAddress] = frozenset()

    @property
    def cleanly_unreachable(self) -> frozenset[UniqueAddress]:
        """The unreachable members that are not indirectly connected: the other side(s)."""
        return self.unreachable - self.indirectly_connected


def _to_members(
    members: Mapping[UniqueAddress, Member] | Iterable[Member],
) -> Mapping[UniqueAddress, Member]:
    values = members.values() if isinstance(members, Mapping) else members
    return MappingProxyType({m.unique: m for m in values})


def _to_reachability(
    records: Mapping[UniqueAddress, ObserverRecord],
) -> Mapping[UniqueAddress, ObserverRecord]:
    return MappingProxyType(dict(records))


@attrs.frozen
class Gossip:
    """The cluster state one node holds and gossips: an immutable value.

    Compares by value; not hashable (it holds mappings).

    Args:
        members: Members, keyed by their unique address (an iterable of members works too).
            Removed members stay as tombstones.
        reachability: Per observer, what it reports as unreachable.
        version: Vector clock of this state.
        seen: The nodes known to have seen exactly this ``version``.

    Examples:
        >>> u = UniqueAddress(NodeAddress("h", 1), 1)
        >>> g = Gossip([Member(u, "n1", MemberStatus.up, up_number=1)])
        >>> g.member(u).node_id, len(g.members)
        ('n1', 1)
    """

    members: Mapping[UniqueAddress, Member] = attrs.field(factory=dict, converter=_to_members)
    reachability: Mapping[UniqueAddress, ObserverRecord] = attrs.field(
        factory=dict, converter=_to_reachability
    )
    version: VectorClock = attrs.field(factory=VectorClock)
    seen: frozenset[UniqueAddress] = frozenset()

    def member(self, unique: UniqueAddress) -> Member | None:
        """The member with this unique address, or ``None``."""
        return self.members.get(unique)

    def sorted_members(self, *, include_removed: bool = False) -> list[Member]:
        """Members ordered by unique address; removed tombstones only if asked for."""
        return [
            self.members[u]
            for u in sorted(self.members)
            if include_removed or self.members[u].status is not MemberStatus.removed
        ]
