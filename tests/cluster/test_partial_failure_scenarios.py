"""Membership under partial failures, on the simulated network: cut links, stale reachability
records, crashes during a cut, skewed failure detection.

Each scenario checks the outcome the split-brain resolver promises (see ``docs/cluster.md``,
"What happens when..."), and, while it runs, two invariants sampled every 0.25 s: no two
running nodes each consider the other gone while considering themselves members (two
clusters), and every running member sees a leader.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio

from casty_trio.cluster import ClusterSettings, ClusterState, MemberStatus, NodeDownedError
from casty_trio.testing import TestCluster, open_test_cluster

# The fast failure-detection profile of docs/configuration.md.
FAST = ClusterSettings(
    heartbeat_interval=0.1,
    threshold=4.0,
    min_std_deviation=0.05,
    first_heartbeat_estimate=0.1,
    stable_after=0.5,
)

_GONE = (MemberStatus.down, MemberStatus.removed)


async def states(cluster: TestCluster) -> dict[int, ClusterState]:
    return {
        i: await cluster.node(i).get_cluster_state()
        for i in range(len(cluster))
        if cluster.is_running(i)
    }


def is_member(state: ClusterState, cluster: TestCluster, i: int) -> bool:
    """Whether node ``i``'s current incarnation is a member (not down or removed) in ``state``."""
    unique = cluster.node(i).self_unique
    return any(m.unique == unique and m.status not in _GONE for m in state.members)


def check_invariants(cluster: TestCluster, views: dict[int, ClusterState]) -> None:
    for a, view_a in views.items():
        if not is_member(view_a, cluster, a):
            continue  # downed, on its way out
        assert view_a.leader is not None, f"node {a} sees no leader: {view_a}"
        for b, view_b in views.items():
            if b > a and is_member(view_b, cluster, b):
                assert is_member(view_a, cluster, b) or is_member(view_b, cluster, a), (
                    f"two clusters: node {a} and node {b} each see the other gone"
                )


async def watch(cluster: TestCluster, seconds: float) -> None:
    """Check the invariants every 0.25 s for ``seconds``."""
    deadline = trio.current_time() + seconds
    while trio.current_time() < deadline:
        check_invariants(cluster, await states(cluster))
        await trio.sleep(0.25)


def up_ids(state: ClusterState) -> list[str]:
    return sorted(m.node_id for m in state.up())


async def test_one_cut_link_in_three_keeps_the_fully_connected_node(autojump_clock: Any) -> None:
    async with open_test_cluster(3, seed=1) as cluster:
        cluster.partition(0, 1)  # nodes 0 and 1 both still reach node 2
        await watch(cluster, 20.0)
        state = await cluster.wait_for_convergence(timeout=30)
        assert cluster.is_running(2)
        assert "node-2" in up_ids(state) and state.leader is not None
        # The cut itself is resolved: 0 and 1 are not both members any more.
        assert not (cluster.is_running(0) and cluster.is_running(1))


async def test_one_cut_link_in_four_keeps_the_fully_connected_nodes(autojump_clock: Any) -> None:
    async with open_test_cluster(4, seed=2) as cluster:
        cluster.partition(0, 1)
        await watch(cluster, 20.0)
        state = await cluster.wait_for_convergence(timeout=30)
        assert cluster.is_running(2) and cluster.is_running(3)
        assert {"node-2", "node-3"} <= set(up_ids(state))
        assert not (cluster.is_running(0) and cluster.is_running(1))


@pytest.mark.parametrize("glitch", [3.0, 3.4])
async def test_a_stale_record_from_a_glitch_does_not_sway_a_later_split(
    autojump_clock: Any, glitch: float
) -> None:
    async with open_test_cluster(5, seed=3) as cluster:
        # Node 4 reports node 0 unreachable during a glitch; that record is still in the
        # majority's gossip when node 4 ends up on the other side of a clean split.
        cluster.partition(0, 4)
        await trio.sleep(glitch)
        cluster.heal()
        await trio.sleep(3.5 - glitch)
        cluster.partition([0, 1, 2], [3, 4])
        await watch(cluster, 15.0)
        for i in (3, 4):
            assert isinstance(await cluster.wait_for_exit(i, timeout=30), NodeDownedError)
        state = await cluster.wait_for_convergence(timeout=30)
        assert up_ids(state) == ["node-0", "node-1", "node-2"]
        assert state.leader is not None


@pytest.mark.parametrize("seed", [1, 3, 5])
@pytest.mark.parametrize("n", [3, 4])
async def test_a_crash_behind_a_cut_link_leaves_no_survivor_stuck(
    autojump_clock: Any, n: int, seed: int
) -> None:
    async with open_test_cluster(n, seed=seed) as cluster:
        cluster.partition(0, 1)
        await trio.sleep(4.0)  # both have reported the other unreachable
        await cluster.kill(0)  # node 0's last record ("1 is unreachable") can never change
        await trio.sleep(3.0)
        cluster.heal()
        await watch(cluster, 10.0)
        state = await cluster.wait_for_convergence(timeout=30)
        survivors = [f"node-{i}" for i in range(n) if cluster.is_running(i)]
        assert up_ids(state) == survivors == [f"node-{i}" for i in range(1, n)]
        assert not state.unreachable and state.leader is not None


@pytest.mark.parametrize("seed", range(8))
async def test_skewed_detection_never_lets_the_minority_survive(
    autojump_clock: Any, seed: int
) -> None:
    async with open_test_cluster(5, seed=seed, cluster_settings=FAST) as cluster:
        # Heavy loss between node 2 and nodes 3 and 4: their detectors learn a wide spread of
        # heartbeat intervals and notice node 2's silence late, so after the split [0,1,2]|[3,4]
        # the minority sees 0 and 1 go first (a 3 vs 2 view that must not be acted on).
        for other in (3, 4):
            cluster.network.set_loss(cluster.address(2), cluster.address(other), 0.5)
        await trio.sleep(10.0)
        cluster.partition([0, 1, 2], [3, 4])
        await watch(cluster, 20.0)
        assert not cluster.is_running(3) and not cluster.is_running(4)
        for other in (3, 4):
            cluster.network.set_loss(cluster.address(2), cluster.address(other), None)
        if any(cluster.is_running(i) for i in range(5)):
            state = await cluster.wait_for_convergence(timeout=30)
            assert state.leader is not None
            assert set(up_ids(state)) <= {"node-0", "node-1", "node-2"}
