"""Scenario ``cluster_formation``: how soon 2 and 3 node processes on loopback see everyone up.

The measuring process starts the seed node process (this script with ``--node``; see
``_cluster.py``), waits until it is listening, then starts the other nodes at once. Each node is
a :class:`~casty_trio.ClusteredActorSystem` with the default configuration, joining through the
seed. Ours: from the moment the last node enters its system until every node sees all ``n``
members ``up`` (``wait_for(n)`` returns), on the processes' shared wall clock. The record also
gives the time from spawning the joining processes (interpreter start and imports included).

Baseline, same run: the same processes with a bare :class:`~casty_trio.remote.RemoteActorSystem`
each, every joiner asking the seed's echo actor once: the cost of connecting (TCP, WebSocket
upgrade, hello) and one round trip, with no membership protocol.

``ratio`` = ours / baseline for 2 nodes (the best of the repeats on each side); goal: 2 nodes
formed in at most 0.3 s (Casty: 1.0 s).
"""

from __future__ import annotations

import time
from typing import Any

import trio
from _cluster import node_main, open_nodes, wait_for_event
from _common import emit, make_record, percentile, quick_from_argv

SCENARIO = "cluster_formation"
GOAL_S = 0.3


async def _trial(mode: str, n: int) -> dict[str, float]:
    async with open_nodes(__file__) as start:
        spec = {"mode": mode, "port": 0, "n": n}
        seed = await start({**spec, "node_id": "node-0", "seed": 0})
        await wait_for_event([seed], "started")
        seed_port = seed.first("started")["port"]  # type: ignore[index]
        others = [
            await start({**spec, "node_id": f"node-{i}", "seed": seed_port}) for i in range(1, n)
        ]
        nodes = [seed, *others]
        await wait_for_event(nodes, "all_up")
    done = max(node.time_of("all_up") for node in nodes)
    last_start = max(node.time_of("started") for node in others)
    spawned = min(node.spawned for node in others)
    return {"from_last_start_s": done - last_start, "from_spawn_s": done - spawned}


def _summary(runs: list[dict[str, float]]) -> dict[str, Any]:
    starts = [r["from_last_start_s"] for r in runs]
    spawns = [r["from_spawn_s"] for r in runs]
    return {
        "best_s": round(min(starts), 4),
        "median_s": round(percentile(starts, 50), 4),
        "all_runs_s": [round(s, 4) for s in starts],
        "from_spawn_best_s": round(min(spawns), 4),
        "from_spawn_median_s": round(percentile(spawns, 50), 4),
    }


def run(quick: bool = False) -> dict[str, Any]:
    """Run the scenario and return its record (``quick``: one run per size)."""
    repeats = 1 if quick else 5
    sizes = (2, 3)
    ours: dict[int, list[dict[str, float]]] = {n: [] for n in sizes}
    base: dict[int, list[dict[str, float]]] = {n: [] for n in sizes}

    async def main() -> None:
        for _ in range(repeats):
            for n in sizes:  # alternate the sides, so drifts of the machine hit both alike
                ours[n].append(await _trial("cluster", n))
                base[n].append(await _trial("remote", n))

    started = time.perf_counter()
    trio.run(main)
    took = time.perf_counter() - started
    summaries = {f"nodes_{n}": _summary(ours[n]) for n in sizes}
    baselines = {f"nodes_{n}": _summary(base[n]) for n in sizes}
    two = summaries["nodes_2"]["best_s"]
    ratio = two / max(baselines["nodes_2"]["best_s"], 1e-6)
    return make_record(
        SCENARIO,
        ours={
            **summaries,
            "kind": "ClusteredActorSystem, default config: last node entered -> all see n up",
        },
        baseline={
            **baselines,
            "kind": "RemoteActorSystem: last node entered -> every joiner got one ask reply",
        },
        ratio=ratio,
        goal=f"2 nodes formed (best run) <= {GOAL_S} s (Casty: 1.0 s)",
        meets_goal=two <= GOAL_S,
        repeats=repeats,
        seconds=round(took, 1),
        quick=quick,
    )


if __name__ == "__main__":
    import sys

    if "--node" in sys.argv[1:]:
        node_main(sys.argv)
    else:
        emit(run(quick=quick_from_argv()))
