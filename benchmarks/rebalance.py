"""Scenario ``rebalance``: a 4th node joins a loaded 3-node cluster hosting 300 shards; how long
until it hosts its share, and how many messages are lost on the way.

Setup: four :class:`~casty_trio.ClusteredActorSystem` nodes **in one process** (one
``trio.run``), each on its own real WebSocket listener on 127.0.0.1 (port 0), with the default
membership timings and the default ``[defaults.sharding]`` (rebalance every 1 s, threshold 1,
at most 10 shards in handoff at once). Three nodes form the cluster and spawn the sharded type
``logs`` with ``num_shards=300``; 300 entity ids, one per shard, get a message each, so all 300
shards are allocated (100 per node).

Load: while the rest runs, each of the three nodes tells ``Append(sender, seq)`` to every one of
the 300 entities in turn (a checkpoint of 10 ms after every round: about 3 x 300 x 90 = 80k
messages/s offered). Each entity records what it handles in a dict shared by the four nodes (the
process is the same), so deliveries are counted across incarnations and nodes.

Measured: the 4th node joins (``join_s``: from entering its system to every node seeing 4
members up; the baseline, membership only), then spawns the region; ``rebalance_s`` runs from
that spawn until its region hosts at least ``300 / 4 - threshold`` = 74 shards (polled every
10 ms). The load goes on for one more second, stops; then every entity is checked: per sender,
the sequence numbers handled must be exactly ``0 .. sent - 1`` in order. ``lost`` counts the
missing ones, ``duplicated`` the extra ones, ``reordered`` the entities that saw a sender's
messages out of order.

``ratio`` = ``rebalance_s / join_s`` (informational). Goal: the 4th node reaches its share and
``lost == 0`` (and nothing duplicated or reordered). Reported per run, several runs.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import attrs
import trio
from _common import emit, make_record, now, percentile, quick_from_argv

from casty_trio import (
    ActorContext,
    Behavior,
    Behaviors,
    ClusteredActorSystem,
    MsgpackSerializer,
    ShardEnvelope,
    entity_shard,
)
from casty_trio.config import CastyConfig

SCENARIO = "rebalance"
LOCAL = "127.0.0.1"
SYSTEM = "bench-rebalance"
TYPE = "logs"


@attrs.frozen
class Append:
    """One loaded message: ``seq`` is the sender's round number."""

    sender: str
    seq: int


@attrs.frozen
class Probe:
    """Starts an entity (before the load) and is answered with ``True``."""

    reply_to: Any


def _ids(num_shards: int) -> list[str]:
    """One entity id per shard, so every shard gets allocated."""
    by_shard: dict[int, str] = {}
    k = 0
    while len(by_shard) < num_shards:
        by_shard.setdefault(entity_shard(f"e-{k}", num_shards), f"e-{k}")
        k += 1
    return [by_shard[s] for s in range(num_shards)]


