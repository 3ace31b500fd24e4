"""Cluster membership: failure detection, downing, gossip. Imports remote, serialization, _core."""

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
from ._membership import Gossip, Member, MemberStatus, ObserverRecord, UniqueAddress
from ._system import ClusteredActorSystem, ClusterState, NodeDownedError
from ._vector_clock import Ordering, VectorClock

__all__ = [
    "ClusterEvent",
    "ClusterSettings",
    "ClusterState",
    "ClusteredActorSystem",
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
    "make_strategy",
]
