"""Scenario ``remote_tell``: N one-way tells from process A to an actor in process B (loopback).

Process A (this one) starts process B (this script with ``--serve``), which runs two servers on
127.0.0.1 and prints their ports: a :class:`~casty_trio.remote.RemoteActorSystem` with a counting
``sink`` actor, and a raw trio-websocket server. Both sides of the comparison therefore run
between the same two processes, in the same run.

Ours: A's ``RemoteActorSystem`` tells ``Tick(i)`` (a small msgspec Struct) N times to the remote
``sink``, then asks it ``Flush``; the sink answers ``Done(count)`` once it has processed every
tick before (FIFO per sender and receiver). The clock runs from the first tell until A holds the
answer. Two producer shapes are measured:

* ``paced`` (the figure the goal uses): the producer yields (one Trio checkpoint) after every 100
  tells, as any task that does other work between sends does; the link's writer then drains what
  accumulated into a frame.
* ``burst`` (reported, not the goal): all N tells in one synchronous loop, so the writer only runs
  once they are all queued and cuts them into frames of up to ``max_frame_size``.

A's outbox capacity is raised above N (the default, 100k, would turn a burst's last items into dead
letters, as designed).

Baseline: raw trio-websocket (``open_websocket``/``serve_websocket`` defaults), one-way: A encodes
100 ``Tick`` values per frame with one ``msgspec.msgpack.Encoder.encode`` of a list and awaits
``send_message`` per frame; B decodes each frame to ``list[Tick]`` and counts them; an empty
frame asks B for the count, which A awaits. Same N, clock from the first send to the answer.

Reported next to the baseline, not part of the goal: ``per_message_payloads``, the same raw
exchange with every Tick encoded on its own (a list of ``msgspec.Raw`` per frame) and decoded on
its own in B, which is the payload handling ours does by design (payloads travel as ``Raw`` so
only the recipient's node decodes them).

Both timed with the cyclic GC off in A, best of several alternating runs. ``ratio`` = ours (paced)
msgs/s / baseline msgs/s; goal ``ratio >= 0.4``. Frames and messages come from A's
``link_statistics()`` for the run reported.
"""

from __future__ import annotations

from typing import Any

import msgspec
import trio
import trio_websocket
from _common import (
    best_of,
    compare,
    emit,
    gc_paused,
    make_record,
    now,
    quick_from_argv,
)
from _remote import (
    LOCAL,
    SYSTEM,
    Done,
    Flush,
    Tick,
    peer_process,
    round_floats,
    serve_until_stdin_closes,
    serve_websocket_until,
)

from casty_trio import ActorContext, ActorRef, Behavior, Behaviors, NodeAddress
from casty_trio.remote import RemoteActorSystem, RemoteSettings

SCENARIO = "remote_tell"
GOAL = 0.4
PER_FRAME = 100  # baseline messages per frame, and the paced producer's tells per checkpoint
PER_MESSAGE_PATH = "/per-message"  # the raw sink's resource for frames of separately encoded ticks

# ---------------------------------------------------------------------------- process B


