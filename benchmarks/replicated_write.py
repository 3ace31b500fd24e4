"""Scenario ``replicated_write``: the latency and throughput of replicated writes.

Three processes on loopback, each a node of the bank of ``casty_trio.cli._bank``: this one (the
driver) and two started with ``python -m casty_trio.cli._bank_node`` (default membership
timings). All three host the event-sourced sharded type ``accounts`` with ``replicas=2,
min_acks=1`` (so every node holds every shard, as primary or replica) and, on the same nodes,
the same entities without replication (``accounts-plain``). Every ask goes to an account whose
primary is another process, so it crosses one link each way.

Latency (``ratio``, the goal): N sequential deposits to that account (``Deposit`` → persisted in
the primary's in-memory journal, sent to both replicas, confirmed after the first ack), against
N sequential ``GetBalance`` asks to the same entity (an unreplicated sharded ask: one round trip
to the same primary), alternating, same run. ``ratio`` = write p50 / ask p50, goal ``<= 2``: a
replicated write is two round trips in a row (driver → primary → replica → primary → driver),
so 2 is the floor left for the overheads. The record also gives the same deposits to the
unreplicated type (persisted, not replicated), which isolates what replication adds.

Throughput (reported): C concurrent clients deposit M times in all, round-robin over 100
accounts, replicated against unreplicated.
"""

from __future__ import annotations

import itertools
from typing import Any

import trio
from _common import compare, emit, gc_paused, make_record, now, now_ns, percentile, quick_from_argv

from casty_trio import ActorRef, ShardEnvelope, entity_shard
from casty_trio.cli._bank import (
    PLAIN,
    TYPE,
    BankCluster,
    BankSpec,
    Confirmed,
    Deposit,
    GetBalance,
)
from casty_trio.cli._bank import open_bank_cluster as open_bank

SCENARIO = "replicated_write"
GOAL = 2.0
ACCOUNTS = [f"acc-{k}" for k in range(100)]


def _summary(latencies_ns: list[int], elapsed: float) -> dict[str, float]:
    us = [x / 1000 for x in latencies_ns]
    return {
        "p50_us": percentile(us, 50),
        "p99_us": percentile(us, 99),
        "ops_per_s": len(us) / elapsed,
    }


async def _sequential(
    bank: BankCluster,
    ref: ActorRef[Any],
    kind: str,
    n: int,
    ids: itertools.count[int],
    entity: str,
) -> dict[str, float]:
    ask = bank.system.ask
    latencies = [0] * n
    with gc_paused():
        start = now()
        for i in range(n):
            t0 = now_ns()
            if kind == "write":
                write_id = next(ids)
                answer = await ask(
                    ref, lambda r, w=write_id: ShardEnvelope(entity, Deposit(w, 1, r)), timeout=5
                )
                assert isinstance(answer, Confirmed), answer
            else:
                await ask(ref, lambda r: ShardEnvelope(entity, GetBalance(r)), timeout=5)
            latencies[i] = now_ns() - t0
        end = now()
    return _summary(latencies, end - start)


async def _concurrent(
    bank: BankCluster, ref: ActorRef[Any], clients: int, total: int, ids: itertools.count[int]
) -> dict[str, float]:
    ask = bank.system.ask
    per_client = total // clients
    confirmed = 0

    async def client(k: int) -> None:
        nonlocal confirmed
        for i in range(per_client):
            eid = ACCOUNTS[(k + i * clients) % len(ACCOUNTS)]
            write_id = next(ids)
            answer = await ask(
                ref, lambda r, w=write_id, e=eid: ShardEnvelope(e, Deposit(w, 1, r)), timeout=10
            )
            assert isinstance(answer, Confirmed), answer
            confirmed += 1

    with gc_paused():
        start = now()
        async with trio.open_nursery() as nursery:
            for k in range(clients):
                nursery.start_soon(client, k)
        end = now()
    assert confirmed == per_client * clients
    return {"writes_per_s": confirmed / (end - start), "elapsed_s": end - start}


