"""Scenario ``sharded_tell``: N tells to E sharded entities on one node, against ``local_tell``.

Ours: a single-node :class:`~casty_trio.ClusteredActorSystem` (real WebSocket transport on
127.0.0.1, port 0, a cluster of one) spawns ``Behaviors.sharded(counter, num_shards=100)`` and
we tell ``ShardEnvelope(entity_id, Tick)`` through the ref ``spawn`` returns, round-robin over
E entities (N/E messages each). Every entity counts what it handles; when it has its share it
counts itself done, and the last one sets a ``trio.Event``. The clock runs from the first tell
until that event is seen. The envelopes (one per entity) are built before the clock starts and
reused, as ``local_tell`` reuses one message.

Two phases, each on a fresh sharded type (so no entity exists before it):

* ``steady`` (the figure the goal uses): first one message to every entity, untimed, so that
  every entity exists and the region's fast path (``RegionRouting``: straight into a running
  entity's mailbox, no hop through the region actor) knows it; then the timed N tells.
* ``cold`` (reported, not the goal): the timed N tells go to entities that do not exist yet, so
  the first message of each entity goes through the region actor, which asks the coordinator
  for the shard's home (the first message of every shard), spawns and watches the entity.

Also reported (unscored): ``plain_actors``, the same N tells round-robin to E plain local actors
(``system.spawn(Behaviors.receive(...))``, refs held directly) on the same node: what spreading
the messages over E mailboxes costs by itself, so ``ours / plain_actors`` is the cost of the
sharded routing alone.

Reference: ``local_tell``'s own measurement of ours (N tells to one plain actor, see
``local_tell.py``), run in the same process, alternating with the sharded runs.
``ratio`` = steady sharded msgs/s / local_tell msgs/s (best run of each); goal ``>= 0.6``.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import trio
import trio.testing
from _common import alternate, best_of, compare, emit, gc_paused, make_record, now, quick_from_argv
from local_tell import Tick
from local_tell import _ours_once as local_tell_once

from casty_trio import ActorContext, Behavior, Behaviors, ClusteredActorSystem, ShardEnvelope

SCENARIO = "sharded_tell"
GOAL = 0.6
LOCAL = "127.0.0.1"
NUM_SHARDS = 100


class _Completion:
    """Entities that each expect ``per_entity`` messages; ``done`` once all had theirs."""

    def __init__(self, entities: int, per_entity: int) -> None:
        self.remaining = entities
        self.per_entity = per_entity
        self.counts: dict[str, int] = {}
        self.done = trio.Event()

    def reset(self, per_entity: int) -> None:
        self.remaining = len(self.counts)
        self.per_entity = per_entity
        self.counts = dict.fromkeys(self.counts, 0)
        self.done = trio.Event()


def _counter(completion: _Completion) -> Any:
    def factory(entity_id: str) -> Behavior[Tick]:
        count = 0
        completion.counts[entity_id] = 0

        async def receive(ctx: ActorContext[Tick], msg: Tick) -> Behavior[Tick]:
            nonlocal count
            count += 1
            if count == completion.per_entity:
                completion.counts[entity_id] = count
                count = 0
                completion.remaining -= 1
                if completion.remaining == 0:
                    completion.done.set()
            return Behaviors.same()

        return Behaviors.receive(receive)

    return factory


class _Runner:
    """Spawns a fresh sharded type per run on one node."""

    def __init__(self, system: ClusteredActorSystem, entities: int) -> None:
        self.system = system
        self.entities = entities
        self.ids = [f"entity-{k}" for k in range(entities)]
        self.runs = 0

    def _spawn(self, completion: _Completion) -> Any:
        self.runs += 1
        spec = Behaviors.sharded(_counter(completion), num_shards=NUM_SHARDS)
        return self.system.spawn(spec, f"counters-{self.runs}")

    async def plain(self, n: int) -> dict[str, float]:
        """The same round-robin over E plain actors spawned here (unscored reference)."""
        per_entity = max(1, n // self.entities)
        completion = _Completion(self.entities, per_entity)
        self.runs += 1
        factory = _counter(completion)
        refs = [
            self.system.spawn(factory(eid), f"plain-{self.runs}-{k}")
            for k, eid in enumerate(self.ids)
        ]
        await trio.testing.wait_all_tasks_blocked()
        msg = Tick(1)
        tells = [ref.tell for ref in refs]
        with gc_paused():
            start = now()
            for _ in range(per_entity):
                for tell in tells:
                    tell(msg)
            with trio.fail_after(120):
                await completion.done.wait()
            end = now()
        for ref in refs:
            self.system.stop(ref)
        elapsed = end - start
        return {"elapsed_s": elapsed, "msgs_per_s": per_entity * self.entities / elapsed}

    async def once(self, n: int, *, warm: bool) -> dict[str, float]:
        per_entity = max(1, n // self.entities)
        completion = _Completion(self.entities, 1 if warm else per_entity)
        ref = self._spawn(completion)
        envelopes = [ShardEnvelope(eid, Tick(1)) for eid in self.ids]
        if warm:
            for envelope in envelopes:
                ref.tell(envelope)
            with trio.fail_after(60):
                await completion.done.wait()
            completion.reset(per_entity)
        await trio.testing.wait_all_tasks_blocked()
        total = per_entity * self.entities
        tell = ref.tell
        with gc_paused():
            start = now()
            for _ in range(per_entity):
                for envelope in envelopes:
                    tell(envelope)
            enqueued = now()
            with trio.fail_after(120):
                await completion.done.wait()
            end = now()
        assert all(c == per_entity for c in completion.counts.values()), "an entity missed some"
        assert len(completion.counts) == self.entities
        stats = self.system.region_statistics(f"counters-{self.runs}")
        assert stats.entities == self.entities, stats
        elapsed = end - start
        return {
            "elapsed_s": elapsed,
            "msgs_per_s": total / elapsed,
            "enqueue_s": enqueued - start,
            "drain_s": end - enqueued,
            "fast_path_entities": len(ref._target.fast),
        }


def _rounded(result: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 6) for k, v in result.items()}


def run(quick: bool = False) -> dict[str, Any]:
    """Run the scenario and return its record (``quick``: tiny counts, for smoke tests)."""
    entities = 100 if quick else 1_000
    n = 2_000 if quick else 100_000
    repeats = 2 if quick else 7

    async def main() -> tuple[list[dict[str, float]], ...]:
        async with ClusteredActorSystem(
            name="bench-sharded", host=LOCAL, port=0, node_id="solo"
        ) as system:
            await system.wait_for(1, timeout=30)
            runner = _Runner(system, entities)
            steady, cold, local, plain = await alternate(
                repeats,
                n,
                min(n, 2_000),
                partial(runner.once, warm=True),
                partial(runner.once, warm=False),
                local_tell_once,
                runner.plain,
            )
        return steady, cold, local, plain

    steady_runs, cold_runs, local_runs, plain_runs = trio.run(main)
    plain = best_of(plain_runs, key=lambda r: r["msgs_per_s"])
    steady, local, ratio, pairs = compare(steady_runs, local_runs, "msgs_per_s")
    cold, _, cold_ratio, _ = compare(cold_runs, local_runs, "msgs_per_s")
    return make_record(
        SCENARIO,
        ours={
            **_rounded(steady),
            "msgs_per_s_all_runs": [round(r["msgs_per_s"]) for r in steady_runs],
            "kind": f"steady state: {entities} entities already started, N/{entities} tells "
            "each through the ref spawn returned (RegionRouting fast path)",
            "cold": {
                **_rounded(cold),
                "msgs_per_s_all_runs": [round(r["msgs_per_s"]) for r in cold_runs],
                "kind": "fresh sharded type: the timed tells include each entity's first "
                "message (shard home lookup, entity start)",
                "ratio": round(cold_ratio, 4),
            },
            "plain_actors": {
                **_rounded(plain),
                "msgs_per_s_all_runs": [round(r["msgs_per_s"]) for r in plain_runs],
                "kind": f"unscored: the same tells round-robin to {entities} plain local actors",
                "ours_over_this": round(steady["msgs_per_s"] / plain["msgs_per_s"], 4),
            },
        },
        baseline={
            **_rounded(local),
            "msgs_per_s_all_runs": [round(r["msgs_per_s"]) for r in local_runs],
            "kind": "local_tell's measurement of ours: N tells to one plain local actor",
        },
        ratio=ratio,
        goal=f"ratio (steady sharded msgs/s / local_tell msgs/s) >= {GOAL}",
        meets_goal=ratio >= GOAL,
        ratio_pairs_median=round(pairs, 4),
        measured_phase="steady (first message per entity excluded); cold reported in ours.cold",
        entities=entities,
        num_shards=NUM_SHARDS,
        n=n,
        repeats=repeats,
        quick=quick,
    )


if __name__ == "__main__":
    emit(run(quick=quick_from_argv()))
