"""Streams of tells to many entities on other nodes: runs of deliveries, held wake-ups."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
import trio

from casty_trio import Behaviors, DeadLetter, ShardEnvelope
from casty_trio.sharding._routing import RegionRouting
from casty_trio.testing import open_test_cluster

from ._sharding_support import Append, GetLog, Log, appender

IDS = [f"e{k}" for k in range(300)]


@pytest.fixture
def hand_overs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many entities each wake-up round of held deliveries woke, on every node."""
    sizes: list[int] = []
    flush = RegionRouting.flush_inbound

    def recording(self: RegionRouting) -> None:
        if self.owed:
            sizes.append(len(self.owed))
        flush(self)

    monkeypatch.setattr(RegionRouting, "flush_inbound", recording)
    return sizes


async def _stream(ref: Any, sender: str, rounds: int, pause: float = 0.0) -> None:
    """``rounds`` times one Append per id, a checkpoint every 100 tells (a paced producer)."""
    for seq in range(rounds):
        for k, eid in enumerate(IDS):
            ref.tell(ShardEnvelope(eid, Append(sender, seq)))
            if k % 100 == 99:
                await trio.lowlevel.checkpoint()
        if pause:
            await trio.sleep(pause)


async def _check(node: Any, ref: Any, senders: dict[str, int]) -> None:
    for eid in IDS:
        log: Log = await node.ask(ref, lambda r, eid=eid: ShardEnvelope(eid, GetLog(r)), timeout=10)
        for sender, rounds in senders.items():
            seqs = [seq for s, seq in log.entries if s == sender]
            assert seqs == list(range(rounds)), (eid, sender, seqs[:5])


async def test_a_stream_to_remote_entities_arrives_complete_and_in_order(
    autojump_clock: Any, hand_overs: list[int]
) -> None:
    async with open_test_cluster(2, roles={1: ["host"]}) as cluster:
        deliveries: dict[str, list[tuple[str, int]]] = {}
        spec = Behaviors.sharded(appender(deliveries), num_shards=20, role="host")
        host = cluster.node(1).spawn(spec, "logs")
        ref = cluster.node(0).spawn(spec, "logs")
        await _stream(ref, "warm-up", 1)
        await trio.sleep(1)
        stats = cluster.node(0).region_statistics("logs")
        assert not stats.shards and stats.entities == 0  # node 0 only routes
        await _stream(ref, "a", 40)
        # Local tells on the host interleave with the peer's runs.
        await _stream(host, "local", 5)
        await trio.sleep(2)
        await _check(cluster.node(0), ref, {"warm-up": 1, "a": 40, "local": 5})
        # Under the stream, entities were woken once for several deliveries each.
        assert hand_overs and max(hand_overs) > 100


async def test_a_stream_through_a_rebalance_loses_and_reorders_nothing(
    autojump_clock: Any,
) -> None:
    async with open_test_cluster(3) as cluster:
        await cluster.stop(2)
        deliveries: dict[str, list[tuple[str, int]]] = {}
        spec = Behaviors.sharded(appender(deliveries), num_shards=30)
        refs = {i: cluster.node(i).spawn(spec, "logs") for i in range(2)}
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_stream, refs[0], "n0", 60, 0.05)
            nursery.start_soon(_stream, refs[1], "n1", 60, 0.05)
            await trio.sleep(0.5)
            await cluster.restart(2)
            await cluster.wait_for_up(3)
            cluster.node(2).spawn(spec, "logs")
        await trio.sleep(3)
        shards = [len(cluster.node(i).region_statistics("logs").shards) for i in range(3)]
        assert min(shards) > 0, shards  # the new node took some shards meanwhile
        await _check(cluster.node(1), refs[1], {"n0": 60, "n1": 60})


def _stops_at(deliveries: dict[str, list[tuple[str, int]]], seq: int) -> Any:
    """Like ``appender``, but each incarnation stops itself once it handled Append ``seq``."""

    def factory(entity_id: str) -> Any:
        async def receive(ctx: Any, msg: Any) -> Any:
            if isinstance(msg, Append):
                deliveries.setdefault(entity_id, []).append((msg.sender, msg.seq))
                if msg.seq == seq:
                    return Behaviors.stopped()
            elif isinstance(msg, GetLog):
                msg.reply_to.tell(Log(list(deliveries.get(entity_id, []))))
            return Behaviors.same()

        return Behaviors.receive(receive)

    return factory


async def test_entities_that_stop_themselves_under_a_stream_come_back_in_order(
    autojump_clock: Any,
) -> None:
    async with open_test_cluster(2, roles={1: ["host"]}) as cluster:
        deliveries: dict[str, list[tuple[str, int]]] = {}
        spec = Behaviors.sharded(_stops_at(deliveries, 10), num_shards=20, role="host")
        cluster.node(1).spawn(spec, "logs")
        ref = cluster.node(0).spawn(spec, "logs")
        await _stream(ref, "warm-up", 1)
        await trio.sleep(1)
        await _stream(ref, "a", 30, pause=0.01)
        await trio.sleep(2)
        for eid in IDS:
            log: Log = await cluster.node(0).ask(
                ref, lambda r, eid=eid: ShardEnvelope(eid, GetLog(r)), timeout=10
            )
            seqs = [seq for sender, seq in log.entries if sender == "a"]
            # At most once and in order, across incarnations: what was queued for the one
            # that stopped is lost (dead letters), a new one takes what comes after.
            assert seqs == sorted(set(seqs)), (eid, seqs)
            assert seqs[:11] == list(range(11)), (eid, seqs[:12])
            assert seqs[-1] == 29, (eid, seqs[-3:])


async def test_a_delivery_for_an_entity_that_just_stopped_is_a_dead_letter_not_a_loss(
    autojump_clock: Any,
) -> None:
    async with open_test_cluster(2, roles={1: ["host"]}) as cluster:
        deliveries: dict[str, list[tuple[str, int]]] = {}
        spec = Behaviors.sharded(appender(deliveries), num_shards=20, role="host")
        host = cluster.node(1)
        host.spawn(spec, "logs")
        ref = cluster.node(0).spawn(spec, "logs")
        await _stream(ref, "warm-up", 1)
        await trio.sleep(1)
        routing = host._regions.get("logs")._target
        assert isinstance(routing, RegionRouting)
        eid = IDS[0]
        entity = routing.fast[eid]
        async with host.event_stream.subscription(DeadLetter) as dead_letters:
            # The entity stops, and before its region has heard of it a stream's run arrives
            # (a stream: no delivery goes straight to a mailbox): its mailbox is not lent, the
            # delivery takes the region's way, which finds the entity stopped too.
            entity.ref._target.request_stop()
            routing.direct = 10**6
            run = msgspec.msgpack.encode([(eid, entity.shard, Append("late", 0))])
            manifest = host._remoting.codec.manifest(Append)
            peer = cluster.node(0).self_node
            assert routing.receive_run(peer, manifest, msgspec.Raw(run), 1) == 0
            assert not routing.owed and entity.box is None
            letter = await dead_letters.receive()
            assert letter == DeadLetter(Append("late", 0), entity.ref)
        await trio.sleep(1)
        ref.tell(ShardEnvelope(eid, Append("later", 1)))  # a new incarnation takes it
        await trio.sleep(1)
        assert deliveries[eid][-1] == ("later", 1)
