"""The replication protocol: messages between a shard's primary, its replicas and the coordinator.

Every message is a msgspec Struct (``frozen, array_like, gc=False``) with a stable tag; shard
replication owns tags 52-59 of the range sharding owns (40-59): never reuse or renumber one.
The batch and its ack are the public messages :class:`ReplicateEvents` (tag 52) and
:class:`ReplicateEventsAck` (tag 53); the other messages are this module's.

A primary sends each :class:`ReplicateEvents` to the replica actor of each replica node
(``/<type name>/replica``) through the remoting's raw sender, as the msgpack array ``[epoch,
batch]`` (:func:`batch_payload`):

- ``batch`` is the message as its Struct encodes (an array led by its tag), except that each
  event travels as ``[sequence_nr, timestamp, manifest, payload]``: an event may be any
  message type, so the system's codec names its type and encodes it, as it does a user
  message. msgspec would write a :class:`~casty_trio.PersistedEvent` (an attrs class) as a
  map, and read its ``event`` back as builtins. The events of a write are encoded once for all
  its replicas; only ``reply_to`` differs per replica (cached encoded, per node). The replica
  decodes each event once, into the :class:`~casty_trio.PersistedEvent` it stores.
- ``epoch`` is the shard's allocation epoch on the sender, the fencing token: a replica that
  knows a newer one refuses the batch (:class:`ReplicaRefused`). It goes beside the message,
  as a sharding delivery carries its entity id and shard beside the user's message, because
  the public message has no field for it.

Consecutive batches to one node travel as one ``Envelopes`` item under the manifest of
:class:`ReplicateEvents`, and the replica decodes the run in one call (:data:`FramedBatch` is
the shape of one element).

``reply_to`` is the sender's replica link for the receiving node: the replica answers there
with a :class:`ReplicateEventsAck` (an ordinary tell), which that link takes in the peer
link's reader. A primary gives every batch for one node the same ``reply_to``, so the replica
decodes it once (:class:`ReplyRefs`). A batch without ``reply_to`` answers a
:class:`HistoryRequest`: nobody waits for it, so it is not acked, and it is stored only when
it was asked for.

Senders are the peers the messages arrive from: the replica actor and the replica links take
their messages with bulk receivers (``RemotingPort.set_bulk_receiver``), which are told the
node of the peer link. A batch counts as that node's and its ``reply_to`` must be on that node
(an ack never goes to a third node); an ack counts for a link's replica only when it comes
from that replica's node. Other messages name nodes as ``host``/``port`` pairs.

Every field is validated where it is read (a batch by :func:`read_batch`): nodes with
:func:`node_of`, shards with :func:`check_shard`, entity ids with :func:`check_entity_id` (a
string of at most :data:`ENTITY_ID_LIMIT` characters), sequence numbers with
:func:`check_sequence_nr` (an ack's not negative, an event's at least 1), epochs with
:func:`check_epoch`; a message that fails is dropped, logged and counted in its peer link's
``decode_errors``.

Examples:
    >>> encode = msgspec.msgpack.encode
    >>> events = [(1, 0.0, "builtins:str", msgspec.Raw(encode("opened")))]
    >>> msgspec.msgpack.decode(batch_payload(encode, 3, "user-1", 7, events, None))
    [3, [52, 'user-1', 7, [[1, 0.0, 'builtins:str', 'opened']], None]]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Final, Literal

import msgspec

from ..._core import ActorRef, NodeAddress
from ...persistence import PersistedEvent
from ...serialization import MessageCodec
from ._messages import ReplicateEvents, ReplicateEventsAck

__all__ = [
    "BATCH_TAG",
    "ENTITY_ID_LIMIT",
    "REPLICATION_MESSAGES",
    "FramedBatch",
    "HistoryEnd",
    "HistoryRequest",
    "ReplicaHoldings",
    "ReplicaQuery",
    "ReplicaRefused",
    "ReplyRefs",
    "ShardReplicas",
    "WireEvent",
    "batch_payload",
    "check_entity_id",
    "check_epoch",
    "check_sequence_nr",
    "check_shard",
    "node_of",
    "read_batch",
    "wire_events",
]

BATCH_TAG: Final = 52
"""The tag of :class:`ReplicateEvents`, which leads a batch as it travels."""

ENTITY_ID_LIMIT: Final = 4096
"""The longest entity id, in characters, a replica or a replica link accepts from the wire."""

WireEvent = tuple[int, float, str, msgspec.Raw]
"""An event as it travels: ``(sequence_nr, timestamp, manifest, payload)``, the payload being
the codec's encoding of the event, kept undecoded (``msgspec.Raw``) until the replica stores
it."""

FramedBatch = tuple[int, tuple[Literal[52], str, int, list[WireEvent], msgspec.Raw]]
"""What a replica decodes for one batch: ``(epoch, (tag, entity_id, shard_id, events,
reply_to))`` (see the module docstring); msgspec checks the types and the tag. ``reply_to``
stays encoded: :class:`ReplyRefs` reads it."""

_REPLY_REFS_KEPT = 1024  # reply_to refs ReplyRefs keeps (all dropped when full)


def batch_payload(
    encode: Callable[[Any], bytes],
    epoch: int,
    entity_id: str,
    shard: int,
    events: list[WireEvent],
    reply_to: msgspec.Raw | None,
) -> bytes:
    """The bytes of one batch: the :class:`ReplicateEvents` of ``entity_id``'s ``events``
    (already in their wire form, see :data:`WireEvent`), behind the shard's allocation
    ``epoch``. ``reply_to`` is the ref, already encoded by the codec, or None.

    ``encode`` is the codec's payload encoder (it must write ``msgspec.Raw`` as is).
    """
    return encode((epoch, (BATCH_TAG, entity_id, shard, events, reply_to)))


def wire_events(
    encode: Callable[[Any], tuple[str, bytes]], events: Iterable[PersistedEvent]
) -> list[WireEvent]:
    """``events`` as they travel, each user event encoded by ``encode`` (the codec's
    ``encode``: manifest and payload).

    Raises:
        SerializationError: An event's type cannot be encoded.
    """
    out = []
    for persisted in events:
        manifest, payload = encode(persisted.event)
        out.append((persisted.sequence_nr, persisted.timestamp, manifest, msgspec.Raw(payload)))
    return out


def _sequence_nr_of(event: WireEvent) -> int:
    return event[0]


class ReplyRefs:
    """Reads the ``reply_to`` of batches (an encoded ref, or nil) with the codec, keeping the
    refs read lately by their bytes: a primary gives every batch for one node the same
    ``reply_to``, so it is decoded once, not once per batch. Sync.

    Args:
        codec: The receiving system's codec (the ref is bound to that system).
        manifest: The manifest batches arrive under.
    """

    __slots__ = ("_decode", "_refs")

    def __init__(self, codec: MessageCodec, manifest: str) -> None:
        self._decode = codec.shaped_decoder(manifest, lambda _cls: ActorRef[Any] | None).decode
        self._refs: dict[bytes, ActorRef[Any] | None] = {}

    def __call__(self, raw: msgspec.Raw) -> ActorRef[Any] | None:
        """The ref ``raw`` encodes, or None.

        Raises:
            ValueError: ``raw`` is neither.
        """
        key = bytes(raw)
        refs = self._refs
        ref = refs.get(key, _UNREAD)
        if ref is not _UNREAD:
            return ref  # type: ignore[return-value]
        try:
            ref = self._decode(raw)
        except Exception as exc:  # any decoding failure: not a ref
            raise ValueError(f"reply_to is not an actor ref: {exc}") from None
        if len(refs) >= _REPLY_REFS_KEPT:
            refs.clear()
        refs[key] = ref
        return ref  # type: ignore[no-any-return]


_UNREAD: Final = object()


def read_batch(
    framed: FramedBatch,
    peer: NodeAddress,
    num_shards: int,
    decode: Callable[[str, msgspec.Raw], Any],
    reply_refs: ReplyRefs,
) -> tuple[int, ReplicateEvents]:
    """The allocation epoch and the :class:`ReplicateEvents` of one batch received from
    ``peer`` for a type of ``num_shards`` shards, its fields checked (msgspec checked their
    types), its ``reply_to`` read by ``reply_refs`` and its events decoded by ``decode`` (the
    codec's ``decode``), in sequence-number order.

    Raises:
        ValueError: A field is out of range, or ``reply_to`` is not a ref on ``peer``'s node.
        SerializationError: An event cannot be decoded.
    """
    epoch, (_tag, entity_id, shard, items, raw_reply_to) = framed
    check_epoch(epoch)
    check_entity_id(entity_id)
    check_shard(shard, num_shards)
    reply_to = reply_refs(raw_reply_to)
    if reply_to is not None and reply_to.address.node != peer:
        raise ValueError(
            f"reply_to {reply_to} is not on the sender's node {peer}: acks go back to the "
            "sender only"
        )
    if len(items) > 1:
        items.sort(key=_sequence_nr_of)
    events = tuple(
        PersistedEvent(check_sequence_nr(seq, 1), decode(manifest, payload), timestamp)
        for seq, timestamp, manifest, payload in items
    )
    return epoch, ReplicateEvents(entity_id, shard, events, reply_to)


class ReplicaRefused(msgspec.Struct, frozen=True, array_like=True, gc=False, tag=54):
    """Replica at ``host:port`` to the ``reply_to`` of a :class:`ReplicateEvents`: ``shard``
    has a newer allocation, ``epoch``; the sender is no longer its primary."""

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
    ``whole``, else for those in ``known`` only. Answered by :class:`ReplicateEvents` without
    ``reply_to``, followed by :class:`HistoryEnd`. ``epoch`` is the requester's allocation of
    the shard: a new primary's request fences the old primary at every source before the
    history leaves (0 when the requester is a replica filling a gap)."""

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
    ReplicateEvents,
    ReplicateEventsAck,
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


def check_entity_id(entity_id: str) -> str:
    """``entity_id`` if it is at most :data:`ENTITY_ID_LIMIT` characters long.

    Raises:
        ValueError: It is longer.

    Examples:
        >>> check_entity_id("x" * 5000)
        Traceback (most recent call last):
        ...
        ValueError: entity id of 5000 characters (at most 4096) in a replication message
    """
    if len(entity_id) > ENTITY_ID_LIMIT:
        raise ValueError(
            f"entity id of {len(entity_id)} characters (at most {ENTITY_ID_LIMIT}) in a "
            "replication message"
        )
    return entity_id


def check_sequence_nr(sequence_nr: int, least: int = 0) -> int:
    """``sequence_nr`` if it is at least ``least`` (0 for an ack, 1 for an event).

    Raises:
        ValueError: It is lower.

    Examples:
        >>> check_sequence_nr(-1)
        Traceback (most recent call last):
        ...
        ValueError: sequence number -1 below 0 in a replication message
    """
    if sequence_nr < least:
        raise ValueError(f"sequence number {sequence_nr} below {least} in a replication message")
    return sequence_nr


def check_epoch(epoch: int) -> int:
    """``epoch`` if it is an allocation epoch (not negative).

    Raises:
        ValueError: It is negative.
    """
    if epoch < 0:
        raise ValueError(f"allocation epoch {epoch} below 0 in a replication message")
    return epoch
