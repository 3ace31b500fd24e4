"""Scenario ``remote_ask``: N sequential asks from process A to an actor in process B (loopback).

Process A (this one) starts process B (this script with ``--serve``), which runs three servers on
127.0.0.1 and prints their ports: a :class:`~casty_trio.remote.RemoteActorSystem` with an ``echo``
actor, a raw trio-websocket echo server and a raw trio TCP echo server. Every side of the
comparison therefore runs between the same two processes, in the same run.

Ours: ``await system.ask(echo, lambda r: Ping(i, r), timeout=5.0)`` N times in a row; the remote
actor answers ``msg.reply_to.tell(Pong(msg.n))``, and the reply comes back over the link.

Baseline: raw trio-websocket (``open_websocket``/``serve_websocket`` defaults) request/response:
A sends one msgspec-encoded ``Ping(i)`` per message and awaits the ``Pong`` B sends back, N times
in a row. Reference (not part of the goal): the same over a raw trio TCP stream
(``trio.open_tcp_stream``, a 4-byte big-endian length before each msgspec payload).

Every round trip is timed with ``perf_counter_ns`` (same bookkeeping on every side) for
p50/p99, with the cyclic GC off in A; rounds alternate between the sides and the run with the
lowest p50 of each side is reported. ``ratio`` = ours p50 / baseline p50; goal ``ratio <= 1.2``.
"""

from __future__ import annotations

import struct
from functools import partial
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
    now_ns,
    percentile,
    quick_from_argv,
)
from _remote import (
    LOCAL,
    SYSTEM,
    Ping,
    Pong,
    peer_process,
    round_floats,
    serve_until_stdin_closes,
    serve_websocket_until,
)

from casty_trio import ActorContext, ActorRef, Behavior, Behaviors, NodeAddress
from casty_trio.remote import RemoteActorSystem

SCENARIO = "remote_ask"
GOAL = 1.2
_LENGTH = struct.Struct(">I")

# ---------------------------------------------------------------------------- process B


async def _echo(ctx: ActorContext[Ping], msg: Ping) -> Behavior[Ping]:
    assert msg.reply_to is not None
    msg.reply_to.tell(Pong(msg.n))
    return Behaviors.same()


async def _serve_casty(
    stop: trio.Event, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
) -> None:
    async with RemoteActorSystem(SYSTEM, host=LOCAL, port=0) as system:
        system.spawn(Behaviors.receive(_echo), "echo")
        task_status.started(system.self_node.port)
        await stop.wait()


async def _raw_ws_echo(request: trio_websocket.WebSocketRequest) -> None:
    ws = await request.accept()
    decode = msgspec.msgpack.Decoder(Ping).decode
    encode = msgspec.msgpack.Encoder().encode
    try:
        while True:
            ping = decode(await ws.get_message())
            await ws.send_message(encode(Pong(ping.n)))
    except trio_websocket.ConnectionClosed:
        return


async def _serve_ws(
    stop: trio.Event, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
) -> None:
    await serve_websocket_until(_raw_ws_echo, stop, task_status=task_status)


