"""Shared pieces of the multi-process cluster scenarios (``cluster_formation``,
``failure_detection``).

The measuring process starts node processes by running the scenario script again with
``--node JSON`` (see :func:`node_main`). A node process prints JSON lines with wall-clock times
(``time.time()``: every process runs on the same machine, so their clocks agree):

* ``{"event": "started", "t": ..., "port": ..., "raw_port": ...}`` once its system is entered
  (``t`` is taken just before entering); ``raw_port`` is a plain TCP listener the measuring
  process may connect to (it sees EOF as soon as the kernel closes a killed process's sockets);
* ``{"event": "all_up", "t": ...}`` once it sees ``n`` members up (cluster mode), or once one ask
  to the seed's echo actor came back (``remote`` mode, the raw baseline of formation);
* ``{"event": "downed", "node_id": ..., "t": ...}`` for every ``MemberDowned`` it sees.

It leaves (gracefully) and exits when its stdin closes.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import trio

LOCAL = "127.0.0.1"
SYSTEM = "bench-cluster"
ROOT = Path(__file__).resolve().parent.parent
_BOUND = 60.0  # seconds any wait for a node process may take

# The fast failure-detection profile of docs/configuration.md.
FAST_PROFILE: dict[str, float] = {
    "heartbeat_interval": 0.1,
    "threshold": 4.0,
    "min_std_deviation": 0.05,
    "first_heartbeat_estimate": 0.1,
    "stable_after": 0.5,
}


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind((LOCAL, 0))
        port: int = sock.getsockname()[1]
        return port


# ---------------------------------------------------------------------------- node process


def _emit(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


async def _serve_raw(*, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
    async def hold(stream: trio.SocketStream) -> None:
        await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(trio.serve_tcp, hold, 0)
        task_status.started(listeners[0].socket.getsockname()[1])


async def _cluster_node(spec: dict[str, Any]) -> None:
    from casty_trio import ClusteredActorSystem
    from casty_trio.cluster import ClusterSettings, MemberDowned

    settings = ClusterSettings(**spec.get("settings", {}))
    stdin = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
    async with trio.open_nursery() as nursery:
        raw_port = await nursery.start(_serve_raw)
        started = time.time()
        async with ClusteredActorSystem(
            name=SYSTEM,
            host=LOCAL,
            port=spec["port"],
            node_id=spec["node_id"],
            seed_nodes=[(LOCAL, spec["seed"])] if spec["seed"] else [],  # 0: form a cluster
            cluster_settings=settings,
        ) as system:
            _emit(event="started", t=started, port=system.self_node.port, raw_port=raw_port)

            async def report_downed() -> None:
                async with system.event_stream.subscription(MemberDowned) as downed:
                    async for event in downed:
                        _emit(event="downed", node_id=event.member.node_id, t=time.time())

            nursery.start_soon(report_downed)
            await system.wait_for(spec["n"], timeout=_BOUND)
            _emit(event="all_up", t=time.time())
            while await stdin.receive_some(4096):
                pass
            nursery.cancel_scope.cancel()
    await stdin.aclose()


async def _remote_node(spec: dict[str, Any]) -> None:
    from casty_trio import ActorContext, ActorRef, Behavior, Behaviors, NodeAddress
    from casty_trio.remote import RemoteActorSystem

    async def echo(ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
        reply_to: ActorRef[int] = msg[1]
        reply_to.tell(msg[0])
        return Behaviors.same()

    stdin = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
    started = time.time()
    async with RemoteActorSystem(SYSTEM, host=LOCAL, port=spec["port"]) as system:
        system.spawn(Behaviors.receive(echo), "echo")
        _emit(event="started", t=started, port=system.self_node.port, raw_port=0)
        if spec["seed"]:  # 0: the seed itself
            target = system.lookup("/echo", node=NodeAddress(LOCAL, spec["seed"]))
            assert target is not None
            with trio.fail_after(_BOUND):
                while await system.ask_or_none(target, lambda r: (1, r), timeout=0.05) is None:
                    pass
        _emit(event="all_up", t=time.time())
        while await stdin.receive_some(4096):
            pass
    await stdin.aclose()


def node_main(argv: list[str]) -> None:
    """A node process: ``script --node JSON`` (keys: mode, node_id, port, seed, n, settings)."""
    spec = json.loads(argv[argv.index("--node") + 1])
    # Refused dials and unreachable peers are expected here (a node is killed): keep stderr
    # for real failures.
    logging.getLogger("casty_trio").setLevel(logging.ERROR)
    trio.run(_cluster_node if spec["mode"] == "cluster" else _remote_node, spec)


# ---------------------------------------------------------------------------- measuring side


@attrs.define
class NodeProc:
    """A node process and the JSON lines it printed so far."""

    node_id: str
    process: trio.Process
    spawned: float
    lines: list[dict[str, Any]] = attrs.field(factory=list)
    eof: bool = False

    def first(self, event: str) -> dict[str, Any] | None:
        return next((x for x in self.lines if x.get("event") == event), None)

    def time_of(self, event: str) -> float:
        line = self.first(event)
        assert line is not None, f"{self.node_id} printed no {event!r}: {self.lines}"
        t: float = line["t"]
        return t


async def _read(node: NodeProc) -> None:
    assert node.process.stdout is not None
    buffer = b""
    while chunk := await node.process.stdout.receive_some(65536):
        buffer += chunk
        *complete, buffer = buffer.split(b"\n")
        node.lines.extend(json.loads(line) for line in complete if line.strip())
    node.eof = True


async def wait_for_event(nodes: list[NodeProc], event: str, bound: float = _BOUND) -> None:
    """Wait until every node printed ``event`` (polling its lines every millisecond)."""
    with trio.fail_after(bound):
        while not all(n.first(event) is not None for n in nodes):
            for n in nodes:
                if n.eof and n.first(event) is None:
                    raise RuntimeError(f"{n.node_id} exited early: {n.lines}")
            await trio.sleep(0.001)


@asynccontextmanager
async def open_nodes(script: str) -> AsyncIterator[Any]:
    """Yield ``start(spec) -> NodeProc``; every process started is ended on the way out."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    async with trio.open_nursery() as nursery, AsyncExitStack() as stack:
        nodes: list[NodeProc] = []

        async def start(spec: dict[str, Any]) -> NodeProc:
            cmd = [sys.executable, script, "--node", json.dumps(spec)]
            spawned = time.time()
            process = await trio.lowlevel.open_process(
                cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, cwd=ROOT
            )
            node = NodeProc(spec["node_id"], process, spawned)
            nodes.append(node)
            nursery.start_soon(_read, node)
            return node

        async def stop_all() -> None:
            with trio.CancelScope(shield=True):
                for node in nodes:
                    if node.process.stdin is not None:
                        await node.process.stdin.aclose()
                with trio.move_on_after(5):
                    for node in nodes:
                        await node.process.wait()
                for node in nodes:
                    if node.process.returncode is None:
                        node.process.kill()
                        await node.process.wait()
            nursery.cancel_scope.cancel()

        stack.push_async_callback(stop_all)
        yield start
