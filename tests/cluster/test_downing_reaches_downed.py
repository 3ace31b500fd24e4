"""A downing decision reaches the members it downs: a downed side shuts down together.

The gossip that marks members down is pushed to those members too, and re-sent every heartbeat
interval until they acknowledge it or ``ClusterSettings.down_notice_window`` passes; a node that
downs itself stays until then. So the members of a losing side exit within about one round trip
of their leader's decision, not one failure detection plus one ``stable_after`` each.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
import trio

from casty_trio.cluster import ClusterSettings, NodeDownedError
from casty_trio.testing import open_test_cluster

FAST = ClusterSettings(
    heartbeat_interval=0.1,
    threshold=4.0,
    min_std_deviation=0.05,
    first_heartbeat_estimate=0.1,
    stable_after=0.5,
)


@pytest.fixture(autouse=True)
def _quiet(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.CRITICAL, logger="casty_trio")


async def _exit_times(cluster: Any, indices: list[int]) -> dict[int, float]:
    times: dict[int, float] = {}

    async def wait(i: int) -> None:
        outcome = await cluster.wait_for_exit(i, timeout=120)
        assert isinstance(outcome, NodeDownedError), (i, outcome)
        times[i] = trio.current_time()

    async with trio.open_nursery() as nursery:
        for i in indices:
            nursery.start_soon(wait, i)
    return times


@pytest.mark.parametrize("settings", [None, FAST], ids=["defaults", "fast"])
@pytest.mark.parametrize("seed", range(3))
async def test_a_downed_minority_exits_together(
    autojump_clock: Any, seed: int, settings: ClusterSettings | None
) -> None:
    bound = (settings or ClusterSettings()).down_notice_window
    async with open_test_cluster(7, seed=seed, cluster_settings=settings) as cluster:
        cluster.partition([0, 1, 2, 3], [4, 5, 6])
        times = await _exit_times(cluster, [4, 5, 6])
        assert max(times.values()) - min(times.values()) <= bound, times
        state = await cluster.wait_for_convergence(timeout=60)
        assert [m.node_id for m in state.up()] == ["node-0", "node-1", "node-2", "node-3"]


async def test_a_downed_side_hears_it_despite_message_loss(autojump_clock: Any) -> None:
    # Within the minority half the messages are lost: the decision's first push may be lost,
    # its re-sends carry it.
    for seed in range(6):
        async with open_test_cluster(5, seed=seed) as cluster:
            network = cluster.network
            network.set_loss(cluster.address(3), cluster.address(4), 0.3)
            cluster.partition([0, 1, 2], [3, 4])
            times = await _exit_times(cluster, [3, 4])
            window = ClusterSettings().down_notice_window
            assert max(times.values()) - min(times.values()) <= window, (seed, times)
