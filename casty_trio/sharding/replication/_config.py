"""The replication settings of a sharded type."""

from __future__ import annotations

import attrs

__all__ = ["ReplicationConfig"]


@attrs.frozen
class ReplicationConfig:
    """How many replica copies a shard keeps and how many acks confirm a write.

    Args:
        replicas: Replica copies per shard (0 disables replication).
        min_acks: Replica acknowledgements required before a write is confirmed.
        ack_timeout: Seconds to wait for those acknowledgements.

    Examples:
        >>> ReplicationConfig(replicas=2, min_acks=1, ack_timeout=3.0)
        ReplicationConfig(replicas=2, min_acks=1, ack_timeout=3.0)
    """

    replicas: int = 0
    min_acks: int = 0
    ack_timeout: float = 5.0
