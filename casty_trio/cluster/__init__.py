"""Cluster membership: seed-node join, gossip with vector clocks, phi accrual failure
detection, split-brain downing, membership events and cluster-wide barriers.

:class:`MembershipSystem` is an actor system that is a member of a cluster, and nothing more;
:class:`~casty_trio.ClusteredActorSystem` builds sharding on it. Layers above reach membership
through :meth:`MembershipSystem.subscribe_membership`, :meth:`MembershipSystem.cluster_gossip`,
:attr:`MembershipSystem.roles` and :meth:`MembershipSystem.add_leave_hook`, and use the rules of
this package (:func:`oldest`, :data:`LIVE_STATUSES`, :func:`is_live`) rather than their own.
Imports remote, serialization and _core.
"""


from ._daemon import ClusterSettings
from ._downing import (
    Decision,
    DecisionKind,
    DownAll,
    DowningInput,
    DowningStrategy,
    KeepMajority,
    StableAfter,
    StaticQuorum,
    make_strategy,
)
from ._events import (
    ClusterEvent,
    LeaderChanged,
    MemberDowned,
    MemberLeft,
    MemberUp,
    ReachableMember,
    UnreachableMember,
    diff_events,
)
from ._failure_detector import (
    FailureDetectorRegistry,
    FailureDetectorStatistics,
    PhiAccrualFailureDetector,
    compute_phi,
)
from ._membership import (
    LIVE_STATUSES,
    Gossip,
    Member,
    MemberStatus,
    ObserverRecord,
    UniqueAddress,
    is_live,
    oldest,
)
from ._system import ClusterState, MembershipSystem, NodeDownedError
from ._vector_clock import Ordering, VectorClock

__all__ = [
    "LIVE_STATUSES",
    "ClusterEvent",
    "ClusterSettings",
    "ClusterState",
    "Decision",
    "DecisionKind",
    "DownAll",
    "DowningInput",
    "DowningStrategy",
    "FailureDetectorRegistry",
    "FailureDetectorStatistics",
    "Gossip",
    "KeepMajority",
    "LeaderChanged",
    "Member",
    "MemberDowned",
    "MemberLeft",
    "MemberStatus",
    "MemberUp",
    "MembershipSystem",
    "NodeDownedError",
    "ObserverRecord",
    "Ordering",
    "PhiAccrualFailureDetector",
    "ReachableMember",
    "StableAfter",
    "StaticQuorum",
    "UniqueAddress",
    "UnreachableMember",
    "VectorClock",
    "compute_phi",
    "diff_events",
    "is_live",
    "make_strategy",
    "oldest",
]
