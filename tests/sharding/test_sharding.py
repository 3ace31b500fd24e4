"""Sharding on a simulated cluster: routing, one incarnation per id, handoff, failover."""

from __future__ import annotations

from typing import Any

import trio

from casty_trio import Behaviors, InMemoryJournal, ShardEnvelope, entity_shard
from casty_trio.testing import open_test_cluster

from ._sharding_support import (
    Add,
    Append,
    Balance,
    Counted,
    Deposit,
    Get,
    GetLog,
    Log,
    Registry,
    account,
    appender,
    counter,
)


async def test_single_node_counts(autojump_clock: Any) -> None:
    async with open_test_cluster(1) as cluster:
        node = cluster.node(0)
        ref = node.spawn(Behaviors.sharded(counter(), num_shards=10), "counters")
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
            cluster.node(i).spawn(Behaviors.sharded(counter(registry), num_shards=30), "counters")
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
            cluster.node(i).spawn(Behaviors.sharded(counter(), num_shards=30), "counters")
            for i in range(3)
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
        spec = Behaviors.sharded(appender(deliveries), num_shards=30)
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
        spec = Behaviors.sharded(appender(deliveries), num_shards=30)
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


# ---------------------------------------------------------------------- failures


async def _ask_all(node: Any, ref: Any, ids: list[str]) -> dict[str, Counted]:
    answers = {}
    for eid in ids:
        answers[eid] = await node.ask(
            ref, lambda r, eid=eid: ShardEnvelope(eid, Get(r)), timeout=10
        )
    return answers


async def test_a_killed_nodes_shards_are_reallocated(autojump_clock: Any) -> None:
    async with open_test_cluster(3) as cluster:
        spec = Behaviors.sharded(counter(), num_shards=30)
        refs = [cluster.node(i).spawn(spec, "counters") for i in range(3)]
        ids = [f"id-{k}" for k in range(90)]
        await _ask_all(cluster.node(0), refs[0], ids)
        lost = cluster.node(2).region_statistics("counters").shards
        assert lost
        await cluster.kill(2)
        with trio.fail_after(30):
            for i in (0, 1):
                while cluster.address(2) in _up_nodes(cluster.node(i)):
                    await trio.sleep(0.5)
        answers = await _ask_all(cluster.node(1), refs[1], ids)
        assert len(answers) == 90
        hosted = [cluster.node(i).region_statistics("counters").shards for i in range(2)]
        assert lost <= hosted[0] | hosted[1]
        assert not hosted[0] & hosted[1]


async def test_coordinator_moves_when_its_node_is_killed(autojump_clock: Any) -> None:
    async with open_test_cluster(3) as cluster:
        spec = Behaviors.sharded(counter(), num_shards=30)
        refs = [cluster.node(i).spawn(spec, "counters") for i in range(3)]
        ids = [f"id-{k}" for k in range(60)]
        await _ask_all(cluster.node(1), refs[1], ids)
        assert cluster.node(1).region_statistics("counters").coordinator == cluster.address(0)
        await cluster.kill(0)
        with trio.fail_after(60):
            # Until a node learns that node 0 is down, what it routes there is lost
            # (at-most-once): wait for both survivors to know.
            for i in (1, 2):
                while cluster.node(i).region_statistics("counters").coordinator == cluster.address(
                    0
                ):
                    await trio.sleep(0.5)
        coordinator = cluster.node(1).region_statistics("counters").coordinator
        assert coordinator in (cluster.address(1), cluster.address(2))
        answers = await _ask_all(cluster.node(2), refs[2], ids)
        assert len(answers) == 60
        hosted = [cluster.node(i).region_statistics("counters").shards for i in (1, 2)]
        assert not hosted[0] & hosted[1]
        assert len(hosted[0] | hosted[1]) == len({entity_shard(e, 30) for e in ids})


async def test_idle_entities_passivate_and_revive(autojump_clock: Any) -> None:
    registry = Registry()
    async with open_test_cluster(2) as cluster:
        spec = Behaviors.sharded(counter(registry), num_shards=10, passivate_after=5.0)
        refs = [cluster.node(i).spawn(spec, "counters") for i in range(2)]
        for k in range(20):
            refs[k % 2].tell(ShardEnvelope(f"p-{k}", Add(1)))
        await trio.sleep(2)
        assert sum(cluster.node(i).region_statistics("counters").entities for i in range(2)) == 20
        # keep one entity busy: it must not passivate
        for _ in range(10):
            refs[0].tell(ShardEnvelope("p-0", Add(1)))
            await trio.sleep(1)
        assert sum(cluster.node(i).region_statistics("counters").entities for i in range(2)) == 1
        assert all(n == 0 for eid, n in registry.live.items() if eid != "p-0")
        got: Counted = await cluster.node(1).ask(
            refs[1], lambda r: ShardEnvelope("p-5", Get(r)), timeout=5
        )
        assert got.value == 0 and got.incarnations == 2  # a new incarnation, state not kept
        busy: Counted = await cluster.node(1).ask(
            refs[1], lambda r: ShardEnvelope("p-0", Get(r)), timeout=5
        )
        assert busy.value == 11 and busy.incarnations == 1