def _sink() -> Behavior[Any]:
    count = 0

    async def receive(ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
        nonlocal count
        if type(msg) is Tick:
            count += 1
        elif type(msg) is Flush:
            msg.reply_to.tell(Done(count))
            count = 0
        return Behaviors.same()

    return Behaviors.receive(receive)


async def _serve_casty(
    stop: trio.Event, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
) -> None:
    async with RemoteActorSystem(SYSTEM, host=LOCAL, port=0) as system:
        system.spawn(_sink(), "sink")
        task_status.started(system.self_node.port)
        await stop.wait()


async def _raw_sink(request: trio_websocket.WebSocketRequest) -> None:
    per_message = request.path == PER_MESSAGE_PATH
    ws = await request.accept()
    decode_tick = msgspec.msgpack.Decoder(Tick).decode
    decode = msgspec.msgpack.Decoder(list[msgspec.Raw] if per_message else list[Tick]).decode
    encode = msgspec.msgpack.Encoder().encode
    count = 0
    try:
        while True:
            items = decode(await ws.get_message())
            if not items:
                await ws.send_message(encode(count))
                count = 0
            elif per_message:
                for raw in items:
                    decode_tick(raw)
                    count += 1
            else:
                for _ in items:
                    count += 1
    except trio_websocket.ConnectionClosed:
        return


async def _serve_raw(
    stop: trio.Event, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
) -> None:
    await serve_websocket_until(_raw_sink, stop, task_status=task_status)


def serve() -> None:
    """Process B: serve until stdin closes."""
    trio.run(serve_until_stdin_closes, {"casty": _serve_casty, "ws": _serve_raw})


# ---------------------------------------------------------------------------- process A


def _sent(system: RemoteActorSystem, node: NodeAddress) -> tuple[int, int, int]:
    """Frames, messages and bytes written so far on the link to ``node``."""
    stats = system.link_statistics().get(node)
    if stats is None:  # no link before the first message
        return (0, 0, 0)
    return (stats.frames_out, stats.messages_out, stats.bytes_out)


async def _ours_once(
    system: RemoteActorSystem, sink: ActorRef[Any], node: NodeAddress, n: int, chunk: int
) -> dict[str, Any]:
    before = _sent(system, node)
    tell = sink.tell
    checkpoint = trio.lowlevel.checkpoint
    with gc_paused():
        start = now()
        for first in range(0, n, chunk):
            for i in range(first, min(first + chunk, n)):
                tell(Tick(i))
            await checkpoint()
        enqueued = now()
        done: Done = await system.ask(sink, lambda r: Flush(r), timeout=120.0)
        end = now()
    assert done.count == n, f"sink processed {done.count} of {n} ticks"
    after = _sent(system, node)
    elapsed = end - start
    frames = after[0] - before[0]
    messages = after[1] - before[1]  # n ticks + the Flush
    return {
        "elapsed_s": elapsed,
        "msgs_per_s": n / elapsed,
        "tell_loop_s": enqueued - start,
        "frames_out": frames,
        "messages_out": messages,
        "msgs_per_frame": messages / frames if frames else 0.0,
        "bytes_out": after[2] - before[2],
    }


async def _baseline_once(
    ws: trio_websocket.WebSocketConnection, n: int, *, per_message: bool = False
) -> dict[str, Any]:
    encoder = msgspec.msgpack.Encoder()
    encode = encoder.encode
    decode = msgspec.msgpack.Decoder(int).decode
    raw = msgspec.Raw
    frames = 0
    size = 0
    with gc_paused():
        start = now()
        for first in range(0, n, PER_FRAME):
            if per_message:
                frame = encode(
                    [raw(encode(Tick(i))) for i in range(first, min(first + PER_FRAME, n))]
                )
            else:
                frame = encode([Tick(i) for i in range(first, min(first + PER_FRAME, n))])
            await ws.send_message(frame)
            frames += 1
            size += len(frame)
        sent = now()
        await ws.send_message(encode([]))
        count = decode(await ws.get_message())
        end = now()
    assert count == n, f"raw sink counted {count} of {n} ticks"
    elapsed = end - start
    return {
        "elapsed_s": elapsed,
        "msgs_per_s": n / elapsed,
        "send_loop_s": sent - start,
        "frames_out": frames,
        "msgs_per_frame": n / frames,
        "bytes_out": size,
    }


def run(quick: bool = False) -> dict[str, Any]:
    """Run the scenario and return its record (``quick``: tiny counts, for smoke tests)."""
    n = 2_000 if quick else 100_000
    repeats = 1 if quick else 5
    warmup = min(n, 2_000)

    paced_runs: list[dict[str, Any]] = []
    burst_runs: list[dict[str, Any]] = []
    base_runs: list[dict[str, Any]] = []
    per_message_runs: list[dict[str, Any]] = []

    async def main() -> None:
        async with peer_process(__file__) as ports:
            b_node = NodeAddress(LOCAL, ports["casty"])
            settings = RemoteSettings(outbox_capacity=max(2 * n, 100_000))
            async with (
                RemoteActorSystem(SYSTEM, host=LOCAL, port=0, settings=settings) as system,
                trio_websocket.open_websocket(LOCAL, ports["ws"], "/", use_ssl=False) as ws,
                trio_websocket.open_websocket(
                    LOCAL, ports["ws"], PER_MESSAGE_PATH, use_ssl=False
                ) as ws_per_message,
            ):
                sink = system.lookup("/sink", node=b_node)
                assert sink is not None
                # warm-up: connects the link, builds decoders on both sides
                await _ours_once(system, sink, b_node, warmup, PER_FRAME)
                await _ours_once(system, sink, b_node, warmup, warmup)
                await _baseline_once(ws, warmup)
                await _baseline_once(ws_per_message, warmup, per_message=True)
                for _ in range(repeats):
                    paced_runs.append(await _ours_once(system, sink, b_node, n, PER_FRAME))
                    base_runs.append(await _baseline_once(ws, n))
                    per_message_runs.append(
                        await _baseline_once(ws_per_message, n, per_message=True)
                    )
                    burst_runs.append(await _ours_once(system, sink, b_node, n, n))

    trio.run(main)
    paced, base, ratio, pairs = compare(paced_runs, base_runs, "msgs_per_s")
    burst = best_of(burst_runs, key=lambda r: r["msgs_per_s"])
    per_message = best_of(per_message_runs, key=lambda r: r["msgs_per_s"])
    return make_record(
        SCENARIO,
        ours={
            **round_floats(paced),
            "msgs_per_s_all_runs": [round(r["msgs_per_s"]) for r in paced_runs],
            "kind": f"RemoteActorSystem tells, a checkpoint every {PER_FRAME} tells",
            "burst": {
                **round_floats(burst),
                "msgs_per_s_all_runs": [round(r["msgs_per_s"]) for r in burst_runs],
                "kind": "RemoteActorSystem tells, all N in one synchronous loop",
                "ratio": round(burst["msgs_per_s"] / base["msgs_per_s"], 4),
            },
        },
        baseline={
            **round_floats(base),
            "msgs_per_s_all_runs": [round(r["msgs_per_s"]) for r in base_runs],
            "kind": f"raw trio-websocket one-way, {PER_FRAME} msgspec-encoded Ticks per frame",
            "per_message_payloads": {
                **round_floats(per_message),
                "msgs_per_s_all_runs": [round(r["msgs_per_s"]) for r in per_message_runs],
                "kind": "as the baseline, but each Tick encoded (and decoded) on its own, "
                "framed as a list of msgspec.Raw: the payload handling ours has by design",
                "ours_over_this": round(paced["msgs_per_s"] / per_message["msgs_per_s"], 4),
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
    import sys

    if "--serve" in sys.argv[1:]:
        serve()
    else:
        emit(run(quick=quick_from_argv()))
