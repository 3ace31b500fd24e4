"""Scenario ``many_actors``: spawn 10k idle actors, then 10 tells to each (100k messages).

Spawn (ours): ``system.spawn(Behaviors.receive(counter), name)`` 10k times (root actors; names
are built before the clock starts). Also reported: the same 10k spawned as children by one
``Behaviors.setup`` parent (``ctx.spawn`` in the setup, which starts children at once).
Spawn (baseline): ``nursery.start_soon(parker)`` 10k times, each task parking on a shared
``trio.Event``.

"Started" means, on both sides, that ``trio.testing.wait_all_tasks_blocked()`` returned: every
new task has run up to its first park. An actor whose behavior is a plain ``Behaviors.receive``
is ready as soon as ``spawn`` returns and gets its task only with its first message, so for
these root actors no task runs at all (the children spawned by a setup parent do the same). The
clock runs from the first spawn to that moment. ``spawn_ratio`` = our spawn time / baseline
spawn time; goal ``<= 1.5``. The message phase below includes each actor's first task start.

Messages (ours): 10 tells to each actor, round-robin (``for _ in range(10): for ref in refs``),
timed until the handlers have counted all 100k. Also reported as an unscored comparison: the
same pattern with one unbounded memory channel per baseline task, drained like the
``local_tell`` baseline (``receive_nowait()`` loop, parked in ``await receive()`` when empty).

Memory: RSS (``VmRSS``) before and after spawning the 10k (and waiting until all are parked),
``gc.collect()`` before each reading, divided by the count: ``bytes_per_actor`` (idle, never
messaged: no task yet). Then each actor handles one message and goes idle again:
``bytes_per_actor_after_messages`` (idle with its parked task and its own frames; reported,
not scored; compare with the baseline's ``bytes_per_task``). Measured in fresh subprocesses (one
for ours, one for the baseline) so memory freed by earlier runs does not hide the growth. Goal:
``bytes_per_actor <= 2048``. ``tracemalloc`` figures from the same subprocesses are included as
a cross-check (Python allocations only; RSS also counts allocator slack). ``--quick`` measures
in-process instead (faster, but RSS may then understate: freed memory gets reused).

Overall goal: ``spawn_ratio <= 1.5 and bytes_per_actor <= 2048``; ``ratio`` = ``spawn_ratio``
(best spawn time of each side); ``ratio_pairs_median`` is the median of the per-round ratios.
"""

from __future__ import annotations

import gc
import json
import math
import subprocess
import sys
import tracemalloc
from functools import partial
from typing import Any

import trio
import trio.testing
from _common import (
    alternate,
    best_of,
    compare,
    emit,
    gc_paused,
    make_record,
    now,
    quick_from_argv,
    rss_bytes,
)

from casty_trio import ActorContext, ActorRef, ActorSystem, Behavior, Behaviors

SCENARIO = "many_actors"
SPAWN_GOAL = 1.5
BYTES_GOAL = 2048
TELLS_PER_ACTOR = 10


class _Counter:
    """Shared tally: each actor handler bumps it; the last message sets ``done``."""

    __slots__ = ("count", "done", "target")

    def __init__(self, target: int) -> None:
        self.count = 0
        self.target = target
        self.done = trio.Event()


def _counter_behavior(tally: _Counter) -> Behavior[int]:
    async def counter(ctx: ActorContext[int], msg: int) -> Behavior[int]:
        tally.count += 1
        if tally.count == tally.target:
            tally.done.set()
        return Behaviors.same()

    return Behaviors.receive(counter)


async def _ours_once(n: int) -> dict[str, float]:
    names = [f"a{i}" for i in range(n)]
    tally = _Counter(n * TELLS_PER_ACTOR)
    behavior = _counter_behavior(tally)
    async with ActorSystem(name="bench-many") as system:
        spawn = system.spawn
        with gc_paused():
            start = now()
            refs = [spawn(behavior, name) for name in names]
            await trio.testing.wait_all_tasks_blocked()
            spawned = now()
        with gc_paused():
            start_msgs = now()
            for i in range(TELLS_PER_ACTOR):
                for ref in refs:
                    ref.tell(i)
            await tally.done.wait()
            end_msgs = now()
        teardown_start = now()
    teardown = now() - teardown_start
    spawn_s = spawned - start
    msgs_s = end_msgs - start_msgs
    return {
        "spawn_s": spawn_s,
        "spawns_per_s": n / spawn_s,
        "msgs_s": msgs_s,
        "msgs_per_s": n * TELLS_PER_ACTOR / msgs_s,
        "shutdown_s": teardown,
    }