def run(quick: bool = False) -> dict[str, Any]:
    """Run the scenario and return its record (``quick``: tiny counts, for smoke tests)."""
    n = 100 if quick else 2_000
    clients = 16 if quick else 64
    total = 320 if quick else 12_800
    repeats = 1 if quick else 3
    # Two node processes and the driver, which hosts too: three nodes, three processes.
    spec = BankSpec(nodes=2, num_shards=30, replicas=2, min_acks=1, ack_timeout=5.0, settings={})
    writes: list[dict[str, float]] = []
    reads: list[dict[str, float]] = []
    plain_writes: list[dict[str, float]] = []
    bulk: list[dict[str, float]] = []
    plain_bulk: list[dict[str, float]] = []
    facts: dict[str, Any] = {}

    async def main() -> None:
        ids = itertools.count(1)
        started = now()
        async with open_bank(spec, driver_hosts=True) as bank:
            facts["start_s"] = round(now() - started, 3)
            for eid in ACCOUNTS:  # every account exists on both types, every home is known
                for ref in (bank.accounts, bank.plain):
                    answer = await bank.system.ask(
                        ref,
                        lambda r, e=eid: ShardEnvelope(e, Deposit(next(ids), 1, r)),
                        timeout=10,
                    )
                    assert isinstance(answer, Confirmed), answer
            # An account whose primary (of both types) is another process.
            here = {
                *bank.system.region_statistics(TYPE).shards,
                *bank.system.region_statistics(PLAIN).shards,
            }
            entity = next(e for e in ACCOUNTS if entity_shard(e, spec.num_shards) not in here)
            facts["entity"] = entity
            for kind, ref in (("write", bank.accounts), ("read", bank.accounts)):
                await _sequential(bank, ref, kind, min(n, 200), ids, entity)
            await _sequential(bank, bank.plain, "write", min(n, 200), ids, entity)
            for _ in range(repeats):
                writes.append(await _sequential(bank, bank.accounts, "write", n, ids, entity))
                reads.append(await _sequential(bank, bank.accounts, "read", n, ids, entity))
                plain_writes.append(await _sequential(bank, bank.plain, "write", n, ids, entity))
                bulk.append(await _concurrent(bank, bank.accounts, clients, total, ids))
                plain_bulk.append(await _concurrent(bank, bank.plain, clients, total, ids))
            primaries = await bank.primaries()
            facts["primaries"] = {k: len(v) for k, v in primaries.items()}

    trio.run(main)
    write, read, ratio, pairs = compare(writes, reads, "p50_us", highest=False)
    plain = min(plain_writes, key=lambda r: r["p50_us"])
    best_bulk = max(bulk, key=lambda r: r["writes_per_s"])
    best_plain_bulk = max(plain_bulk, key=lambda r: r["writes_per_s"])

    def rounded(result: dict[str, float]) -> dict[str, float]:
        return {k: round(v, 1 if k.endswith("_us") else 3) for k, v in result.items()}

    return make_record(
        SCENARIO,
        ours={
            **rounded(write),
            "p50_us_all_runs": [round(r["p50_us"], 1) for r in writes],
            "kind": "sequential Deposit asks to one replicated account (replicas=2, min_acks=1), "
            "from a node whose replica it is",
            "concurrent": {
                "writes_per_s": round(best_bulk["writes_per_s"]),
                "all_runs": [round(r["writes_per_s"]) for r in bulk],
                "clients": clients,
                "writes": total,
                "accounts": len(ACCOUNTS),
            },
        },
        baseline={
            **rounded(read),
            "p50_us_all_runs": [round(r["p50_us"], 1) for r in reads],
            "kind": "sequential GetBalance asks to the same entity (unreplicated sharded ask)",
            "unreplicated_write": {
                **rounded(plain),
                "kind": "the same Deposit to the same id of an unreplicated type "
                "(persisted, not replicated)",
            },
            "unreplicated_concurrent": {
                "writes_per_s": round(best_plain_bulk["writes_per_s"]),
                "all_runs": [round(r["writes_per_s"]) for r in plain_bulk],
            },
        },
        ratio=ratio,
        goal=f"ratio (replicated write p50 over unreplicated sharded ask p50) <= {GOAL}",
        meets_goal=ratio <= GOAL,
        ratio_pairs_median=round(pairs, 4),
        write_over_unreplicated_write=round(write["p50_us"] / plain["p50_us"], 4),
        throughput_ratio=round(best_bulk["writes_per_s"] / best_plain_bulk["writes_per_s"], 4),
        n=n,
        repeats=repeats,
        quick=quick,
        nodes=spec.nodes + 1,
        replication={"replicas": spec.replicas, "min_acks": spec.min_acks},
        **facts,
    )


if __name__ == "__main__":
    emit(run(quick=quick_from_argv()))
