"""Cluster sharding: entities spread over the members by id, a coordinator per sharded type,
regions that route, buffer, hand off and passivate, and shard replication
(:mod:`casty_trio.sharding.replication`).

Built on membership (:class:`~casty_trio.cluster.MembershipSystem`: subscribe to membership,
leave hooks, roles) and on the remoting port (:class:`~casty_trio.remote.RemotingPort`).
"""

from ._allocation import LeastShardAllocation, ShardAllocationStrategy
from ._regions import ShardRegions
from ._routing import RegionStatistics
from ._sharded import ShardedBehavior, ShardEnvelope, entity_shard, sharded
from .replication import ReplicateEvents, ReplicateEventsAck, ReplicationConfig

__all__ = [
    "LeastShardAllocation",
    "RegionStatistics",
    "ReplicateEvents",
    "ReplicateEventsAck",
    "ReplicationConfig",
    "ShardAllocationStrategy",
    "ShardEnvelope",
    "ShardRegions",
    "ShardedBehavior",
    "entity_shard",
    "sharded",
]