async def _ours_children_once(n: int) -> dict[str, float]:
    names = [f"c{i}" for i in range(n)]
    behavior = _counter_behavior(_Counter(n))

    async def setup(ctx: ActorContext[int]) -> Behavior[int]:
        for name in names:
            ctx.spawn(behavior, name)
        return Behaviors.ignore()

    async with ActorSystem(name="bench-children") as system:
        with gc_paused():
            start = now()
            system.spawn(Behaviors.setup(setup), "parent")
            await trio.testing.wait_all_tasks_blocked()
            spawn_s = now() - start
    return {"spawn_s": spawn_s, "spawns_per_s": n / spawn_s}


async def _baseline_once(n: int) -> dict[str, float]:
    release = trio.Event()

    async def parker() -> None:
        await release.wait()

    async with trio.open_nursery() as nursery:
        start_soon = nursery.start_soon
        with gc_paused():
            start = now()
            for _ in range(n):
                start_soon(parker)
            await trio.testing.wait_all_tasks_blocked()
            spawned = now()
        release.set()
    spawn_s = spawned - start

    # unscored comparison for the message phase: one channel + one draining task per "actor"
    tally = _Counter(n * TELLS_PER_ACTOR)

    async def drainer(receive: trio.MemoryReceiveChannel[int]) -> None:
        receive_nowait = receive.receive_nowait
        while True:
            try:
                receive_nowait()
            except trio.WouldBlock:
                await receive.receive()
            tally.count += 1
            if tally.count == tally.target:
                tally.done.set()

    async with trio.open_nursery() as nursery:
        senders = []
        for _ in range(n):
            send, receive = trio.open_memory_channel[int](math.inf)
            senders.append(send)
            nursery.start_soon(drainer, receive)
        await trio.testing.wait_all_tasks_blocked()
        with gc_paused():
            start_msgs = now()
            for i in range(TELLS_PER_ACTOR):
                for send in senders:
                    send.send_nowait(i)
            await tally.done.wait()
            msgs_s = now() - start_msgs
        nursery.cancel_scope.cancel()
    return {
        "spawn_s": spawn_s,
        "spawns_per_s": n / spawn_s,
        "channel_msgs_per_s": n * TELLS_PER_ACTOR / msgs_s,
    }


# ---------------------------------------------------------------------- memory (subprocess)


def _measure_memory(which: str, n: int) -> dict[str, float]:
    """In this (fresh) process: RSS and tracemalloc growth for ``n`` idle actors or tasks."""

    async def main() -> dict[str, float]:
        async def populate() -> tuple[Any, Any]:
            """Spawn n actors or tasks and wait until parked; return things to keep alive."""
            if which == "ours":
                behavior = _counter_behavior(_Counter(1))
                refs: list[ActorRef[int]] = [system.spawn(behavior, f"a{i}") for i in range(n)]
                await trio.testing.wait_all_tasks_blocked()
                return refs, None
            release = trio.Event()

            async def parker() -> None:
                await release.wait()

            for _ in range(n):
                nursery.start_soon(parker)
            await trio.testing.wait_all_tasks_blocked()
            return None, release

        # warm both code paths a little, so first-use caches are not counted per actor
        async with ActorSystem(name="warm") as warm:
            for i in range(50):
                warm.spawn(Behaviors.ignore(), f"w{i}")
            await trio.testing.wait_all_tasks_blocked()

        async with ActorSystem(name="bench-mem") as system, trio.open_nursery() as nursery:
            gc.collect()
            rss_before = rss_bytes()
            kept = await populate()
            gc.collect()
            rss_after = rss_bytes()
            if which == "ours":
                # The same actors once each has handled a message and gone idle again: a
                # never-messaged plain actor holds no task yet, a worked one keeps its task.
                for ref in kept[0]:
                    ref.tell(1)
            await trio.testing.wait_all_tasks_blocked()
            gc.collect()
            rss_after_work = rss_bytes()
            del kept
            nursery.cancel_scope.cancel()

        async with ActorSystem(name="bench-mem2") as system, trio.open_nursery() as nursery:
            gc.collect()
            tracemalloc.start()
            traced_before = tracemalloc.get_traced_memory()[0]
            kept = await populate()
            gc.collect()
            traced_after = tracemalloc.get_traced_memory()[0]
            tracemalloc.stop()
            del kept
            nursery.cancel_scope.cancel()

        return {
            "count": n,
            "rss_before": rss_before,
            "rss_after": rss_after,
            "bytes_per_actor": (rss_after - rss_before) / n,
            "bytes_per_actor_after_messages": (rss_after_work - rss_before) / n,
            "traced_bytes_per_actor": (traced_after - traced_before) / n,
        }

    return trio.run(main)


