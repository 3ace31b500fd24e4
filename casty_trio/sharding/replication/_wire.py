"""The replication protocol: messages between a shard's primary, its replicas and the coordinator.

Every message is a msgspec Struct (``frozen, array_like, gc=False``) with a stable tag; shard
replication owns tags 52-59 of the range sharding owns (40-59): never reuse or renumber one.
Nodes travel as ``host``/``port`` pairs, validated where they are read (:func:`node_of`,
:func:`check_shard`).
"""

from __future__ import annotations

import msgspec

from ..._core import NodeAddress

__all__ = [
    "REPLICATION_MESSAGES",
    "HistoryEnd",
    "HistoryRequest",
    "ReplicaAck",
    "ReplicaEvents",
    "ReplicaHoldings",
    "ReplicaQuery",
    "ReplicaRefused",
    "ShardReplicas",
    "check_shard",
    "node_of",
]

class ReplicaEvents(msgspec.Struct, frozen=True, array_like=True, gc=False, tag=52):
    """Events of ``entity_id`` (``(sequence_nr, timestamp, manifest, payload)`` each, encoded
    by the sender) for a replica. From the primary of ``shard`` (allocation ``epoch``) at
    ``host:port`` unless ``history``: then it answers a :class:`HistoryRequest`."""

    entity_id: str
    shard: int
    epoch: int
    host: str
    port: int
    history: bool
    events: list[tuple[int, float, str, msgspec.Raw]]


class ReplicaAck(msgspec.Struct, frozen=True, array_like=True, gc=False, tag=53):
    """Replica at ``host:port`` to the primary's replica link: it stores every event of
    ``entity_id`` up to ``sequence_nr``."""

    entity_id: str
    shard: int
    sequence_nr: int
    host: str
    port: int


class ReplicaRefused(msgspec.Struct, frozen=True, array_like=True, gc=False, tag=54):
    """Replica at ``host:port`` to a sender of :class:`ReplicaEvents`: ``shard`` has a newer
    allocation, ``epoch``; the sender is no longer its primary."""

    shard: int
    epoch: int
    host: str
    port: int


class ShardReplicas(msgspec.Struct, frozen=True, array_like=True, gc=False, tag=55):
    """Coordinator to a shard's primary (``host:port``) and its replicas: the replica nodes of
    ``shard`` in allocation ``epoch``, and the ``sources`` a new primary copies history from
    before it serves the shard."""

    shard: int
    epoch: int
    host: str
    port: int
    replicas: list[tuple[str, int]]
    sources: list[tuple[str, int]]


class HistoryRequest(msgspec.Struct, frozen=True, array_like=True, gc=False, tag=56):
    """To a node holding ``shard``'s history: send the events the requester at ``host:port``
    lacks, beyond the highest sequence numbers in ``known``; for every entity of the shard when
    ``whole``, else for those in ``known`` only. Answered by history :class:`ReplicaEvents`
    followed by :class:`HistoryEnd`. ``epoch`` is the requester's allocation of the shard: a
    new primary's request fences the old primary at every source before the history leaves
    (0 when the requester is a replica filling a gap)."""

    shard: int
    host: str
    port: int
    known: list[tuple[str, int]]
    whole: bool
    epoch: int = 0


class HistoryEnd(msgspec.Struct, frozen=True, array_like=True, gc=False, tag=57):
    """The node at ``host:port`` sent all the history of ``shard`` it was asked for."""

    shard: int
    host: str
    port: int


class ReplicaQuery(msgspec.Struct, frozen=True, array_like=True, gc=False, tag=58):
    """Coordinator at ``host:port`` to a replica of ``shard`` whose primary is gone: how much of
    the shard do you hold? ``round`` matches the answer to the question."""

    shard: int
    round: int
    host: str
    port: int


class ReplicaHoldings(msgspec.Struct, frozen=True, array_like=True, gc=False, tag=59):
    """Replica at ``host:port`` to the coordinator: for ``shard`` it holds events up to a sum of
    ``total`` sequence numbers over the shard's entities."""

    shard: int
    round: int
    total: int
    host: str
    port: int


REPLICATION_MESSAGES: tuple[type[msgspec.Struct], ...] = (
    ReplicaEvents,
    ReplicaAck,
    ReplicaRefused,
    ShardReplicas,
    HistoryRequest,
    HistoryEnd,
    ReplicaQuery,
    ReplicaHoldings,
)

def node_of(host: str, port: int) -> NodeAddress:
    """The node a message names, validated.

    Raises:
        ValueError: An empty host or a port outside ``1..65535``.

    Examples:
        >>> node_of("h", 0)
        Traceback (most recent call last):
        ...
        ValueError: invalid node address 'h':0 in a sharding message
    """
    if not host or not 0 < port < 65536:
        raise ValueError(f"invalid node address {host!r:.64}:{port} in a sharding message")
    return NodeAddress(host, port)


def check_shard(shard: int, num_shards: int) -> int:
    """``shard`` if it is a shard of a type with ``num_shards`` shards.

    Raises:
        ValueError: It is not.
    """
    if not 0 <= shard < num_shards:
        raise ValueError(f"shard {shard} out of range 0..{num_shards - 1}")
    return shard
