"""Scenario ``failure_detection``: from SIGKILL of one of 3 node processes to ``MemberDowned``.

The measuring process starts 3 node processes on loopback (this script with ``--node``; see
``_cluster.py``): a :class:`~casty_trio.ClusteredActorSystem` each, the seed first. Once all see
3 members up, it sends SIGKILL to the last one (not the leader) and waits until both survivors
print ``MemberDowned`` for it. Ours: seconds from the kill to the later of the two, on the
processes' shared wall clock, with the default configuration (heartbeat 0.5 s, threshold 8,
first estimate 1 s, ``stable_after`` 5 s) and with the fast profile of ``docs/configuration.md``
(heartbeat 0.1 s, threshold 4, min std 0.05 s, first estimate 0.1 s, ``stable_after`` 0.5 s).

A crash is noticed by heartbeats alone, by design: a closed connection says nothing about a
node behind a partition. Baseline, same run, for scale: the time until the measuring process
reads EOF on a plain TCP connection to the killed process (the kernel closes a killed
process's sockets at once): the floor of any detection on one machine.

``ratio`` = ours (fast profile, best run) / baseline; goal: the fast profile downs the killed
node on every survivor within 2 s (the default profile is reported, not scored). Quick mode runs
the fast profile once and skips the default (it takes about 8 s).
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import trio
from _cluster import FAST_PROFILE, LOCAL, node_main, open_nodes, wait_for_event
from _common import emit, make_record, percentile, quick_from_argv

SCENARIO = "failure_detection"
GOAL_S = 2.0
_BOUND = 60.0


async def _trial(settings: dict[str, float]) -> dict[str, float]:
    async with open_nodes(__file__) as start:
        spec: dict[str, Any] = {"mode": "cluster", "port": 0, "n": 3, "settings": settings}
        seed = await start({**spec, "node_id": "node-0", "seed": 0})
        await wait_for_event([seed], "started")
        seed_port = seed.first("started")["port"]  # type: ignore[index]
        others = [await start({**spec, "node_id": f"node-{i}", "seed": seed_port}) for i in (1, 2)]
        nodes = [seed, *others]
        await wait_for_event(nodes, "all_up")
        await trio.sleep(1.0)  # let the detectors collect a few heartbeat intervals
        victim, survivors = nodes[2], nodes[:2]
        raw = await trio.open_tcp_stream(LOCAL, victim.first("started")["raw_port"])  # type: ignore[index]
        killed = time.time()
        victim.process.kill()
        # EOF, or a reset: the kernel closed the socket either way
        with trio.fail_after(_BOUND), contextlib.suppress(trio.BrokenResourceError):
            assert await raw.receive_some(1) == b""
        eof = time.time()
        await raw.aclose()
        with trio.fail_after(_BOUND):
            while not all(
                any(x.get("event") == "downed" and x["node_id"] == victim.node_id for x in n.lines)
                for n in survivors
            ):
                await trio.sleep(0.001)
    downed = [
        next(x["t"] for x in n.lines if x.get("event") == "downed" and x["node_id"] == "node-2")
        for n in survivors
    ]
    return {
        "detection_s": max(downed) - killed,
        "first_s": min(downed) - killed,
        "eof_s": eof - killed,
    }


def _summary(runs: list[dict[str, float]]) -> dict[str, Any]:
    values = [r["detection_s"] for r in runs]
    return {
        "best_s": round(min(values), 4),
        "median_s": round(percentile(values, 50), 4),
        "all_runs_s": [round(v, 4) for v in values],
        "first_survivor_best_s": round(min(r["first_s"] for r in runs), 4),
    }


def run(quick: bool = False) -> dict[str, Any]:
    """Run the scenario and return its record (``quick``: the fast profile, once)."""
    fast_repeats = 1 if quick else 3
    default_repeats = 0 if quick else 1
    fast: list[dict[str, float]] = []
    default: list[dict[str, float]] = []

    async def main() -> None:
        for _ in range(fast_repeats):
            fast.append(await _trial(FAST_PROFILE))
        for _ in range(default_repeats):
            default.append(await _trial({}))

    started = time.perf_counter()
    trio.run(main)
    took = time.perf_counter() - started
    eofs = [r["eof_s"] for r in fast + default]
    ours_fast = _summary(fast)
    ratio = ours_fast["best_s"] / max(min(eofs), 1e-6)
    return make_record(
        SCENARIO,
        ours={
            "fast_profile": {**ours_fast, "settings": FAST_PROFILE},
            "default_profile": _summary(default) if default else None,
            "kind": "SIGKILL of 1 of 3 processes -> MemberDowned on both survivors",
        },
        baseline={
            "best_s": round(min(eofs), 6),
            "median_s": round(percentile(eofs, 50), 6),
            "kind": "EOF on a plain TCP connection to the killed process (the floor)",
        },
        ratio=ratio,
        goal=f"fast profile: MemberDowned on every survivor <= {GOAL_S} s (default reported)",
        meets_goal=ours_fast["best_s"] <= GOAL_S,
        repeats={"fast": fast_repeats, "default": default_repeats},
        seconds=round(took, 1),
        quick=quick,
    )


if __name__ == "__main__":
    import sys

    if "--node" in sys.argv[1:]:
        node_main(sys.argv)
    else:
        emit(run(quick=quick_from_argv()))