def _memory_in_subprocess(which: str, n: int) -> dict[str, float]:
    proc = subprocess.run(
        [sys.executable, __file__, "--memory", which, str(n)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"memory subprocess ({which}) failed:\n{proc.stderr}")
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


# ---------------------------------------------------------------------- scenario


def run(quick: bool = False) -> dict[str, Any]:
    """Run the scenario and return its record (``quick``: tiny counts, for smoke tests)."""
    n = 500 if quick else 10_000
    repeats = 1 if quick else 5

    ours_runs, base_runs, child_runs = trio.run(
        partial(alternate, repeats, n, min(n, 500), _ours_once, _baseline_once, _ours_children_once)
    )
    if quick:
        mem_ours, mem_base = _measure_memory("ours", n), _measure_memory("baseline", n)
        memory_method = "VmRSS delta after gc.collect(), in-process (quick: may understate)"
    else:
        mem_ours = _memory_in_subprocess("ours", n)
        mem_base = _memory_in_subprocess("baseline", n)
        memory_method = "VmRSS delta after gc.collect(), fresh subprocess per side"

    ours_spawn, base_spawn, spawn_ratio, pairs = compare(
        ours_runs, base_runs, "spawn_s", highest=False
    )
    ours_msgs = best_of(ours_runs, key=lambda r: r["msgs_per_s"])
    child = best_of(child_runs, key=lambda r: r["spawn_s"], highest=False)
    base_msgs = best_of(base_runs, key=lambda r: r["channel_msgs_per_s"])
    bytes_per_actor = mem_ours["bytes_per_actor"]
    meets = spawn_ratio <= SPAWN_GOAL and bytes_per_actor <= BYTES_GOAL
    return make_record(
        SCENARIO,
        ours={
            "spawn_s": round(ours_spawn["spawn_s"], 6),
            "spawns_per_s": round(ours_spawn["spawns_per_s"]),
            "spawn_s_all_runs": [round(r["spawn_s"], 6) for r in ours_runs],
            "child_spawn_s": round(child["spawn_s"], 6),
            "child_spawn_ratio": round(child["spawn_s"] / base_spawn["spawn_s"], 4),
            "msgs_per_s": round(ours_msgs["msgs_per_s"]),
            "msgs_per_s_all_runs": [round(r["msgs_per_s"]) for r in ours_runs],
            "shutdown_s": round(ours_spawn["shutdown_s"], 6),
            "bytes_per_actor": round(bytes_per_actor, 1),
            "bytes_per_actor_after_messages": round(mem_ours["bytes_per_actor_after_messages"], 1),
            "traced_bytes_per_actor": round(mem_ours["traced_bytes_per_actor"], 1),
            "rss_before": mem_ours["rss_before"],
            "rss_after": mem_ours["rss_after"],
        },
        baseline={
            "kind": "bare trio tasks parked on a trio.Event in one nursery",
            "spawn_s": round(base_spawn["spawn_s"], 6),
            "spawns_per_s": round(base_spawn["spawns_per_s"]),
            "spawn_s_all_runs": [round(r["spawn_s"], 6) for r in base_runs],
            "channel_msgs_per_s": round(base_msgs["channel_msgs_per_s"]),
            "bytes_per_task": round(mem_base["bytes_per_actor"], 1),
            "traced_bytes_per_task": round(mem_base["traced_bytes_per_actor"], 1),
        },
        ratio=spawn_ratio,
        goal=f"spawn_ratio <= {SPAWN_GOAL} and bytes_per_actor <= {BYTES_GOAL}",
        meets_goal=meets,
        spawn_ratio=round(spawn_ratio, 4),
        ratio_pairs_median=round(pairs, 4),
        bytes_per_actor=round(bytes_per_actor, 1),
        bytes_per_actor_after_messages=round(mem_ours["bytes_per_actor_after_messages"], 1),
        msgs_per_s=round(ours_msgs["msgs_per_s"]),
        started_means="trio.testing.wait_all_tasks_blocked() returned (every task parked)",
        memory_method=memory_method,
        n=n,
        tells_per_actor=TELLS_PER_ACTOR,
        repeats=repeats,
        quick=quick,
    )


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--memory":
        print(json.dumps(_measure_memory(sys.argv[2], int(sys.argv[3]))), flush=True)
    else:
        emit(run(quick=quick_from_argv()))
