"""Sharding on a simulated cluster: routing, one incarnation per id, handoff, failover."""

from __future__ import annotations

from typing import Any

import trio

from casty_trio import ShardEnvelope, entity_shard
from casty_trio.cluster import sharded
from casty_trio.testing import open_test_cluster

from ._sharding_support import Add, Append, Counted, Get, GetLog, Log, Registry, appender, counter


async def test_single_node_counts(autojump_clock: Any) -> None:
    async with open_test_cluster(1) as cluster:
        node = cluster.node(0)
        ref = node.spawn(sharded(counter(), num_shards=10), "counters")
        for i in range(100):
            ref.tell(ShardEnvelope(f"e{i % 10}", Add(1)))
        for i in range(10):
            got: Counted = await node.ask(
                ref, lambda r, i=i: ShardEnvelope(f"e{i}", Get(r)), timeout=5
            )
            assert got.value == 10


async def test_three_nodes_one_instance_per_id(autojump_clock: Any) -> None:
    registry = Registry()
    async with open_test_cluster(3) as cluster:
        refs = [
            cluster.node(i).spawn(sharded(counter(registry), num_shards=30), "counters")
            for i in range(3)
        ]
        ids = [f"id-{k}" for k in range(1000)]
        for i, ref in enumerate(refs):
            for eid in ids:
                ref.tell(ShardEnvelope(eid, Add(i + 1)))
        await trio.sleep(2)
        paths = set()
        for k, eid in enumerate(ids):
            node = cluster.node(k % 3)
            got: Counted = await node.ask(
                refs[k % 3], lambda r, eid=eid: ShardEnvelope(eid, Get(r)), timeout=5
            )
            assert got.value == 6, (eid, got)
            paths.add(got.path)
        assert all(n == 1 for n in registry.starts.values())
        assert len(registry.starts) == 1000


async def test_shards_spread_over_nodes(autojump_clock: Any) -> None:
    async with open_test_cluster(3) as cluster:
        refs = [
            cluster.node(i).spawn(sharded(counter(), num_shards=30), "counters") for i in range(3)
        ]
        for k in range(300):
            refs[k % 3].tell(ShardEnvelope(f"id-{k}", Add(1)))
        await trio.sleep(2)
        stats = [cluster.node(i).region_statistics("counters") for i in range(3)]
        counts = [len(s.shards) for s in stats]
        assert sum(counts) == 30, counts
        assert max(counts) - min(counts) <= 1, counts
        assert sum(s.entities for s in stats) == 300
        assert len({s.coordinator for s in stats}) == 1


# ---------------------------------------------------------------------- under load

ENTITIES = [f"acct-{k}" for k in range(60)]
USED_SHARDS = len({entity_shard(eid, 30) for eid in ENTITIES})


async def _load(ref: Any, sender: str, stop: trio.Event, sent: dict[str, int]) -> None:
    """Append (sender, seq) to every entity in turn until ``stop``; count what was sent."""
    seq = 0
    while not stop.is_set():
        for eid in ENTITIES:
            ref.tell(ShardEnvelope(eid, Append(sender, seq)))
            sent[eid] = sent.get(eid, 0) + 1
        seq += 1
        await trio.sleep(0.05)


async def _check_logs(node: Any, ref: Any, sent: dict[str, dict[str, int]]) -> None:
    for eid in ENTITIES:
        log: Log = await node.ask(ref, lambda r, eid=eid: ShardEnvelope(eid, GetLog(r)), timeout=10)
        per_sender: dict[str, list[int]] = {}
        for sender, seq in log.entries:
            per_sender.setdefault(sender, []).append(seq)
        for sender, counts in sent.items():
            seqs = per_sender.get(sender, [])
            assert seqs == list(range(counts[eid])), (eid, sender, seqs[:5], counts[eid])


async def test_a_joining_node_takes_shards_under_load_losing_nothing(autojump_clock: Any) -> None:
    async with open_test_cluster(4) as cluster:
        await cluster.stop(3)
        deliveries: dict[str, list[tuple[str, int]]] = {}
        spec = sharded(appender(deliveries), num_shards=30)
        refs = {i: cluster.node(i).spawn(spec, "logs") for i in range(3)}
        stop = trio.Event()
        sent: dict[str, dict[str, int]] = {f"n{i}": {} for i in range(3)}
        async with trio.open_nursery() as nursery:
            for i in range(3):
                nursery.start_soon(_load, refs[i], f"n{i}", stop, sent[f"n{i}"])
            await trio.sleep(2)
            await cluster.restart(3)
            await cluster.wait_for_up(4)
            cluster.node(3).spawn(spec, "logs")
            await trio.sleep(8)
            stop.set()
        await trio.sleep(2)
        shards = [len(cluster.node(i).region_statistics("logs").shards) for i in range(4)]
        assert sum(shards) == USED_SHARDS and max(shards) - min(shards) <= 1, shards
        await _check_logs(cluster.node(0), refs[0], sent)


async def test_a_graceful_leave_under_load_loses_nothing(autojump_clock: Any) -> None:
    async with open_test_cluster(3) as cluster:
        deliveries: dict[str, list[tuple[str, int]]] = {}
        spec = sharded(appender(deliveries), num_shards=30)
        refs = {i: cluster.node(i).spawn(spec, "logs") for i in range(3)}
        stop = trio.Event()
        sent: dict[str, dict[str, int]] = {f"n{i}": {} for i in range(2)}
        async with trio.open_nursery() as nursery:
            for i in range(2):
                nursery.start_soon(_load, refs[i], f"n{i}", stop, sent[f"n{i}"])
            await trio.sleep(2)
            assert cluster.node(2).region_statistics("logs").shards
            await cluster.stop(2)
            await trio.sleep(3)
            stop.set()
        await trio.sleep(2)
        shards = [len(cluster.node(i).region_statistics("logs").shards) for i in range(2)]
        assert sum(shards) == USED_SHARDS, shards
        await _check_logs(cluster.node(0), refs[0], sent)