async def test_role_restricted_placement(autojump_clock: Any) -> None:
    async with open_test_cluster(3, roles={0: ["worker"], 1: ["worker"]}) as cluster:
        spec = Behaviors.sharded(counter(), num_shards=20, role="worker")
        refs = [cluster.node(i).spawn(spec, "counters") for i in range(3)]
        ids = [f"id-{k}" for k in range(60)]
        answers = await _ask_all(cluster.node(2), refs[2], ids)
        assert len(answers) == 60
        assert not cluster.node(2).region_statistics("counters").shards
        assert cluster.node(0).region_statistics("counters").shards
        assert cluster.node(1).region_statistics("counters").shards


def _up_nodes(system: Any) -> set[Any]:
    return {m.node for m in system.cluster_gossip().members.values() if m.status.value == "up"}


# ---------------------------------------------------------------------- event-sourced entities


async def test_event_sourced_entities_recover_after_handoff_and_failover(
    autojump_clock: Any,
) -> None:
    journal = InMemoryJournal()  # shared by the nodes, as one database would be
    async with open_test_cluster(3) as cluster:
        spec = Behaviors.sharded(account(journal), num_shards=12)
        refs = [cluster.node(i).spawn(spec, "accounts") for i in range(3)]
        ids = [f"acct-{k}" for k in range(24)]
        for _ in range(3):
            for k, eid in enumerate(ids):
                node = cluster.node(k % 3)
                await node.ask(
                    refs[k % 3], lambda r, eid=eid: ShardEnvelope(eid, Deposit(10, r)), timeout=10
                )
        assert cluster.node(2).region_statistics("accounts").shards
        await cluster.stop(2)  # graceful: its shards are handed off
        assert cluster.node(1).region_statistics("accounts").shards
        await cluster.kill(1)  # crash: its shards are reallocated once it is downed
        with trio.fail_after(30):
            while cluster.address(1) in _up_nodes(cluster.node(0)):
                await trio.sleep(0.5)
        for eid in ids:
            balance = await cluster.node(0).ask(
                refs[0], lambda r, eid=eid: ShardEnvelope(eid, Balance(r)), timeout=10
            )
            assert balance == 30, (eid, balance)


async def test_one_live_incarnation_per_id_while_shards_move(autojump_clock: Any) -> None:
    registry = Registry()
    async with open_test_cluster(4) as cluster:
        await cluster.stop(3)
        spec = Behaviors.sharded(counter(registry), num_shards=40)
        refs = [cluster.node(i).spawn(spec, "counters") for i in range(3)]
        ids = [f"id-{k}" for k in range(200)]
        stop = trio.Event()

        async def traffic(i: int) -> None:
            while not stop.is_set():
                for eid in ids:
                    refs[i].tell(ShardEnvelope(eid, Add(1)))
                await trio.sleep(0.1)

        async with trio.open_nursery() as nursery:
            for i in range(3):
                nursery.start_soon(traffic, i)
            await trio.sleep(1)
            await cluster.restart(3)
            await cluster.wait_for_up(4)
            refs.append(cluster.node(3).spawn(spec, "counters"))
            await trio.sleep(5)
            await cluster.stop(1)  # a graceful leave moves its shards again
            await trio.sleep(5)
            stop.set()
        assert cluster.node(3).region_statistics("counters").shards
        assert set(registry.max_live) == set(ids)
        assert max(registry.max_live.values()) == 1


async def test_lookup_by_node_id(autojump_clock: Any) -> None:
    async with open_test_cluster(2) as cluster:
        cluster.node(1).spawn(Behaviors.ignore(), "sink")
        ref = cluster.node(0).lookup("/sink", node="node-1")
        assert ref is not None and ref.address.node == cluster.address(1)
        assert cluster.node(0).lookup("/sink", node="no-such-node") is None
        assert cluster.node(1).lookup("/sink", node="node-1") is not None
