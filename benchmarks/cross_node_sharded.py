"""Scenario ``cross_node_sharded``: tells and asks from process A to sharded entities that live
in process B (a 2-node cluster on loopback), against the raw trio-websocket baselines of
``remote_tell`` and ``remote_ask``.

Process A (this one) starts process B (this script with ``--serve``). B runs a
:class:`~casty_trio.ClusteredActorSystem` on 127.0.0.1 with the role ``host``, forms a cluster
and spawns the sharded type ``counters`` (``role="host"``), plus the raw trio-websocket servers
of ``remote_tell`` and ``remote_ask``. A joins B's cluster (without the role) and spawns the same
type: with ``role="host"`` only B hosts shards (and runs the coordinator), so every entity is
owned by the other process; A's region only routes. A checks that after the warm-up (B's count
of hosted shards is not visible from A, but A hosts none and every entity answered with B's
path).

Tell (``ratio``, the goal): A tells ``ShardEnvelope(id, Tick(i))`` N times, round-robin over E
entity ids, through the ref ``spawn`` returned, with a checkpoint every 100 tells (the paced
producer of ``remote_tell``); then it tells ``Flush(collector)`` to every entity, and each
answers ``Done(count)`` to a collector actor in A (a Flush travels the same path as the ticks
before it, so it arrives after them). The clock runs from the first tell until the collector
has every answer and the counts add up to N. Entities exist before the clock starts (one untimed
round first). Baseline: ``remote_tell``'s raw trio-websocket one-way exchange (100
msgspec-encoded ticks per frame). ``ratio`` = ours msgs/s / baseline msgs/s, goal ``>= 0.4``
(the ``remote_tell`` goal).

Ask (``ask_ratio``, second goal): ``system.ask(ref, lambda r: ShardEnvelope(id, Ping(i, r)))``
N times in a row, round-robin over the ids; against ``remote_ask``'s raw trio-websocket round
trip. ``ask_ratio`` = ours p50 / raw p50, goal ``<= 1.2`` (the ``remote_ask`` goal).

``meets_goal`` is true only when both goals are met. Best run of each side (alternating runs).

Reported, not a goal: ``floor`` (see ``_sharded_floor``), the least a sharded receiver can do
under the actor model between the same processes, over casty_trio's own WebSocket transport
(one task per entity, one ``await handler(message)`` per message, nothing else);
``floor_ratio`` = floor msgs/s over the raw one-way baseline, ``of_floor`` = ours over the
floor.
"""

from __future__ import annotations

from typing import Any

import trio
import trio.testing
from _common import compare, emit, gc_paused, make_record, now, now_ns, quick_from_argv
from _remote import (
    LOCAL,
    Done,
    Flush,
    Ping,
    Pong,
    Tick,
    peer_process,
    round_floats,
    serve_until_stdin_closes,
)
from _sharded_floor import floor_once, floor_transport, serve_floor
from remote_ask import _serve_ws as serve_raw_echo
from remote_ask import _summary
from remote_ask import _ws_once as raw_ask_once
from remote_tell import _baseline_once as raw_tell_once
from remote_tell import _serve_raw as serve_raw_sink

from casty_trio import (
    ActorContext,
    ActorRef,
    Behavior,
    Behaviors,
    ClusteredActorSystem,
    NodeAddress,
    ShardEnvelope,
)
from casty_trio.remote import RemoteSettings

SCENARIO = "cross_node_sharded"
TELL_GOAL = 0.4
ASK_GOAL = 1.2
SYSTEM = "bench-cross-node"
TYPE = "counters"
ROLE = "host"
NUM_SHARDS = 100
PER_CHECKPOINT = 100

# ---------------------------------------------------------------------------- entities


