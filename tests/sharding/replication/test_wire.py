"""The replication wire: ReplicateEvents and ReplicateEventsAck as they travel, and what a
replica or a replica link does with fields out of range (drops them, logs, counts)."""

from __future__ import annotations

import logging
from typing import Any

import msgspec
import pytest
import trio

from casty_trio import (
    ActorAddress,
    Behaviors,
    InMemoryJournal,
    MsgpackSerializer,
    NodeAddress,
    PersistedEvent,
    ReplicateEvents,
    ReplicateEventsAck,
    ReplicationConfig,
    entity_shard,
)
from casty_trio.serialization import MessageCodec
from casty_trio.serialization._registry import manifest_of
from casty_trio.serialization._wire import envelopes_header
from casty_trio.sharding.replication._replication import link_name
from casty_trio.sharding.replication._wire import (
    ENTITY_ID_LIMIT,
    FramedBatch,
    ReplyRefs,
    batch_payload,
    check_entity_id,
    check_sequence_nr,
    read_batch,
    wire_events,
)
from casty_trio.testing import open_test_cluster
from tests.serialization._messages import FakeRefs, make_ref

from .._sharding_support import Deposited
from .test_replication import Confirmed, _home, _write, ledger

PRIMARY = NodeAddress("primary", 1)
REPLICA = NodeAddress("replica", 2)
encode = msgspec.msgpack.encode


def _codec(node: NodeAddress) -> MessageCodec:
    return MsgpackSerializer().bind(FakeRefs(node))


def _read(codec: MessageCodec, payload: bytes, num_shards: int = 10) -> Any:
    """What a replica whose codec is ``codec`` reads of ``payload`` from PRIMARY."""
    manifest = codec.manifest(ReplicateEvents)
    framed = codec.shaped_decoder(manifest, lambda _cls: FramedBatch).decode(payload)
    return read_batch(framed, PRIMARY, num_shards, codec.decode, ReplyRefs(codec, manifest))


def _payload(
    codec: MessageCodec,
    batch: ReplicateEvents,
    epoch: int = 3,
) -> bytes:
    reply_to = None
    if batch.reply_to is not None:
        reply_to = msgspec.Raw(codec.payload_encoder(batch.reply_to))
    events = wire_events(codec.encode, batch.events)
    return batch_payload(
        codec.payload_encoder, epoch, batch.entity_id, batch.shard_id, events, reply_to
    )


def test_a_batch_travels_as_its_struct_behind_the_epoch_and_reads_back_whole() -> None:
    sender, receiver = _codec(PRIMARY), _codec(REPLICA)
    reply_to = make_ref(f"/ledger/{link_name(REPLICA)}", host=PRIMARY.host, port=PRIMARY.port)
    events = (PersistedEvent(2, Deposited(7), 11.5), PersistedEvent(1, Deposited(5), 10.0))
    sent = ReplicateEvents("acc-1", 7, events, reply_to)
    payload = _payload(sender, sent)

    # On the wire: [epoch, the Struct's array (tag 52, its fields in order)], each event as
    # [sequence_nr, timestamp, manifest, payload].
    epoch, batch = msgspec.msgpack.decode(payload)
    assert epoch == 3
    assert batch[:3] == [52, "acc-1", 7]
    assert msgspec.msgpack.decode(encode(ReplicateEvents("acc-1", 7, ())))[:3] == batch[:3]
    assert [e[:3] for e in batch[3]] == [
        [2, 11.5, manifest_of(Deposited)],
        [1, 10.0, manifest_of(Deposited)],
    ]
    assert isinstance(batch[4], msgspec.msgpack.Ext)

    got_epoch, got = _read(receiver, payload)
    assert got_epoch == 3
    assert type(got) is ReplicateEvents
    assert (got.entity_id, got.shard_id) == ("acc-1", 7)
    assert got.events == (events[1], events[0])  # in sequence-number order
    assert got.reply_to is not None
    assert got.reply_to.address == ActorAddress("sys", reply_to.path, PRIMARY)


def test_a_history_batch_has_no_reply_to() -> None:
    sender, receiver = _codec(PRIMARY), _codec(REPLICA)
    sent = ReplicateEvents("acc-1", 0, (PersistedEvent(1, "opened", 1.0),))
    epoch, got = _read(receiver, _payload(sender, sent, epoch=0), num_shards=1)
    assert (epoch, got) == (0, sent)


def test_an_ack_travels_as_its_struct() -> None:
    replica, primary = _codec(REPLICA), _codec(PRIMARY)
    manifest, payload = replica.encode(ReplicateEventsAck("acc-1", 5))
    assert manifest == manifest_of(ReplicateEventsAck)
    assert msgspec.msgpack.decode(payload) == [53, "acc-1", 5]
    assert primary.decode(manifest, payload) == ReplicateEventsAck("acc-1", 5)