def _appender(deliveries: dict[str, dict[str, list[int]]]) -> Any:
    def factory(entity_id: str) -> Behavior[Any]:
        log = deliveries.setdefault(entity_id, {})

        async def receive(ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
            if type(msg) is Append:
                log.setdefault(msg.sender, []).append(msg.seq)
            elif type(msg) is Probe:
                msg.reply_to.tell(True)
            return Behaviors.same()

        return Behaviors.receive(receive)

    return factory


async def _load(
    ref: Any, sender: str, ids: list[str], stop: trio.Event, sent: dict[str, int]
) -> None:
    seq = 0
    while not stop.is_set():
        for eid in ids:
            ref.tell(ShardEnvelope(eid, Append(sender, seq)))
        seq += 1
        sent[sender] = seq
        await trio.sleep(0.01)


def _check(
    deliveries: dict[str, dict[str, list[int]]], ids: list[str], sent: dict[str, int]
) -> dict[str, int]:
    lost = duplicated = reordered = delivered = 0
    for eid in ids:
        log = deliveries.get(eid, {})
        for sender, count in sent.items():
            seqs = log.get(sender, [])
            delivered += len(seqs)
            unique = set(seqs)
            lost += sum(1 for s in range(count) if s not in unique)
            duplicated += len(seqs) - len(unique)
            if seqs != sorted(seqs):
                reordered += 1
    return {
        "sent": sum(sent.values()) * len(ids),
        "delivered": delivered,
        "lost": lost,
        "duplicated": duplicated,
        "reordered_entities": reordered,
    }


async def _all_delivered(
    deliveries: dict[str, dict[str, list[int]]], ids: list[str], sent: dict[str, int]
) -> None:
    """Wait (bounded by the caller) until every sent message was handled; polls."""
    total = sum(sent.values()) * len(ids)
    while sum(len(s) for log in deliveries.values() for s in log.values()) < total:
        await trio.sleep(0.05)


def _node(config: CastyConfig, i: int, seeds: list[Any]) -> ClusteredActorSystem:
    return ClusteredActorSystem(
        name=SYSTEM,
        host=LOCAL,
        port=0,
        node_id=f"n{i}",
        seed_nodes=seeds,
        config=config,
        # run as a script, the messages' module is __main__: sent to other nodes only when
        # registered (every node here is in this one process)
        serializer=MsgpackSerializer(types=[Append, Probe]),
    )


async def _once(num_shards: int) -> dict[str, Any]:
    config = CastyConfig()
    threshold = config.defaults.sharding.rebalance_threshold
    share = num_shards // 4 - threshold
    ids = _ids(num_shards)
    deliveries: dict[str, dict[str, list[int]]] = {}
    spec = Behaviors.sharded(_appender(deliveries), num_shards=num_shards)
    sent: dict[str, int] = {}
    stop = trio.Event()
    result: dict[str, Any] = {}
    async with _node(config, 0, []) as n0:
        seeds = [n0.self_node]
        async with _node(config, 1, seeds) as n1, _node(config, 2, seeds) as n2:
            nodes = [n0, n1, n2]
            for node in nodes:
                await node.wait_for(3, timeout=30)
            refs = [node.spawn(spec, TYPE) for node in nodes]
            for eid in ids:  # allocate every shard before the 4th node comes
                await n0.ask(refs[0], lambda r, eid=eid: ShardEnvelope(eid, Probe(r)), timeout=10)
            before = [len(node.region_statistics(TYPE).shards) for node in nodes]
            assert sum(before) == num_shards, before
            async with trio.open_nursery() as nursery:
                for i, ref in enumerate(refs):
                    nursery.start_soon(_load, ref, f"n{i}", ids, stop, sent)
                await trio.sleep(1.0)  # under load before the join
                start = now()
                async with _node(config, 3, seeds) as n3:
                    for node in [*nodes, n3]:
                        await node.wait_for(4, timeout=30)
                    joined = now()
                    n3.spawn(spec, TYPE)
                    with trio.fail_after(120):
                        while len(n3.region_statistics(TYPE).shards) < share:
                            await trio.sleep(0.01)
                    reached = now()
                    await trio.sleep(1.0)
                    stop.set()
                    with trio.move_on_after(30):
                        await _all_delivered(deliveries, ids, sent)
                    drained = now()
                    after = [len(node.region_statistics(TYPE).shards) for node in [*nodes, n3]]
                    result = {
                        "join_s": joined - start,
                        "rebalance_s": reached - joined,
                        "drain_after_stop_s": drained - reached - 1.0,
                        "shards_before": before,
                        "shards_after": after,
                        "share_target": share,
                        **_check(deliveries, ids, sent),
                    }
    return result


def run(quick: bool = False) -> dict[str, Any]:
    """Run the scenario and return its record (``quick``: tiny counts, for smoke tests)."""
    num_shards = 40 if quick else 300
    # Teardown (nodes leaving one after another) logs unreachable peers; not what is measured.
    logging.getLogger("casty_trio").setLevel(logging.ERROR)
    repeats = 1 if quick else 3
    runs: list[dict[str, Any]] = []
    for _ in range(repeats):
        runs.append(trio.run(_once, num_shards))
    rebalance = [r["rebalance_s"] for r in runs]
    join = [r["join_s"] for r in runs]
    lost = sum(r["lost"] for r in runs)
    bad = sum(r["duplicated"] + r["reordered_entities"] for r in runs)
    median = percentile(rebalance, 50)
    join_median = percentile(join, 50)
    return make_record(
        SCENARIO,
        ours={
            "rebalance_s_median": round(median, 3),
            "rebalance_s_all_runs": [round(x, 3) for x in rebalance],
            "kind": "seconds from spawning the region on the 4th node until it hosts "
            "num_shards/4 - threshold shards, under load",
            "runs": [
                {k: round(v, 3) if isinstance(v, float) else v for k, v in r.items()} for r in runs
            ],
        },
        baseline={
            "join_s_median": round(join_median, 3),
            "join_s_all_runs": [round(x, 3) for x in join],
            "kind": "seconds from entering the 4th node's system until all 4 see 4 members up",
        },
        ratio=median / join_median if join_median else math.inf,
        goal="the 4th node reaches its share and lost == 0 (no duplicate, no reorder)",
        meets_goal=lost == 0 and bad == 0,
        lost=lost,
        duplicated_or_reordered=bad,
        setup="4 ClusteredActorSystems in one process, each on its own WebSocket listener "
        "(127.0.0.1); default membership and [defaults.sharding] settings",
        num_shards=num_shards,
        repeats=repeats,
        quick=quick,
    )


if __name__ == "__main__":
    emit(run(quick=quick_from_argv()))
