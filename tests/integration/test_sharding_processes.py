"""Three real OS processes on loopback form a cluster over WebSocket and share one sharded type.

Each process runs ``tests/integration/_sharding_node.py``: it spawns the sharded type
``counters`` (30 shards; counters from ``_sharding_messages.py``, imported under the same name
everywhere), tells ``Add(i + 1)`` from process ``i`` to the same 300 entity ids, and then asks
every id from every process. Each counter must hold exactly 1 + 2 + 3, every process must see
each id on the same node, started once, and the shards the processes host must be disjoint,
cover every id's shard and contain the shard of each id that node reported.

Every wait is bounded (and awaits a line the processes print, never a fixed sleep); every
process is killed in a ``finally``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import trio

from casty_trio import entity_shard
from casty_trio.cluster import ClusterSettings

ROOT = Path(__file__).resolve().parents[2]
ENTITIES = 300
NUM_SHARDS = 30  # as in _sharding_node.py
BOUND = 15.0  # seconds for any one step on loopback (process start and joining included)

# The fast failure-detection profile documented in docs/configuration.md.
FAST = ClusterSettings(
    heartbeat_interval=0.1,
    threshold=4.0,
    min_std_deviation=0.05,
    first_heartbeat_estimate=0.1,
    stable_after=0.5,
)


@attrs.define(eq=False)
class Node:
    """A node process, the JSON lines it printed so far and an event per new line."""

    index: int
    process: trio.Process
    lines: list[dict[str, Any]] = attrs.field(factory=list)
    eof: bool = False
    changed: trio.Event = attrs.field(factory=trio.Event)

    def line(self, key: str) -> dict[str, Any] | None:
        return next((x for x in self.lines if key in x), None)

    async def send(self, command: str) -> None:
        assert self.process.stdin is not None
        await self.process.stdin.send_all(command.encode() + b"\n")


async def read_lines(node: Node) -> None:
    assert node.process.stdout is not None
    buffer = b""
    while chunk := await node.process.stdout.receive_some(65536):
        buffer += chunk
        *complete, buffer = buffer.split(b"\n")
        node.lines.extend(json.loads(line) for line in complete if line.strip())
        node.changed.set()
        node.changed = trio.Event()
    node.eof = True
    node.changed.set()


async def wait_line(node: Node, key: str) -> dict[str, Any]:
    """The first line of ``node`` carrying ``key``, once printed (bounded)."""
    try:
        with trio.fail_after(BOUND):
            while (found := node.line(key)) is None:
                if node.eof:
                    raise AssertionError(f"node {node.index} exited: {node.lines}")
                await node.changed.wait()
    except trio.TooSlowError:
        raise AssertionError(f"node {node.index} printed no {key!r}: {node.lines}") from None
    return found


@asynccontextmanager
async def node_process(nursery: trio.Nursery, index: int, seed: int | None) -> AsyncIterator[Node]:
    cmd = [sys.executable, "-m", "tests.integration._sharding_node", "--index", str(index)]
    cmd += ["--entities", str(ENTITIES), "--settings", json.dumps(attrs.asdict(FAST))]
    if seed is not None:
        cmd += ["--seed", str(seed)]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    process = await trio.lowlevel.open_process(
        cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT, env=env
    )
    node = Node(index, process)
    try:
        nursery.start_soon(read_lines, node)
        yield node
    finally:
        with trio.CancelScope(shield=True):
            if process.returncode is None:
                process.kill()
            await process.wait()
            if process.stdin is not None:
                await process.stdin.aclose()


async def on_all(nodes: tuple[Node, ...], step: Callable[[Node], Any]) -> None:
    async with trio.open_nursery() as nursery:
        for node in nodes:
            nursery.start_soon(step, node)


async def test_three_processes_share_one_sharded_type() -> None:
    async with trio.open_nursery() as nursery:
        async with AsyncExitStack() as stack:
            n0 = await stack.enter_async_context(node_process(nursery, 0, None))
            port = (await wait_line(n0, "ready"))["port"]
            n1 = await stack.enter_async_context(node_process(nursery, 1, port))
            n2 = await stack.enter_async_context(node_process(nursery, 2, port))
            nodes = (n0, n1, n2)
            await on_all(nodes, lambda n: wait_line(n, "spawned"))

            async def tell(node: Node) -> None:
                await node.send("tell")
                await wait_line(node, "told")

            await on_all(nodes, tell)  # each returns once its own tells were handled

            async def ask(node: Node) -> None:
                await node.send("ask")
                await wait_line(node, "answers")

            await on_all(nodes, ask)
            reports = [n.line("answers") for n in nodes]
            assert all(r is not None for r in reports)
            ids = [f"id-{k}" for k in range(ENTITIES)]
            home: dict[str, str] = {}
            for report in reports:
                assert report is not None
                answers = report["answers"]
                assert sorted(answers) == sorted(ids)
                for eid, (value, node, starts) in answers.items():
                    assert value == 1 + 2 + 3, (eid, value, report["node"])
                    assert starts == 1, (eid, starts)
                    assert home.setdefault(eid, node) == node, (eid, home[eid], node)
            # each id lives on exactly one node, and that node hosts the id's shard
            shards = {r["node"]: set(r["shards"]) for r in reports if r is not None}
            assert len(shards) == 3
            for a in shards:
                for b in shards:
                    assert a == b or not shards[a] & shards[b], (a, b)
            for eid, node in home.items():
                assert entity_shard(eid, NUM_SHARDS) in shards[node], (eid, node)
            entities = {r["node"]: r["entities"] for r in reports if r is not None}
            assert sum(entities.values()) == ENTITIES
            assert entities == {n: sum(1 for h in home.values() if h == n) for n in shards}
            assert all(shards.values()), shards  # every node hosts some

            # graceful stop of all three: each leaves and exits 0
            for node in nodes:
                assert node.process.stdin is not None
                await node.process.stdin.aclose()
            with trio.fail_after(BOUND):
                for node in nodes:
                    assert await node.process.wait() == 0
        nursery.cancel_scope.cancel()
