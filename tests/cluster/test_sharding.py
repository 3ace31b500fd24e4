"""Sharding on a simulated cluster: routing, one incarnation per id, handoff, failover."""

from __future__ import annotations

from typing import Any

import trio

from casty_trio import ShardEnvelope
from casty_trio.cluster import sharded
from casty_trio.testing import open_test_cluster

from ._sharding_support import Add, Counted, Get, Registry, counter


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
