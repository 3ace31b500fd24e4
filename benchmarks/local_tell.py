"""Scenario ``local_tell``: N fire-and-forget tells to one local actor.

Ours: one actor with a ``Behaviors.receive`` handler that counts and returns
``Behaviors.same()``; when the count reaches N it sets a ``trio.Event``. The clock runs from the
first ``tell`` to the moment the waiting task sees the event (last message processed).

Baseline: a raw Trio memory channel (``max_buffer_size=math.inf``). A consumer task drains with a
``receive_nowait()`` loop and parks in ``await receive()`` when the channel is empty; the producer
sends N items with ``send_nowait()``. The clock runs from the first send until the consumer has
taken the last item.

Both sides reuse one pre-built message object, enqueue everything before the receiver runs (tell
and send_nowait never yield), wait with the same Event, and are timed with the cyclic GC off.
``ratio`` = ours msg/s / baseline msg/s (best run of each); goal ``ratio >= 1.0``.

Also reported, for reading the ratio (not part of the goal): ``ratio_pairs_median``, the median
of the per-round ratios, and ``baseline.with_async_handler``, the baseline whose consumer also
awaits a trivial ``async def`` per item, as an actor does with its handler.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import Any

import attrs
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
)

from casty_trio import ActorContext, ActorSystem, Behavior, Behaviors

SCENARIO = "local_tell"
GOAL = 1.0


@attrs.frozen
class Tick:
    """The small message sent N times."""

    seq: int


_MSG = Tick(1)


async def _ours_once(n: int) -> dict[str, float]:
    done = trio.Event()
    count = 0

    async def handler(ctx: ActorContext[Tick], msg: Tick) -> Behavior[Tick]:
        nonlocal count
        count += 1
        if count == n:
            done.set()
        return Behaviors.same()

    async with ActorSystem(name="bench-tell") as system:
        ref = system.spawn(Behaviors.receive(handler), "sink")
        await trio.testing.wait_all_tasks_blocked()  # the actor is started and parked
        result = await _timed_burst(ref.tell, n, done)
    assert count == n
    return result


async def _timed_burst(put: Callable[[Tick], None], n: int, done: trio.Event) -> dict[str, float]:
    """Time ``n`` synchronous ``put(msg)`` calls and then the wait until ``done``: the same
    measurement for our ``tell`` and for the channel's ``send_nowait``."""
    msg = _MSG
    with gc_paused():
        start = now()
        for _ in range(n):
            put(msg)
        enqueued = now()
        await done.wait()
        end = now()
    elapsed = end - start
    return {
        "elapsed_s": elapsed,
        "msgs_per_s": n / elapsed,
        "enqueue_s": enqueued - start,
        "drain_s": end - enqueued,
    }


async def _noop(msg: Tick) -> None:
    return None


async def _baseline_once(n: int, *, async_handler: bool = False) -> dict[str, float]:
    done = trio.Event()
    send, receive = trio.open_memory_channel[Any](math.inf)
    consumed = 0

    async def consumer() -> None:
        nonlocal consumed
        count = 0
        receive_nowait = receive.receive_nowait
        while True:
            try:
                item = receive_nowait()
            except trio.WouldBlock:
                item = await receive.receive()
            if async_handler:
                await _noop(item)
            count += 1
            if count == n:
                consumed = count
                done.set()
                return

    async with trio.open_nursery() as nursery:
        nursery.start_soon(consumer)
        await trio.testing.wait_all_tasks_blocked()  # the consumer is parked in receive()
        result = await _timed_burst(send.send_nowait, n, done)
    assert consumed == n
    return result


def run(quick: bool = False) -> dict[str, Any]:
    """Run the scenario and return its record (``quick``: tiny counts, for smoke tests)."""
    n = 2_000 if quick else 200_000
    repeats = 2 if quick else 9

    ours_runs, base_runs, handler_runs = trio.run(
        partial(
            alternate,
            repeats,
            n,
            min(n, 2_000),
            _ours_once,
            _baseline_once,
            partial(_baseline_once, async_handler=True),
        )
    )
    ours, base, ratio, pairs = compare(ours_runs, base_runs, "msgs_per_s")
    with_handler = best_of(handler_runs, key=lambda r: r["msgs_per_s"])
    return make_record(
        SCENARIO,
        ours={
            **{k: round(v, 6) for k, v in ours.items()},
            "msgs_per_s_all_runs": [round(r["msgs_per_s"]) for r in ours_runs],
        },
        baseline={
            **{k: round(v, 6) for k, v in base.items()},
            "msgs_per_s_all_runs": [round(r["msgs_per_s"]) for r in base_runs],
            "kind": "trio memory channel (inf): send_nowait x N, receive_nowait drain",
            "with_async_handler": {
                "msgs_per_s": round(with_handler["msgs_per_s"], 6),
                "drain_s": round(with_handler["drain_s"], 6),
                "ours_over_this": round(ours["msgs_per_s"] / with_handler["msgs_per_s"], 4),
            },
        },
        ratio=ratio,
        goal=f"ratio >= {GOAL}",
        meets_goal=ratio >= GOAL,
        ratio_pairs_median=round(pairs, 4),
        n=n,
        repeats=repeats,
        quick=quick,
    )


if __name__ == "__main__":
    emit(run(quick=quick_from_argv()))