def _counter(entity_id: str) -> Behavior[Any]:
    count = 0

    async def receive(ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
        nonlocal count
        if type(msg) is Tick:
            count += 1
        elif type(msg) is Ping:
            assert msg.reply_to is not None
            msg.reply_to.tell(Pong(msg.n))
        elif type(msg) is Flush:
            msg.reply_to.tell(Done(count))
            count = 0
        return Behaviors.same()

    return Behaviors.receive(receive)


def _spec() -> Any:
    return Behaviors.sharded(_counter, num_shards=NUM_SHARDS, role=ROLE)


# ---------------------------------------------------------------------------- process B


async def _serve_casty(
    stop: trio.Event, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
) -> None:
    async with ClusteredActorSystem(
        name=SYSTEM,
        host=LOCAL,
        port=0,
        node_id="b",
        roles=frozenset({ROLE}),
        settings=RemoteSettings(outbox_capacity=1_000_000),
    ) as system:
        await system.wait_for(1)
        system.spawn(_spec(), TYPE)
        task_status.started(system.self_node.port)
        await stop.wait()


def serve() -> None:
    """Process B: serve until stdin closes."""
    trio.run(
        serve_until_stdin_closes,
        {
            "casty": _serve_casty,
            "ws_tell": serve_raw_sink,
            "ws_ask": serve_raw_echo,
            "floor": serve_floor,
        },
    )


# ---------------------------------------------------------------------------- process A


class _Collector:
    """A plain actor in A gathering the entities' ``Done`` answers."""

    def __init__(self, system: ClusteredActorSystem, name: str) -> None:
        self.expected = 0
        self.answers = 0
        self.total = 0
        self.done = trio.Event()

        async def receive(ctx: ActorContext[Done], msg: Done) -> Behavior[Done]:
            self.answers += 1
            self.total += msg.count
            if self.answers == self.expected:
                self.done.set()
            return Behaviors.same()

        self.ref: ActorRef[Done] = system.spawn(Behaviors.receive(receive), name)

    def reset(self, expected: int) -> None:
        self.expected = expected
        self.answers = 0
        self.total = 0
        self.done = trio.Event()


async def _tell_once(
    ref: ActorRef[Any], collector: _Collector, ids: list[str], n: int
) -> dict[str, float]:
    collector.reset(len(ids))
    envelopes = [ShardEnvelope(ids[i % len(ids)], Tick(i)) for i in range(n)]
    flushes = [ShardEnvelope(eid, Flush(collector.ref)) for eid in ids]
    tell = ref.tell
    checkpoint = trio.lowlevel.checkpoint
    with gc_paused():
        start = now()
        for first in range(0, n, PER_CHECKPOINT):
            for envelope in envelopes[first : first + PER_CHECKPOINT]:
                tell(envelope)
            await checkpoint()
        for envelope in flushes:
            tell(envelope)
        enqueued = now()
        with trio.fail_after(120):
            await collector.done.wait()
        end = now()
    assert collector.total == n, f"entities counted {collector.total} of {n} ticks"
    elapsed = end - start
    return {
        "elapsed_s": elapsed,
        "msgs_per_s": n / elapsed,
        "tell_loop_s": enqueued - start,
    }


async def _ask_once(
    system: ClusteredActorSystem, ref: ActorRef[Any], ids: list[str], n: int
) -> dict[str, float]:
    latencies = [0] * n
    ask = system.ask
    with gc_paused():
        start = now()
        for i in range(n):
            eid = ids[i % len(ids)]
            t0 = now_ns()
            reply = await ask(
                ref, lambda r, i=i, eid=eid: ShardEnvelope(eid, Ping(i, r)), timeout=5
            )
            latencies[i] = now_ns() - t0
        end = now()
    assert reply == Pong(n - 1)
    return _summary(n, end - start, latencies)


def run(quick: bool = False) -> dict[str, Any]:
    """Run the scenario and return its record (``quick``: tiny counts, for smoke tests)."""
    entities = 100 if quick else 1_000
    n_tell = 2_000 if quick else 100_000
    n_ask = 200 if quick else 5_000
    repeats = 1 if quick else 5
    ids = [f"entity-{k}" for k in range(entities)]

    tell_runs: list[dict[str, Any]] = []
    raw_tell_runs: list[dict[str, Any]] = []
    ask_runs: list[dict[str, float]] = []
    raw_ask_runs: list[dict[str, float]] = []
    floor_runs: list[dict[str, float]] = []
    facts: dict[str, Any] = {}

    async def main() -> None:
        import trio_websocket

        async with peer_process(__file__) as ports:
            b_node = NodeAddress(LOCAL, ports["casty"])
            async with (
                ClusteredActorSystem(
                    name=SYSTEM,
                    host=LOCAL,
                    port=0,
                    node_id="a",
                    seed_nodes=[b_node],
                    settings=RemoteSettings(outbox_capacity=1_000_000),
                ) as system,
                trio_websocket.open_websocket(LOCAL, ports["ws_tell"], "/", use_ssl=False) as wst,
                trio_websocket.open_websocket(LOCAL, ports["ws_ask"], "/", use_ssl=False) as wsa,
                floor_transport().open_connection(NodeAddress(LOCAL, ports["floor"])) as wsf,
            ):
                started = now()
                await system.wait_for(2, timeout=30)
                facts["join_s"] = round(now() - started, 3)
                ref = system.spawn(_spec(), TYPE)
                collector = _Collector(system, "collector")
                # warm-up: every entity starts in B, every shard home is known in A
                started = now()
                await _tell_once(ref, collector, ids, len(ids))
                facts["first_round_s"] = round(now() - started, 3)
                stats = system.region_statistics(TYPE)
                assert not stats.shards and stats.entities == 0, stats
                assert stats.coordinator == b_node, stats
                await _ask_once(system, ref, ids, min(n_ask, 200))
                await raw_tell_once(wst, min(n_tell, 2_000))
                await raw_ask_once(wsa, min(n_ask, 200))
                await floor_once(wsf, ids, NUM_SHARDS, len(ids))  # its entities start
                await trio.testing.wait_all_tasks_blocked()
                for _ in range(repeats):
                    tell_runs.append(await _tell_once(ref, collector, ids, n_tell))
                    raw_tell_runs.append(await raw_tell_once(wst, n_tell))
                    floor_runs.append(await floor_once(wsf, ids, NUM_SHARDS, n_tell))
                    ask_runs.append(await _ask_once(system, ref, ids, n_ask))
                    raw_ask_runs.append(await raw_ask_once(wsa, n_ask))
                facts["a_hosted_shards"] = len(system.region_statistics(TYPE).shards)

    trio.run(main)
    tell, raw_tell, ratio, pairs = compare(tell_runs, raw_tell_runs, "msgs_per_s")
    ask, raw_ask, ask_ratio, ask_pairs = compare(ask_runs, raw_ask_runs, "p50_us", highest=False)
    floor, _, floor_ratio, _ = compare(floor_runs, raw_tell_runs, "msgs_per_s")
    return make_record(
        SCENARIO,
        ours={
            "tell": {
                **round_floats(tell),
                "msgs_per_s_all_runs": [round(r["msgs_per_s"]) for r in tell_runs],
                "kind": f"ShardEnvelope tells from A to {entities} entities hosted in B, "
                f"a checkpoint every {PER_CHECKPOINT} tells, until every entity reported",
            },
            "ask": {
                **round_floats(ask),
                "p50_us_all_runs": [round(r["p50_us"], 1) for r in ask_runs],
                "kind": "system.ask with ShardEnvelope from A to entities hosted in B",
            },
        },
        baseline={
            "tell": {
                **round_floats(raw_tell),
                "msgs_per_s_all_runs": [round(r["msgs_per_s"]) for r in raw_tell_runs],
                "kind": "remote_tell's raw trio-websocket one-way, 100 ticks per frame",
            },
            "ask": {
                **round_floats(raw_ask),
                "p50_us_all_runs": [round(r["p50_us"], 1) for r in raw_ask_runs],
                "kind": "remote_ask's raw trio-websocket + msgspec request/response",
            },
            "floor": {
                **round_floats(floor),
                "msgs_per_s_all_runs": [round(r["msgs_per_s"]) for r in floor_runs],
                "kind": "the model's floor over casty_trio's WebSocket transport: per-tell "
                "encoding, one task per entity, one await per message, nothing else "
                "(see _sharded_floor)",
            },
        },
        ratio=ratio,
        goal=f"ratio (tell msgs/s over raw one-way) >= {TELL_GOAL} and "
        f"ask_ratio (ask p50 over raw round trip p50) <= {ASK_GOAL}",
        meets_goal=ratio >= TELL_GOAL and ask_ratio <= ASK_GOAL,
        ratio_pairs_median=round(pairs, 4),
        ask_ratio=round(ask_ratio, 4),
        floor_ratio=round(floor_ratio, 4),
        of_floor=round(tell["msgs_per_s"] / floor["msgs_per_s"], 4),
        ask_ratio_pairs_median=round(ask_pairs, 4),
        tell_meets_goal=ratio >= TELL_GOAL,
        ask_meets_goal=ask_ratio <= ASK_GOAL,
        measured_phase="steady (every entity started and every shard home known first)",
        placement=f"role {ROLE!r}: only process B hosts shards; A routes",
        entities=entities,
        num_shards=NUM_SHARDS,
        n=n_tell,
        n_ask=n_ask,
        repeats=repeats,
        quick=quick,
        **facts,
    )


if __name__ == "__main__":
    import sys

    if "--serve" in sys.argv[1:]:
        serve()
    else:
        emit(run(quick=quick_from_argv()))
