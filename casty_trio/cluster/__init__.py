"""Cluster membership (gossip, failure detection, downing) and sharding. Imports remote,
serialization, persistence and _core."""

from ._allocation import LeastShardAllocation, ShardAllocationStrategy
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
from ._replication import ReplicateEvents, ReplicateEventsAck
from ._sharding import ReplicationConfig, ShardedBehavior, ShardEnvelope, entity_shard, sharded
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
    "LeastShardAllocation",
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
    "ReplicateEvents",
    "ReplicateEventsAck",
    "ReplicationConfig",
    "ShardAllocationStrategy",
    "ShardEnvelope",
    "ShardedBehavior",
    "StableAfter",
    "StaticQuorum",
    "UniqueAddress",
    "UnreachableMember",
    "VectorClock",
    "compute_phi",
    "diff_events",
    "entity_shard",
    "make_strategy",
    "sharded",
]
