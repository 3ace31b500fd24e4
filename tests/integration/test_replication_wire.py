"""ReplicateEvents and ReplicateEventsAck over real sockets between two cluster nodes.

Two :class:`~casty_trio.ClusteredActorSystem` nodes in this process, on 127.0.0.1 with ports
picked by the OS, linked by the WebSocket transport, host one event-sourced sharded type with
``ReplicationConfig(replicas=1, min_acks=1)``: every shard has its primary on one node and its
replica on the other. A spy on each node's remoting records what the replication's receivers
(the replica actor and the replica links) are handed by the peer link, still encoded. A write
is confirmed; then the test decodes what arrived: a ``ReplicateEvents`` (tag 52) at the
replica, from the primary's node, whose ``reply_to`` is the primary's replica link for that
node, and a ``ReplicateEventsAck`` (tag 53) at that link, from the replica's node.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any

import attrs
import msgspec
import trio

from casty_trio import (
    ActorAddress,
    ActorContext,
    ActorRef,
    Behavior,
    Behaviors,
    ClusteredActorSystem,
    InMemoryJournal,
    NodeAddress,
    PersistedEvent,
    ReplicateEvents,
    ReplicateEventsAck,
    ReplicationConfig,
    ShardEnvelope,
    entity_shard,
)
from casty_trio.cluster import ClusterSettings
from casty_trio.sharding.replication._replication import link_name
from casty_trio.sharding.replication._wire import FramedBatch, ReplyRefs, read_batch

SYSTEM = "replication-wire"
LOCAL = "127.0.0.1"
NUM_SHARDS = 10
BOUND = 30.0  # seconds for the cluster to form and a write to be confirmed
FAST = ClusterSettings(
    heartbeat_interval=0.1,
    threshold=4.0,
    min_std_deviation=0.05,
    first_heartbeat_estimate=0.1,
    stable_after=0.5,
)


@attrs.frozen
class Deposit:
    amount: int
    reply_to: ActorRef[Any]


@attrs.frozen
class Deposited:
    amount: int


@attrs.frozen
class Result:
    confirmed: bool
    detail: str = ""


def _account(journal: InMemoryJournal) -> Any:
    def factory(entity_id: str) -> Behavior[Any]:
        async def on_command(ctx: ActorContext[Any], state: int, msg: Any) -> Any:
            if isinstance(msg, Deposit):
                reply_to = msg.reply_to
                return Behaviors.persisted(
                    [Deposited(msg.amount)],
                    reply=lambda: reply_to.tell(Result(True)),
                    on_failure=lambda exc: reply_to.tell(Result(False, type(exc).__name__)),
                )
            return Behaviors.same()

        return Behaviors.event_sourced(
            entity_id=entity_id,
            journal=journal,
            initial_state=0,
            on_event=lambda state, event: state + event.amount,
            on_command=on_command,
        )

    return factory


@attrs.frozen
class Received:
    """One run a replication receiver was handed by the peer link, still encoded."""

    path: str
    peer: NodeAddress
    manifest: str
    run: bytes


def _spy(system: ClusteredActorSystem, seen: list[Received]) -> None:
    """Record every run handed to the bulk receivers registered from now on, then hand it on."""
    remoting: Any = system.remoting
    register = remoting.set_bulk_receiver

    def set_bulk_receiver(path: str, receiver: Any) -> None:
        if receiver is None:
            register(path, None)
            return

        def spying(peer: NodeAddress, manifest: str, run: msgspec.Raw, count: int) -> int:
            seen.append(Received(path, peer, manifest, bytes(run)))
            result: int = receiver(peer, manifest, run, count)
            return result

        register(path, spying)

    remoting.set_bulk_receiver = set_bulk_receiver


async def test_a_write_crosses_the_wire_as_replicate_events_and_comes_back_acked() -> None:
    seen: dict[int, list[Received]] = {0: [], 1: []}
    journals = [InMemoryJournal(), InMemoryJournal()]
    config = ReplicationConfig(replicas=1, min_acks=1, ack_timeout=2.0)
    with trio.fail_after(BOUND):
        async with AsyncExitStack() as stack:
            nodes: list[ClusteredActorSystem] = []
            for i in range(2):
                seeds = [nodes[0].self_node] if nodes else []
                node = await stack.enter_async_context(
                    ClusteredActorSystem(
                        name=SYSTEM,
                        host=LOCAL,
                        port=0,
                        node_id=f"node-{i}",
                        seed_nodes=seeds,
                        cluster_settings=FAST,
                    )
                )
                _spy(node, seen[i])
                nodes.append(node)
            for node in nodes:
                await node.wait_for(2)
            refs = [
                node.spawn(
                    Behaviors.sharded(
                        _account(journals[i]), num_shards=NUM_SHARDS, replication=config
                    ),
                    "accounts",
                )
                for i, node in enumerate(nodes)
            ]

            # Until both regions are known to the coordinator, a shard may have no replica yet
            # and a write then times out; write until one is confirmed.
            eid = "acc-1"
            while True:
                result: Result = await nodes[0].ask(
                    refs[0], lambda r: ShardEnvelope(eid, Deposit(5, r)), timeout=5
                )
                if result.confirmed:
                    break
            shard = entity_shard(eid, NUM_SHARDS)
            (home,) = [
                i for i in range(2) if shard in nodes[i].region_statistics("accounts").shards
            ]
            other = 1 - home
            primary, replica = nodes[home].self_node, nodes[other].self_node
            codec = nodes[other].remoting.codec

            # At the replica: ReplicateEvents from the primary's node, acked to its link.
            batches = [
                r
                for r in seen[other]
                if r.path == "/accounts/replica" and r.manifest == codec.manifest(ReplicateEvents)
            ]
            assert batches, seen[other]
            assert {r.peer for r in batches} == {primary}
            decode = codec.shaped_decoder(batches[0].manifest, lambda _: list[FramedBatch])
            reply_refs = ReplyRefs(codec, batches[0].manifest)
            read = [
                read_batch(framed, primary, NUM_SHARDS, codec.decode, reply_refs)
                for r in batches
                for framed in decode.decode(r.run)
            ]
            mine = [batch for _epoch, batch in read if batch.entity_id == eid]
            assert mine
            for batch in mine:
                assert type(batch) is ReplicateEvents
                assert batch.shard_id == shard
                assert all(type(e) is PersistedEvent for e in batch.events)
                assert all(e.event == Deposited(5) for e in batch.events)
                assert batch.reply_to is not None
                assert batch.reply_to.address == ActorAddress(
                    SYSTEM, f"/accounts/{link_name(replica)}", primary
                )
            last = max(e.sequence_nr for batch in mine for e in batch.events)
            # the Struct's array on the wire: [epoch, [52, entity_id, shard_id, events, ...]]
            raw = [item for r in batches for item in msgspec.msgpack.decode(r.run)]
            assert [52, eid, shard] in [item[1][:3] for item in raw]

            # At the primary's link for that replica: ReplicateEventsAck from the replica.
            link_path = f"/accounts/{link_name(replica)}"
            acks = [
                r
                for r in seen[home]
                if r.path == link_path and r.manifest == codec.manifest(ReplicateEventsAck)
            ]
            assert acks, seen[home]
            assert {r.peer for r in acks} == {replica}
            decoded = [
                ack
                for r in acks
                for ack in nodes[home].remoting.codec.run_decoder(r.manifest)(r.run)
            ]
            assert ReplicateEventsAck(eid, last) in decoded
            assert [53, eid, last] in [item for r in acks for item in msgspec.msgpack.decode(r.run)]
            # and the replica holds the write
            held = await journals[other].load(eid)
            assert [e.sequence_nr for e in held] == list(range(1, last + 1))
