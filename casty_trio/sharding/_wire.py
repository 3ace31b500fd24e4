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
malformed ones). Tag 40 is reserved: never reuse it.

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

__all__ = [
    "SHARD_MESSAGES",
    "BeginHandOff",
    "DropShard",
    "GetShardHome",
    "HandOff",
    "HandOffMarker",
    "RegionLeaving",
    "RegionLeavingAck",
    "RegionRegistered",
    "RegisterRegion",
    "ShardHome",
    "ShardStopped",
    "deliveries_path",
    "delivery_prefix",
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
)
