"""ClusteredActorSystem.barrier on the simulated cluster: release together, reuse, errors."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
import trio

from casty_trio import BarrierTimeoutError, CastyError
from casty_trio.cluster._barrier import LEASE, RESEND_INTERVAL
from casty_trio.cluster._wire import (
    BarrierArrive,
    BarrierRelease,
    check_barrier_arrive,
    check_barrier_release,
)
from casty_trio.testing import TestCluster, open_test_cluster


async def _arrive(
    cluster: TestCluster, i: int, name: str, n: int, released: list[tuple[int, float]]
) -> None:
    await cluster.node(i).barrier(name, n, timeout=30)
    released.append((i, trio.current_time()))


async def test_participants_on_every_node_are_released_together(autojump_clock: Any) -> None:
    async with open_test_cluster(3, seed=1) as cluster:
        released: list[tuple[int, float]] = []
        async with trio.open_nursery() as nursery:
            for i in range(3):
                nursery.start_soon(_arrive, cluster, i, "start", 4, released)
                await trio.sleep(1.0)  # staggered arrivals
            assert released == []  # three of four arrived: nobody goes on
            await trio.sleep(2.0)
            assert released == []
            nursery.start_soon(_arrive, cluster, 1, "start", 4, released)
        assert sorted(i for i, _ in released) == [0, 1, 1, 2]
        times = [t for _, t in released]
        assert max(times) - min(times) < 0.1  # one round trip to the host and back


async def test_several_participants_on_one_node(autojump_clock: Any) -> None:
    async with open_test_cluster(2, seed=2) as cluster:
        released: list[tuple[int, float]] = []
        async with trio.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(_arrive, cluster, 1, "local", 3, released)
        assert [i for i, _ in released] == [1, 1, 1]


async def test_a_barrier_is_reusable(autojump_clock: Any) -> None:
    async with open_test_cluster(3, seed=3) as cluster:
        rounds: list[list[int]] = []

        async def worker(i: int, log: list[tuple[int, int]]) -> None:
            for r in range(3):
                await trio.sleep(0.1 * i * (r + 1))  # arrive in a different order each round
                await cluster.node(i).barrier("step", 3, timeout=30)
                log.append((r, i))

        log: list[tuple[int, int]] = []
        async with trio.open_nursery() as nursery:
            for i in range(3):
                nursery.start_soon(worker, i, log)
        for r in range(3):
            rounds.append(sorted(i for rr, i in log if rr == r))
        assert rounds == [[0, 1, 2]] * 3
        # rounds never mix: every participant finished round r before anyone finished r+1
        assert [rr for rr, _ in log] == sorted(rr for rr, _ in log)


async def test_a_different_n_fails_only_that_caller(autojump_clock: Any) -> None:
    async with open_test_cluster(3, seed=4) as cluster:
        released: list[tuple[int, float]] = []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_arrive, cluster, 0, "mixed", 2, released)
            await trio.sleep(0.5)
            with pytest.raises(ValueError, match="n=3 while its round in progress waits for n=2"):
                await cluster.node(1).barrier("mixed", 3, timeout=10)
            assert released == []  # the round goes on
            nursery.start_soon(_arrive, cluster, 2, "mixed", 2, released)
        assert sorted(i for i, _ in released) == [0, 2]


async def test_timeout_raises_barrier_timeout_error(autojump_clock: Any) -> None:
    async with open_test_cluster(2, seed=5) as cluster:
        start = trio.current_time()
        with pytest.raises(BarrierTimeoutError) as info:
            await cluster.node(1).barrier("lonely", 2, timeout=3)
        assert trio.current_time() - start == pytest.approx(3, abs=0.01)
        assert isinstance(info.value, TimeoutError)
        assert isinstance(info.value, CastyError)
        assert "lonely" in str(info.value)
        # the call that timed out no longer counts (once its withdrawal reached the host, one
        # link latency later): a new round needs two fresh participants
        await trio.sleep(0.1)
        released: list[tuple[int, float]] = []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_arrive, cluster, 0, "lonely", 2, released)
            await trio.sleep(2.0)
            assert released == []
            nursery.start_soon(_arrive, cluster, 1, "lonely", 2, released)
        assert sorted(i for i, _ in released) == [0, 1]


async def test_a_cancelled_call_is_withdrawn(autojump_clock: Any) -> None:
    async with open_test_cluster(2, seed=6) as cluster:
        with trio.move_on_after(1.0):
            await cluster.node(0).barrier("gate", 2, timeout=30)
        await trio.sleep(0.1)
        with pytest.raises(BarrierTimeoutError):
            await cluster.node(1).barrier("gate", 2, timeout=2)


async def test_bad_arguments_fail_at_once(autojump_clock: Any) -> None:
    async with open_test_cluster(1) as cluster:
        system = cluster.node(0)
        with pytest.raises(ValueError, match="at least one participant"):
            await system.barrier("x", 0)
        with pytest.raises(ValueError, match="non-empty"):
            await system.barrier("", 1)
        await system.barrier("alone", 1, timeout=5)  # n=1 releases at once


async def test_the_host_moves_when_the_oldest_member_leaves(autojump_clock: Any) -> None:
    async with open_test_cluster(3, seed=7) as cluster:
        released: list[tuple[int, float]] = []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_arrive, cluster, 1, "after", 2, released)
            await trio.sleep(0.5)
            await cluster.stop(0)  # node 0 was the host
            await cluster.wait_for_convergence()
            nursery.start_soon(_arrive, cluster, 2, "after", 2, released)
        assert sorted(i for i, _ in released) == [1, 2]


async def test_the_host_moves_when_the_oldest_member_crashes(autojump_clock: Any) -> None:
    async with open_test_cluster(3, seed=8) as cluster:
        released: list[tuple[int, float]] = []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_arrive, cluster, 1, "crash", 2, released)
            await trio.sleep(0.5)
            await cluster.kill(0)
            nursery.start_soon(_arrive, cluster, 2, "crash", 2, released)
        assert sorted(i for i, _ in released) == [1, 2]


def test_wire_checks() -> None:
    with pytest.raises(ValueError, match="empty name"):
        check_barrier_arrive(BarrierArrive("", 1, 1, None))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least 1"):
        check_barrier_arrive(BarrierArrive("a", 0, 1, None))  # type: ignore[arg-type]
    check_barrier_arrive(BarrierArrive("a", 0, 1, None, withdraw=True))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="characters"):
        check_barrier_release(BarrierRelease("a" * 300, 1, ""))
    with pytest.raises(ValueError, match="negative call id"):
        check_barrier_release(BarrierRelease("a", -5, ""))
    data = msgspec.msgpack.encode(BarrierRelease("a", 5, "no"))
    assert msgspec.msgpack.decode(data, type=BarrierRelease) == BarrierRelease("a", 5, "no")


async def test_a_call_that_gave_up_during_a_glitch_to_the_host_never_counts(
    autojump_clock: Any,
) -> None:
    # node 0 (the oldest member) hosts the round; the link 0-1 drops everything for 1 s around
    # the moment node 1's call times out, so its withdrawal never reaches the host
    async with open_test_cluster(3, seed=9) as cluster:
        start = trio.current_time()

        async def glitch() -> None:
            await trio.sleep(2.5)
            cluster.partition([0], [1])
            await trio.sleep(1.0)
            cluster.heal()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(glitch)
            with pytest.raises(BarrierTimeoutError):
                await cluster.node(1).barrier("b", 2, timeout=3)
        assert trio.current_time() - start == pytest.approx(3.5, abs=0.01)
        await trio.sleep(10.0)
        # one live participant of two: nobody goes on
        with pytest.raises(BarrierTimeoutError):
            await cluster.node(2).barrier("b", 2, timeout=3)


async def test_a_crashed_participant_stops_counting_when_its_lease_lapses(
    autojump_clock: Any,
) -> None:
    # the call on node 1 can neither withdraw nor renew once node 1 crashed; the cluster downs
    # node 1 only after detection and stable_after (5 s), but its lease lapses well before
    async with open_test_cluster(3, seed=10) as cluster:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_arrive, cluster, 1, "c", 2, [])
            await trio.sleep(0.5)
            await cluster.kill(1)  # cut off first: the cancellation's withdrawal goes nowhere
            nursery.cancel_scope.cancel()
        await trio.sleep(LEASE + RESEND_INTERVAL)
        state = await cluster.node(0).get_cluster_state()
        assert any(m.node_id == "node-1" for m in state.up())  # not downed yet
        with pytest.raises(BarrierTimeoutError):
            await cluster.node(2).barrier("c", 2, timeout=1)


async def test_a_waiting_call_outlives_a_glitch_longer_than_its_lease(autojump_clock: Any) -> None:
    # node 1's renewals are lost for 3 s (more than the lease): the host drops its arrival,
    # then counts it again at the first renewal after the heal
    async with open_test_cluster(3, seed=11) as cluster:
        released: list[tuple[int, float]] = []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_arrive, cluster, 1, "g", 2, released)
            await trio.sleep(0.2)
            cluster.partition([0], [1])
            await trio.sleep(3.0)
            cluster.heal()
            await trio.sleep(1.0)
            nursery.start_soon(_arrive, cluster, 2, "g", 2, released)
        assert sorted(i for i, _ in released) == [1, 2]
