"""Scenario ``sharded_ask``: N sequential asks to sharded entities on one node, against
``local_ask``.

Ours: a single-node :class:`~casty_trio.ClusteredActorSystem` (real WebSocket transport on
127.0.0.1, port 0, a cluster of one) spawns ``Behaviors.sharded(echo, num_shards=100)``; then
``await system.ask(ref, lambda r: ShardEnvelope(entity_id, Ping(r)), timeout=5.0)`` N times in
a row, round-robin over E entity ids, through the ref ``spawn`` returned. The entity answers
``msg.reply_to.tell(Pong(...))``. Every entity has answered one untimed ask before the clock
starts (steady state: entities exist, the region's fast path knows them), so the timed asks
never include an entity start.

Reference: ``local_ask``'s own measurement of ours (N asks to one plain actor, see
``local_ask.py``), run in the same process, alternating with the sharded runs. Every ask is
timed with ``perf_counter_ns`` for p50/p99, with the cyclic GC off.
``ratio`` = sharded p50 / local_ask p50 (lowest-p50 run of each); goal ``<= 1.5``.
"""

from __future__ import annotations

from typing import Any

import trio
import trio.testing
from _common import alternate, compare, emit, gc_paused, make_record, now, now_ns, quick_from_argv
from local_ask import Ping, Pong, _rounded, _summary
from local_ask import _ours_once as local_ask_once

from casty_trio import ActorContext, Behavior, Behaviors, ClusteredActorSystem, ShardEnvelope

SCENARIO = "sharded_ask"
GOAL = 1.5
LOCAL = "127.0.0.1"
NUM_SHARDS = 100


async def _echo(ctx: ActorContext[Ping], msg: Ping) -> Behavior[Ping]:
    msg.reply_to.tell(Pong(msg.reply_to))
    return Behaviors.same()


def _entity(entity_id: str) -> Behavior[Ping]:
    return Behaviors.receive(_echo)


class _Runner:
    def __init__(self, system: ClusteredActorSystem, entities: int) -> None:
        self.system = system
        self.ids = [f"entity-{k}" for k in range(entities)]
        self.runs = 0

    async def once(self, n: int) -> dict[str, float]:
        self.runs += 1
        name = f"echoes-{self.runs}"
        ref = self.system.spawn(Behaviors.sharded(_entity, num_shards=NUM_SHARDS), name)
        ask = self.system.ask
        for eid in self.ids:  # warm-up: every entity exists before the clock starts
            await ask(ref, lambda r, eid=eid: ShardEnvelope(eid, Ping(r)), timeout=10.0)
        assert self.system.region_statistics(name).entities == len(self.ids)
        await trio.testing.wait_all_tasks_blocked()
        ids = [self.ids[i % len(self.ids)] for i in range(n)]
        latencies = [0] * n
        with gc_paused():
            start = now()
            for i, eid in enumerate(ids):
                t0 = now_ns()
                reply = await ask(ref, lambda r, eid=eid: ShardEnvelope(eid, Ping(r)), timeout=5.0)
                latencies[i] = now_ns() - t0
            end = now()
        assert type(reply) is Pong
        return _summary(n, end - start, latencies)


def run(quick: bool = False) -> dict[str, Any]:
    """Run the scenario and return its record (``quick``: tiny counts, for smoke tests)."""
    entities = 100 if quick else 1_000
    n = 1_000 if quick else 10_000
    repeats = 2 if quick else 5

    async def main() -> tuple[list[dict[str, float]], ...]:
        async with ClusteredActorSystem(
            name="bench-sharded-ask", host=LOCAL, port=0, node_id="solo"
        ) as system:
            await system.wait_for(1, timeout=30)
            runner = _Runner(system, entities)
            sharded, local = await alternate(repeats, n, min(n, 1_000), runner.once, local_ask_once)
        return sharded, local

    sharded_runs, local_runs = trio.run(main)
    ours, local, ratio, pairs = compare(sharded_runs, local_runs, "p50_us", highest=False)
    return make_record(
        SCENARIO,
        ours={
            **_rounded(ours),
            "p50_us_all_runs": [round(r["p50_us"], 1) for r in sharded_runs],
            "kind": f"system.ask with ShardEnvelope, round-robin over {entities} started "
            "entities, through the ref spawn returned",
        },
        baseline={
            **_rounded(local),
            "p50_us_all_runs": [round(r["p50_us"], 1) for r in local_runs],
            "kind": "local_ask's measurement of ours: asks to one plain local actor",
        },
        ratio=ratio,
        goal=f"ratio (sharded p50 / local_ask p50) <= {GOAL}",
        meets_goal=ratio <= GOAL,
        ratio_pairs_median=round(pairs, 4),
        measured_phase="steady (every entity answered one untimed ask first)",
        entities=entities,
        num_shards=NUM_SHARDS,
        n=n,
        repeats=repeats,
        quick=quick,
    )


if __name__ == "__main__":
    emit(run(quick=quick_from_argv()))
