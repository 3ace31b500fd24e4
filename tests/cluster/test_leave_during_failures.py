"""A graceful leave completes while other members fail, and is seen as a leave.

A leaving member waits ``leave_timeout`` to be seen ``exiting``; a leaving member that goes
silent (it stopped waiting, or it is cut off) is completing its leave: the downing decision
counts it on neither side and the leader removes it, so the others publish ``MemberLeft`` for
it, never ``MemberDowned``, and the survivors do not take its silence for a lost majority.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio

from casty_trio import MemberDowned, MemberLeft
from casty_trio.cluster import ClusterSettings, MemberStatus, NodeDownedError
from casty_trio.testing import TestCluster, open_test_cluster

# The defaults wait long enough for a crashed member to be downed first; with a short timeout
# the leaver stops waiting and goes silent while still leaving.
SETTINGS = {"default": None, "gives-up": ClusterSettings(leave_timeout=1.0)}


@pytest.fixture(autouse=True)
def _quiet(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.CRITICAL, logger="casty_trio")


@asynccontextmanager
async def _recording(
    cluster: TestCluster, indices: list[int]
) -> AsyncIterator[dict[int, list[tuple[str, str]]]]:
    """Record (event name, node id) of every MemberLeft and MemberDowned on each node."""
    seen: dict[int, list[tuple[str, str]]] = {i: [] for i in indices}

    async def record(i: int, receive: Any) -> None:
        async for event in receive:
            seen[i].append((type(event).__name__, event.member.node_id))

    async with trio.open_nursery() as nursery:
        for i in indices:
            stream = cluster.node(i).event_stream
            left = await nursery.start(_subscribe, stream, MemberLeft)
            downed = await nursery.start(_subscribe, stream, MemberDowned)
            nursery.start_soon(record, i, left)
            nursery.start_soon(record, i, downed)
        yield seen
        nursery.cancel_scope.cancel()


async def _subscribe(stream: Any, event_type: type, *, task_status: Any) -> None:
    async with stream.subscription(event_type) as receive:
        task_status.started(receive)
        await trio.sleep_forever()


def _own_status(cluster: TestCluster, i: int) -> MemberStatus | None:
    system = cluster.node(i)
    member = system.cluster_gossip().member(system.self_unique)
    return None if member is None else member.status


@pytest.mark.parametrize("settings", list(SETTINGS.values()), ids=list(SETTINGS))
@pytest.mark.parametrize("seed", range(3))
async def test_a_leave_after_a_crash_keeps_the_survivor(
    autojump_clock: Any, seed: int, settings: ClusterSettings | None
) -> None:
    async with open_test_cluster(3, seed=seed, cluster_settings=settings) as cluster:
        async with _recording(cluster, [0]) as seen:
            await cluster.kill(2)
            await cluster.stop(1)
            assert cluster.outcomes[1] is None
            if settings is None:
                assert _own_status(cluster, 1) in (MemberStatus.exiting, MemberStatus.removed)
            state = await cluster.wait_for_convergence(timeout=60)
            await trio.sleep(30)
            assert cluster.is_running(0), cluster.outcomes[0]
        assert [m.node_id for m in state.members] == ["node-0"]
        assert sorted(seen[0]) == [("MemberDowned", "node-2"), ("MemberLeft", "node-1")]


@pytest.mark.parametrize("settings", list(SETTINGS.values()), ids=list(SETTINGS))
@pytest.mark.parametrize("seed", range(3))
async def test_every_survivor_sees_a_leave_after_a_crash_as_a_leave(
    autojump_clock: Any, seed: int, settings: ClusterSettings | None
) -> None:
    async with open_test_cluster(5, seed=seed, cluster_settings=settings) as cluster:
        survivors = [0, 2, 3]
        async with _recording(cluster, survivors) as seen:
            await cluster.kill(4)
            await cluster.stop(1)
            assert cluster.outcomes[1] is None
            state = await cluster.wait_for_convergence(timeout=60)
            await trio.sleep(10)
        assert [m.node_id for m in state.up()] == ["node-0", "node-2", "node-3"]
        for i in survivors:
            assert sorted(seen[i]) == [("MemberDowned", "node-4"), ("MemberLeft", "node-1")], i


@pytest.mark.parametrize("settings", list(SETTINGS.values()), ids=list(SETTINGS))
@pytest.mark.parametrize("seed", range(3))
async def test_a_leave_during_a_split_keeps_the_majority(
    autojump_clock: Any, seed: int, settings: ClusterSettings | None
) -> None:
    async with open_test_cluster(5, seed=seed, cluster_settings=settings) as cluster:
        async with _recording(cluster, [0, 1]) as seen:
            cluster.partition([0, 1, 2], [3, 4])
            await cluster.stop(2)
            assert cluster.outcomes[2] is None
            for i in (3, 4):
                assert isinstance(await cluster.wait_for_exit(i, timeout=60), NodeDownedError)
            state = await cluster.wait_for_convergence(timeout=60)
            await trio.sleep(10)
            assert cluster.is_running(0) and cluster.is_running(1)
        assert [m.node_id for m in state.up()] == ["node-0", "node-1"]
        for i in (0, 1):
            assert ("MemberLeft", "node-2") in seen[i], i
            assert ("MemberDowned", "node-2") not in seen[i], i
