"""Shared pieces of the two-process remoting scenarios (``remote_tell``, ``remote_ask``).

The measuring process (A) starts the peer process (B) by running the scenario script again with
``--serve``. B starts its servers on loopback, prints one JSON line with their ports, and serves
until its stdin closes (A closes it when done, and kills B if it does not exit).

The message types live here, in a module both processes import under the same name
(``_remote``), so their wire names (``_remote:Tick``, ...) resolve on the other side whether A
runs as a script (``run.py``) or is imported (the smoke test).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import msgspec
import trio
import trio_websocket

from casty_trio import ActorRef

__all__ = [
    "LOCAL",
    "SYSTEM",
    "Done",
    "Flush",
    "Ping",
    "Pong",
    "Tick",
    "peer_process",
    "round_floats",
    "serve_until_stdin_closes",
    "serve_websocket_until",
]

LOCAL = "127.0.0.1"
SYSTEM = "bench-remote"
_READY_TIMEOUT = 30.0  # seconds B may take to import and start listening (slow CI machines)
_EXIT_TIMEOUT = 5.0  # seconds B may take to shut down once its stdin closed


class Tick(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """The small one-way message (ours and the raw baseline send the same type)."""

    seq: int


class Flush(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """Sent after the last tick: the sink answers with how many ticks it has processed."""

    reply_to: ActorRef[Done]


class Done(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """The sink's answer to :class:`Flush`."""

    count: int


class Ping(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """An ask's request. ``reply_to`` is ``None`` in the raw baselines (the reply goes back on
    the same connection)."""

    n: int
    reply_to: ActorRef[Pong] | None = None


class Pong(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """An ask's reply."""

    n: int


@asynccontextmanager
async def peer_process(script: str) -> AsyncIterator[dict[str, int]]:
    """Run ``script --serve`` as process B; yield the ports it printed; always end it."""
    cmd = [sys.executable, script, "--serve"]
    process = await trio.lowlevel.open_process(
        cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=os.path.dirname(script)
    )
    try:
        assert process.stdout is not None
        line = b""
        with trio.fail_after(_READY_TIMEOUT):
            while not line.endswith(b"\n"):
                chunk = await process.stdout.receive_some(4096)
                if not chunk:
                    raise RuntimeError(f"peer process exited before it was ready: {cmd}")
                line += chunk
        ports: dict[str, int] = json.loads(line)
        yield ports
    finally:
        with trio.CancelScope(shield=True):
            if process.stdin is not None:
                await process.stdin.aclose()  # B's cue to shut down
            with trio.move_on_after(_EXIT_TIMEOUT):
                await process.wait()
            if process.returncode is None:
                process.kill()
                await process.wait()
            if process.stdout is not None:
                await process.stdout.aclose()


Server = Callable[..., Awaitable[None]]


async def serve_until_stdin_closes(servers: dict[str, Server]) -> None:
    """Process B's main: start ``servers``, print their ports, serve until stdin reaches EOF.

    Each server is started with ``nursery.start(server, stop)``, reports its port through
    ``task_status`` and returns soon after the ``stop`` event is set.
    """
    stdin = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        ports = {name: await nursery.start(server, stop) for name, server in servers.items()}
        print(json.dumps(ports), flush=True)
        while await stdin.receive_some(4096):
            pass
        stop.set()
        nursery.cancel_scope.deadline = trio.current_time() + _EXIT_TIMEOUT / 2
    await stdin.aclose()


async def serve_websocket_until(
    handler: Callable[[trio_websocket.WebSocketRequest], Awaitable[None]],
    stop: trio.Event,
    *,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """A raw trio-websocket server on loopback (defaults otherwise) until ``stop`` is set."""
    async with trio.open_nursery() as nursery:
        server = await nursery.start(
            partial(trio_websocket.serve_websocket, handler, LOCAL, 0, ssl_context=None)
        )
        task_status.started(server.port)
        await stop.wait()
        nursery.cancel_scope.cancel()


def round_floats(result: dict[str, Any]) -> dict[str, Any]:
    """Round microsecond figures to 3 places and other floats to 6."""
    return {
        k: (round(v, 3) if k.endswith("_us") else round(v, 6)) if isinstance(v, float) else v
        for k, v in result.items()
    }
