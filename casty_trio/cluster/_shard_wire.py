"""The sharding protocol: messages between shard regions and their coordinator.

Every message is a msgspec Struct (``frozen, array_like, gc=False``) with a stable tag; sharding
owns tags 40-59 (the cluster owns 20-39, the remoting core 1-7): never reuse or renumber one.
Nodes are carried as ``host``/``port`` pairs; the regions of a type live at ``/<type name>`` and
its coordinator at ``/<type name>/coordinator`` on every node, so nothing else names them.

User messages for entities do not travel as Structs of this module: a region sends each one as
a delivery, the msgpack array ``[entity_id, shard, message]`` encoded at the tell
(:func:`delivery_prefix` gives its first two elements, cached per id), to the path
``/<type name>/deliveries`` of the shard's home (:func:`deliveries_path`) through the remoting's
raw sender. Consecutive deliveries of one message type travel as one ``Envelopes`` item whose
manifest is the message type's, so the receiving region decodes a whole run in one call (as a
``list[tuple[str, int, type]]``, falling back to one by one if that fails, to drop only the
malformed ones). Tag 40 was ``ShardDeliver``, one delivery per Struct, retired: never reuse it.

Receivers validate what a type cannot express (a shard outside ``0..num_shards-1``, an empty
host, a port outside ``1..65535``) with :func:`node_of` and :func:`check_shard`, and drop and log
a message that fails.

Examples:
    >>> import msgspec
    >>> data = msgspec.msgpack.encode(ShardHome(7, "10.0.0.1", 25520, 3))
    >>> msgspec.msgpack.decode(data, type=ShardHome)
    ShardHome(shard=7, host='10.0.0.1', port=25520, epoch=3)
"""

from __future__ import annotations

import msgspec

from .._core import NodeAddress

__all__ = [
    "SHARD_MESSAGES",
    "BeginHandOff",
    "DropShard",
    "GetShardHome",
    "HandOff",
    "HandOffMarker",
    "HistoryEnd",
    "HistoryRequest",
    "RegionLeaving",
    "RegionLeavingAck",
    "RegionRegistered",
    "RegisterRegion",
    "ReplicaAck",
    "ReplicaEvents",
    "ReplicaHoldings",
    "ReplicaQuery",
    "ReplicaRefused",
    "ShardHome",
    "ShardReplicas",
    "ShardStopped",
    "check_shard",
    "deliveries_path",
    "delivery_prefix",
    "node_of",
]


DELIVERIES = "deliveries"  # the child path of a region that takes its peers' deliveries


def deliveries_path(region_path: str) -> str:
    """Where a region takes its peers' deliveries: ``/<type name>/deliveries`` (no actor
    lives there; the region receives them whole, see the module docstring)."""
    return f"{region_path}/{DELIVERIES}"


def delivery_prefix(entity_id: str, shard: int) -> bytes:
    """The encoded start of a delivery: ``delivery_prefix(e, s) + encode(m)`` is exactly
    ``encode((e, s, m))``.

    Examples:
        >>> delivery_prefix("a", 1)
        b'\\x93\\xa1a\\x01'
    """
    return b"\x93" + msgspec.msgpack.encode((entity_id, shard))[1:]


class RegisterRegion(msgspec.Struct, frozen=True, array_like=True, gc=False, tag=41):
    """Region to coordinator: this node runs the region; the shards it hosts, with epochs.
    ``uid`` is the sending node's incarnation (0: not said): a registration from an
    incarnation that is over (a message in flight from a node that restarted) is ignored."""

    host: str
    port: int
    hosting: bool
    shards: list[tuple[int, int]]
    replicas: list[tuple[int, int]] = []  # (shard, epoch) this node holds replicas of
    uid: int = 0


class RegionRegistered(msgspec.Struct, frozen=True, array_like=True, gc=False, tag=42):
    """Coordinator to region: registration accepted by the coordinator at ``host:port``."""

    host: str
    port: int


class GetShardHome(msgspec.Struct, frozen=True, array_like=True, gc=False, tag=43):
    """Region to coordinator: where does ``shard`` live? (``host:port`` asks.)"""

    shard: int
    host: str
    port: int


class ShardHome(msgspec.Struct, frozen=True, array_like=True, gc=False, tag=44):
    """Coordinator to regions: ``shard`` lives at ``host:port`` since allocation ``epoch``."""

    shard: int
    host: str
    port: int
    epoch: int


class BeginHandOff(msgspec.Struct, frozen=True, array_like=True, gc=False, tag=45):
    """Coordinator to every region: stop routing ``shard`` to ``host:port``; buffer it, and
    send a :class:`HandOffMarker` there behind whatever was already forwarded. ``round``
    numbers the handoff attempt so that markers of an aborted attempt never count."""

    shard: int
    epoch: int
    round: int
    host: str
    port: int


class HandOffMarker(msgspec.Struct, frozen=True, array_like=True, gc=False, tag=46):
    """Region to the shard's current home: nothing more for ``shard`` comes from ``host:port``
    in handoff ``round``."""

    shard: int
    round: int
    host: str
    port: int


class HandOff(msgspec.Struct, frozen=True, array_like=True, gc=False, tag=47):
    """Coordinator to the shard's home: once every region in ``regions`` sent its marker,
    stop the shard's entities (after their queued messages) and report :class:`ShardStopped`."""

    shard: int
    epoch: int
    round: int
    regions: list[tuple[str, int]]


class ShardStopped(msgspec.Struct, frozen=True, array_like=True, gc=False, tag=48):
    """Home to coordinator: ``shard`` (allocation ``epoch``) no longer runs at ``host:port``.
    ``hosted`` is False when it did not run there at all (asked to hand off a shard it does not
    host, e.g. a node restarted at the same address): then it holds none of its history."""

    shard: int
    epoch: int
    host: str
    port: int
    hosted: bool = True


class RegionLeaving(msgspec.Struct, frozen=True, array_like=True, gc=False, tag=49):
    """Region to coordinator: this node leaves; move its shards away, allocate none to it."""

    host: str
    port: int


class RegionLeavingAck(msgspec.Struct, frozen=True, array_like=True, gc=False, tag=50):
    """Coordinator to a leaving region: noted; its shards are being handed off."""

    host: str
    port: int


class DropShard(msgspec.Struct, frozen=True, array_like=True, gc=False, tag=51):
    """Coordinator to a region: you host ``shard`` with a stale ``epoch``; stop it."""

    shard: int
    epoch: int


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


SHARD_MESSAGES: tuple[type[msgspec.Struct], ...] = (
    RegisterRegion,
    RegionRegistered,
    GetShardHome,
    ShardHome,
    BeginHandOff,
    HandOffMarker,
    HandOff,
    ShardStopped,
    RegionLeaving,
    RegionLeavingAck,
    DropShard,
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
