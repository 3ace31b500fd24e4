"""Scenario ``local_ask``: N sequential request/reply round trips to one local actor.

Ours: ``await system.ask(ref, lambda r: Ping(r), timeout=5.0)`` N times in a row against a
``Behaviors.receive`` actor that answers ``msg.reply_to.tell(Pong(msg.reply_to))``.

Baseline: raw Trio ping-pong over two unbuffered (``max_buffer_size=0``) memory channels and one
echo task: ``await requests.send(x); await replies.receive()`` N times in a row.

Each operation is timed with ``perf_counter_ns`` (same bookkeeping on both sides) for p50/p99;
ops/s is N over the wall time of the whole loop. Timed with the cyclic GC off, best of several
runs. ``ratio`` = ours ops/s / baseline ops/s (best run of each); goal ``ratio >= 0.8``.

Also reported, for reading the ratio (not part of the goal): the baseline loop with a
``trio.move_on_after`` around each round trip, since ``ask`` always runs under a timeout, and
``ratio_pairs_median``, the median of the per-round ratios.
"""

from __future__ import annotations

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
    now_ns,
    percentile,
    quick_from_argv,
)

from casty_trio import ActorContext, ActorRef, ActorSystem, Behavior, Behaviors

SCENARIO = "local_ask"
GOAL = 0.8


@attrs.frozen
class Pong:
    """The reply."""

    to: ActorRef[Any]


@attrs.frozen
class Ping:
    """The request, carrying the ask's one-shot reply ref."""

    reply_to: ActorRef[Pong]


def _summary(n: int, elapsed: float, latencies_ns: list[int]) -> dict[str, float]:
    return {
        "elapsed_s": elapsed,
        "ops_per_s": n / elapsed,
        "p50_us": percentile(latencies_ns, 50) / 1_000,
        "p99_us": percentile(latencies_ns, 99) / 1_000,
        "max_us": max(latencies_ns) / 1_000,
    }


async def _echo(ctx: ActorContext[Ping], msg: Ping) -> Behavior[Ping]:
    msg.reply_to.tell(Pong(msg.reply_to))
    return Behaviors.same()


async def _ours_once(n: int) -> dict[str, float]:
    latencies = [0] * n
    async with ActorSystem(name="bench-ask") as system:
        ref: ActorRef[Ping] = system.spawn(Behaviors.receive(_echo), "echo")
        await trio.testing.wait_all_tasks_blocked()
        ask = system.ask
        with gc_paused():
            start = now()
            for i in range(n):
                t0 = now_ns()
                reply: Pong = await ask(ref, lambda r: Ping(r), timeout=5.0)
                latencies[i] = now_ns() - t0
            end = now()
        assert type(reply) is Pong
    return _summary(n, end - start, latencies)


async def _baseline_once(n: int, *, with_timeout: bool = False) -> dict[str, float]:
    latencies = [0] * n
    req_send, req_recv = trio.open_memory_channel[Any](0)
    rep_send, rep_recv = trio.open_memory_channel[Any](0)

    async def echo() -> None:
        async for item in req_recv:
            await rep_send.send(item)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(echo)
        await trio.testing.wait_all_tasks_blocked()
        send, receive = req_send.send, rep_recv.receive
        msg = object()
        with gc_paused():
            start = now()
            if with_timeout:
                for i in range(n):
                    t0 = now_ns()
                    with trio.move_on_after(5.0):
                        await send(msg)
                        await receive()
                    latencies[i] = now_ns() - t0
            else:
                for i in range(n):
                    t0 = now_ns()
                    await send(msg)
                    await receive()
                    latencies[i] = now_ns() - t0
            end = now()
        nursery.cancel_scope.cancel()
    return _summary(n, end - start, latencies)


def _rounded(result: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 3) if k.endswith("_us") else round(v, 6) for k, v in result.items()}


def run(quick: bool = False) -> dict[str, Any]:
    """Run the scenario and return its record (``quick``: tiny counts, for smoke tests)."""
    n = 1_000 if quick else 20_000
    repeats = 2 if quick else 5

    ours_runs, base_runs, timeout_runs = trio.run(
        partial(
            alternate,
            repeats,
            n,
            min(n, 1_000),
            _ours_once,
            _baseline_once,
            partial(_baseline_once, with_timeout=True),
        )
    )
    ours, base, ratio, pairs = compare(ours_runs, base_runs, "ops_per_s")
    base_timeout = best_of(timeout_runs, key=lambda r: r["ops_per_s"])
    return make_record(
        SCENARIO,
        ours={
            **_rounded(ours),
            "ops_per_s_all_runs": [round(r["ops_per_s"]) for r in ours_runs],
        },
        baseline={
            **_rounded(base),
            "ops_per_s_all_runs": [round(r["ops_per_s"]) for r in base_runs],
            "kind": "trio memory channels (size 0) ping-pong with one echo task",
            "with_move_on_after": _rounded(base_timeout),
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