@pytest.mark.parametrize(
    ("epoch", "entity_id", "shard", "seq", "reply_node", "error"),
    [
        (-1, "acc-1", 7, 1, PRIMARY, "allocation epoch -1 below 0"),
        (3, "acc-1", 10, 1, PRIMARY, "shard 10 out of range 0..9"),
        (3, "acc-1", -1, 1, PRIMARY, "shard -1 out of range 0..9"),
        (3, "x" * (ENTITY_ID_LIMIT + 1), 7, 1, PRIMARY, "entity id of 4097 characters"),
        (3, "acc-1", 7, 0, PRIMARY, "sequence number 0 below 1"),
        (3, "acc-1", 7, -4, PRIMARY, "sequence number -4 below 1"),
        (3, "acc-1", 7, 1, NodeAddress("elsewhere", 9), "is not on the sender's node"),
    ],
)
def test_a_batch_field_out_of_range_is_refused_where_it_is_read(
    epoch: int, entity_id: str, shard: int, seq: int, reply_node: NodeAddress, error: str
) -> None:
    sender, receiver = _codec(PRIMARY), _codec(REPLICA)
    reply_to = make_ref("/ledger/link", host=reply_node.host, port=reply_node.port)
    events = [(seq, 0.0, "builtins:str", msgspec.Raw(encode("x")))]
    reply_raw = msgspec.Raw(sender.payload_encoder(reply_to))
    payload = batch_payload(sender.payload_encoder, epoch, entity_id, shard, events, reply_raw)
    with pytest.raises(ValueError, match=error):
        _read(receiver, payload)


def test_a_reply_to_that_is_no_ref_is_refused() -> None:
    sender, receiver = _codec(PRIMARY), _codec(REPLICA)
    events = [(1, 0.0, "builtins:str", msgspec.Raw(encode("x")))]
    for garbage in (5, "link", [1, 2]):
        payload = batch_payload(
            sender.payload_encoder, 3, "acc-1", 7, events, msgspec.Raw(encode(garbage))
        )
        with pytest.raises(ValueError, match="reply_to is not an actor ref"):
            _read(receiver, payload)


def test_an_ack_field_out_of_range_is_refused() -> None:
    assert check_sequence_nr(0) == 0
    with pytest.raises(ValueError, match="sequence number -1 below 0"):
        check_sequence_nr(-1)
    assert check_entity_id("x" * ENTITY_ID_LIMIT) == "x" * ENTITY_ID_LIMIT
    with pytest.raises(ValueError, match="at most 4096"):
        check_entity_id("x" * (ENTITY_ID_LIMIT + 1))


async def test_malformed_batches_and_acks_are_dropped_logged_and_counted(
    autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    config = ReplicationConfig(replicas=1, min_acks=1)
    async with open_test_cluster(2) as cluster:
        journals = [InMemoryJournal(), InMemoryJournal()]
        refs = [
            cluster.node(i).spawn(
                Behaviors.sharded(ledger(journals[i]), num_shards=10, replication=config),
                "ledger",
            )
            for i in range(2)
        ]
        assert await _write(cluster.node(0), refs[0], "acc-1", 5) == Confirmed(5, 1)
        home = _home(cluster, 2, "acc-1")
        other = 1 - home
        primary, replica = cluster.node(home), cluster.node(other)
        shard = entity_shard("acc-1", 10)
        peer = cluster.address(other)
        errors = primary.link_statistics()[peer].decode_errors
        codec = replica.remoting.codec

        # Batches from the replica's node to the primary's replica actor, each with one field
        # out of range, then acks to the primary's link for that node.
        batches = replica.remoting.raw_sender(cluster.address(home), "/ledger/replica")
        header = envelopes_header(batches.path, manifest_of(ReplicateEvents))
        elsewhere = make_ref("/ledger/link", host="elsewhere", port=9)
        good = [(2, 0.0, manifest_of(Deposited), msgspec.Raw(encode(Deposited(1))))]
        bad_seq = [(-1, 0.0, manifest_of(Deposited), msgspec.Raw(encode(Deposited(1))))]
        with caplog.at_level(logging.WARNING, logger="casty_trio.replication"):
            for payload in (
                batch_payload(encode, 0, "acc-1", shard, bad_seq, None),
                batch_payload(encode, 0, "acc-1", 99, good, None),
                batch_payload(encode, -5, "acc-1", shard, good, None),
                batch_payload(
                    encode, 0, "acc-1", shard, good, msgspec.Raw(codec.payload_encoder(elsewhere))
                ),
                encode([0, [52, "acc-1"]]),  # the wrong shape
            ):
                batches.send(header, payload)
            acks = replica.remoting.raw_sender(cluster.address(home), f"/ledger/{link_name(peer)}")
            ack_header = envelopes_header(acks.path, manifest_of(ReplicateEventsAck))
            acks.send(ack_header, encode(ReplicateEventsAck("acc-1", -3)))
            acks.send(ack_header, encode(ReplicateEventsAck("x" * 5000, 9)))
            await trio.sleep(1)
        assert "sequence number -1 below 1" in caplog.text
        assert "shard 99 out of range 0..9" in caplog.text
        assert "allocation epoch -5 below 0" in caplog.text
        assert "is not on the sender's node" in caplog.text
        assert f"dropped a malformed ReplicateEvents from {peer}" in caplog.text
        assert f"dropped an invalid ack from {peer}: sequence number -3 below 0" in caplog.text
        assert "entity id of 5000 characters" in caplog.text
        assert primary.link_statistics()[peer].decode_errors == errors + 7
        assert len(await journals[home].load("acc-1")) == 1  # nothing of those stored
        # Replication goes on.
        assert await _write(cluster.node(0), refs[0], "acc-1", 2) == Confirmed(7, 2)
        assert [e.sequence_nr for e in await journals[other].load("acc-1")] == [1, 2]