class _Framed:
    """A trio stream carrying payloads behind a 4-byte big-endian length."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self._buffer = bytearray()

    async def send(self, payload: bytes) -> None:
        await self.stream.send_all(_LENGTH.pack(len(payload)) + payload)

    async def receive(self) -> bytes | None:
        """The next payload, or None at end of stream."""
        buffer = self._buffer
        while True:
            if len(buffer) >= 4:
                (size,) = _LENGTH.unpack_from(buffer)
                if len(buffer) >= 4 + size:
                    payload = bytes(buffer[4 : 4 + size])
                    del buffer[: 4 + size]
                    return payload
            chunk = await self.stream.receive_some(65536)
            if not chunk:
                return None
            buffer += chunk


async def _raw_tcp_echo(stream: trio.SocketStream) -> None:
    framed = _Framed(stream)
    decode = msgspec.msgpack.Decoder(Ping).decode
    encode = msgspec.msgpack.Encoder().encode
    try:
        while (payload := await framed.receive()) is not None:
            await framed.send(encode(Pong(decode(payload).n)))
    except trio.BrokenResourceError:
        return


async def _serve_tcp(
    stop: trio.Event, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
) -> None:
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, _raw_tcp_echo, 0, host=LOCAL))
        task_status.started(listeners[0].socket.getsockname()[1])
        await stop.wait()
        nursery.cancel_scope.cancel()


def serve() -> None:
    """Process B: serve until stdin closes."""
    trio.run(serve_until_stdin_closes, {"casty": _serve_casty, "ws": _serve_ws, "tcp": _serve_tcp})


# ---------------------------------------------------------------------------- process A


def _summary(n: int, elapsed: float, latencies_ns: list[int]) -> dict[str, float]:
    return {
        "elapsed_s": elapsed,
        "ops_per_s": n / elapsed,
        "p50_us": percentile(latencies_ns, 50) / 1_000,
        "p99_us": percentile(latencies_ns, 99) / 1_000,
        "max_us": max(latencies_ns) / 1_000,
    }


async def _ours_once(system: RemoteActorSystem, echo: ActorRef[Ping], n: int) -> dict[str, float]:
    latencies = [0] * n
    ask = system.ask
    with gc_paused():
        start = now()
        for i in range(n):
            t0 = now_ns()
            reply: Pong = await ask(echo, lambda r, i=i: Ping(i, r), timeout=5.0)
            latencies[i] = now_ns() - t0
        end = now()
    assert reply == Pong(n - 1)
    return _summary(n, end - start, latencies)


async def _ws_once(ws: trio_websocket.WebSocketConnection, n: int) -> dict[str, float]:
    latencies = [0] * n
    encode = msgspec.msgpack.Encoder().encode
    decode = msgspec.msgpack.Decoder(Pong).decode
    send, receive = ws.send_message, ws.get_message
    with gc_paused():
        start = now()
        for i in range(n):
            t0 = now_ns()
            await send(encode(Ping(i)))
            reply = decode(await receive())
            latencies[i] = now_ns() - t0
        end = now()
    assert reply == Pong(n - 1)
    return _summary(n, end - start, latencies)


async def _tcp_once(framed: _Framed, n: int) -> dict[str, float]:
    latencies = [0] * n
    encode = msgspec.msgpack.Encoder().encode
    decode = msgspec.msgpack.Decoder(Pong).decode
    send, receive = framed.send, framed.receive
    with gc_paused():
        start = now()
        for i in range(n):
            t0 = now_ns()
            await send(encode(Ping(i)))
            payload = await receive()
            assert payload is not None
            reply = decode(payload)
            latencies[i] = now_ns() - t0
        end = now()
    assert reply == Pong(n - 1)
    return _summary(n, end - start, latencies)


def run(quick: bool = False) -> dict[str, Any]:
    """Run the scenario and return its record (``quick``: tiny counts, for smoke tests)."""
    n = 200 if quick else 5_000
    repeats = 1 if quick else 3
    warmup = min(n, 200)

    ours_runs: list[dict[str, float]] = []
    ws_runs: list[dict[str, float]] = []
    tcp_runs: list[dict[str, float]] = []

    async def main() -> None:
        async with peer_process(__file__) as ports:
            b_node = NodeAddress(LOCAL, ports["casty"])
            async with (
                RemoteActorSystem(SYSTEM, host=LOCAL, port=0) as system,
                trio_websocket.open_websocket(LOCAL, ports["ws"], "/", use_ssl=False) as ws,
                await trio.open_tcp_stream(LOCAL, ports["tcp"]) as stream,
            ):
                echo = system.lookup("/echo", node=b_node)
                assert echo is not None
                framed = _Framed(stream)
                # warm-up: connects the link, builds decoders on both sides
                await _ours_once(system, echo, warmup)
                await _ws_once(ws, warmup)
                await _tcp_once(framed, warmup)
                for _ in range(repeats):
                    ours_runs.append(await _ours_once(system, echo, n))
                    ws_runs.append(await _ws_once(ws, n))
                    tcp_runs.append(await _tcp_once(framed, n))

    trio.run(main)
    ours, base, ratio, pairs = compare(ours_runs, ws_runs, "p50_us", highest=False)
    tcp = best_of(tcp_runs, key=lambda r: r["p50_us"], highest=False)
    return make_record(
        SCENARIO,
        ours={
            **round_floats(ours),
            "p50_us_all_runs": [round(r["p50_us"], 1) for r in ours_runs],
            "kind": "RemoteActorSystem.ask to an echo actor in process B",
        },
        baseline={
            **round_floats(base),
            "p50_us_all_runs": [round(r["p50_us"], 1) for r in ws_runs],
            "kind": "raw trio-websocket + msgspec request/response",
            "raw_tcp": {
                **round_floats(tcp),
                "p50_us_all_runs": [round(r["p50_us"], 1) for r in tcp_runs],
                "kind": "raw trio TCP stream, 4-byte length prefix + msgspec",
            },
        },
        ratio=ratio,
        goal=f"ratio (ours p50 / baseline p50) <= {GOAL}",
        meets_goal=ratio <= GOAL,
        ratio_pairs_median=round(pairs, 4),
        ours_p50_over_raw_tcp=round(ours["p50_us"] / tcp["p50_us"], 4),
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
