"""Three real OS processes on loopback form a cluster over WebSocket; one is killed, one leaves.

Each process runs ``tests/integration/_cluster_node.py`` (node 0 forms the cluster, the others
join through it) with the fast failure-detection profile of ``docs/configuration.md``, and
prints its membership events as JSON lines. This test process is a fourth member, the observer:
it watches the event stream itself and reads the lines of the others. SIGKILL of one process
must make every survivor publish ``MemberDowned`` for it within :data:`DOWN_BOUND`; closing the
stdin of another (a graceful stop) must be seen by everyone left as ``MemberLeft``, never as a
failure.

Every wait is bounded; every process is killed in a ``finally``.
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
import pytest
import trio

from casty_trio import ClusteredActorSystem
from casty_trio.cluster import ClusterSettings, MemberDowned, MemberLeft

ROOT = Path(__file__).resolve().parents[2]
SYSTEM = "cluster-processes"  # as in _cluster_node.py
LOCAL = "127.0.0.1"
BOUND = 10.0  # seconds: any start-up or convergence wait on loopback (process start included)
DOWN_BOUND = 10.0  # seconds from SIGKILL to MemberDowned on every survivor, fast profile
LEAVE_BOUND = 5.0  # seconds from closing stdin to MemberLeft on every remaining member

# The fast failure-detection profile documented in docs/configuration.md.
FAST = ClusterSettings(
    heartbeat_interval=0.1,
    threshold=4.0,
    min_std_deviation=0.05,
    first_heartbeat_estimate=0.1,
    stable_after=0.5,
)


@attrs.define
class Node:
    """A node process and the JSON lines it printed so far."""

    node_id: str
    process: trio.Process
    lines: list[dict[str, Any]] = attrs.field(factory=list)
    eof: bool = False

    @property
    def port(self) -> int:
        return next(line["port"] for line in self.lines if line.get("ready"))

    def events(self, event: str, node_id: str) -> int:
        """How many times this node reported ``event`` about ``node_id``."""
        return sum(1 for x in self.lines if x.get("event") == event and x["node_id"] == node_id)


async def read_lines(node: Node) -> None:
    assert node.process.stdout is not None
    buffer = b""
    while chunk := await node.process.stdout.receive_some(65536):
        buffer += chunk
        *complete, buffer = buffer.split(b"\n")
        node.lines.extend(json.loads(line) for line in complete if line.strip())
    node.eof = True


async def until(
    condition: Callable[[], bool], bound: float, what: str, nodes: tuple[Node, ...] = ()
) -> float:
    """Poll ``condition`` until it holds; returns the seconds it took. On failure the message
    shows what the ``nodes`` printed."""
    start = trio.current_time()
    try:
        with trio.fail_after(bound):
            while not condition():
                await trio.sleep(0.01)
    except trio.TooSlowError:
        seen = {n.node_id: n.lines for n in nodes}
        raise AssertionError(f"not within {bound}s: {what}; the nodes printed {seen}") from None
    return trio.current_time() - start


@asynccontextmanager
async def node_process(
    nursery: trio.Nursery, node_id: str, seed: int | None
) -> AsyncIterator[Node]:
    """Start a node process (not waiting until it is ready); always kill it on the way out."""
    cmd = [sys.executable, "-m", "tests.integration._cluster_node", "--node-id", node_id]
    if seed is not None:
        cmd += ["--seed", str(seed)]
    cmd += ["--settings", json.dumps(attrs.asdict(FAST))]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    process = await trio.lowlevel.open_process(
        cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT, env=env
    )
    node = Node(node_id, process)
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


async def ready(node: Node) -> None:
    await until(
        lambda: any(x.get("ready") for x in node.lines) or node.eof,
        BOUND,
        f"{node.node_id} ready",
        (node,),
    )
    assert not node.eof, f"{node.node_id} exited before it was ready ({node.process.poll()})"


@pytest.mark.parametrize(
    ("kill", "stop"),
    [(1, 0), (0, 2)],
    ids=["kill-a-joiner-stop-the-seed", "kill-the-seed-stop-a-joiner"],
)
async def test_kill_one_process_then_stop_another(kill: int, stop: int) -> None:
    async with trio.open_nursery() as nursery:
        async with AsyncExitStack() as stack:
            n0 = await stack.enter_async_context(node_process(nursery, "node-0", None))
            await ready(n0)
            n1 = await stack.enter_async_context(node_process(nursery, "node-1", n0.port))
            n2 = await stack.enter_async_context(node_process(nursery, "node-2", n0.port))
            nodes = (n0, n1, n2)
            killed, stopped, rest = (nodes[i] for i in (kill, stop, 3 - kill - stop))
            observer = await stack.enter_async_context(
                ClusteredActorSystem(
                    name=SYSTEM,
                    host=LOCAL,
                    port=0,
                    node_id="observer",
                    seed_nodes=[(LOCAL, n0.port)],
                    cluster_settings=FAST,
                )
            )
            downed = await stack.enter_async_context(
                observer.event_stream.subscription(MemberDowned)
            )
            left = await stack.enter_async_context(observer.event_stream.subscription(MemberLeft))
            await ready(n1)
            await ready(n2)

            # all four members up, as every one of them sees it
            everyone = {"node-0", "node-1", "node-2", "observer"}
            state = await observer.wait_for(4, timeout=BOUND)
            assert {m.node_id for m in state.up()} == everyone
            # (a process may see itself up before it subscribes: node 0 is up alone at once)
            await until(
                lambda: all(
                    n.events("MemberUp", i) == 1 for n in nodes for i in everyone - {n.node_id}
                ),
                BOUND,
                "every process sees the three other members up",
                nodes,
            )

            # SIGKILL one node: every survivor downs it, nobody else is downed
            killed.process.kill()
            start = trio.current_time()
            with trio.fail_after(DOWN_BOUND):
                event = await downed.receive()
            observed = trio.current_time() - start
            assert event.member.node_id == killed.node_id
            await until(
                lambda: (
                    stopped.events("MemberDowned", killed.node_id) == 1
                    and rest.events("MemberDowned", killed.node_id) == 1
                ),
                DOWN_BOUND - observed,
                "the surviving processes down the killed one",
                nodes,
            )
            all_downed = trio.current_time() - start
            state = await observer.get_cluster_state()
            assert {m.node_id for m in state.up()} == {stopped.node_id, rest.node_id, "observer"}

            # graceful stop of another: seen as a leave, not a failure
            assert stopped.process.stdin is not None
            await stopped.process.stdin.aclose()
            start = trio.current_time()
            with trio.fail_after(LEAVE_BOUND):
                event = await left.receive()
            left_seen = trio.current_time() - start
            assert event.member.node_id == stopped.node_id
            await until(
                lambda: rest.events("MemberLeft", stopped.node_id) == 1,
                LEAVE_BOUND,
                "the remaining process sees it leave",
                nodes,
            )
            with trio.fail_after(LEAVE_BOUND):
                assert await stopped.process.wait() == 0
            await until(lambda: stopped.eof, LEAVE_BOUND, "its output ends", nodes)
            assert stopped.lines[-1] == {"stopped": True}

            state = await observer.get_cluster_state()
            assert {m.node_id for m in state.up()} == {rest.node_id, "observer"}
            assert not state.unreachable
            # each transition reported once; no member but the killed one downed anywhere
            for n in (stopped, rest):
                assert n.events("MemberDowned", killed.node_id) == 1
                for other in everyone - {killed.node_id}:
                    assert n.events("MemberDowned", other) == 0
            assert rest.events("MemberLeft", stopped.node_id) == 1
            with trio.move_on_after(0.2):
                extra = await downed.receive()
                raise AssertionError(f"unexpected {extra}")
            print(
                f"\nSIGKILL {killed.node_id} -> MemberDowned: observer {observed:.2f}s, "
                f"all survivors {all_downed:.2f}s; "
                f"{stopped.node_id} stdin closed -> MemberLeft: {left_seen:.2f}s"
            )
        nursery.cancel_scope.cancel()
