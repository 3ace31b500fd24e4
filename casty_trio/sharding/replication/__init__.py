"""Shard replication: a sharded type's events copied to replica nodes, writes confirmed after
``min_acks`` acknowledgements, and a replica promoted when a primary's node goes down.

The primary sends :class:`ReplicateEvents` to each replica and each replica answers
:class:`ReplicateEventsAck` with the highest sequence number it holds.
"""

from ._config import ReplicationConfig
from ._messages import ReplicateEvents, ReplicateEventsAck
from ._wire import REPLICATION_MESSAGES, check_shard, node_of

__all__ = [
    "REPLICATION_MESSAGES",
    "ReplicateEvents",
    "ReplicateEventsAck",
    "ReplicationConfig",
    "check_shard",
    "node_of",
]
