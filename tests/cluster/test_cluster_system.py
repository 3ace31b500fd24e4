"""ClusteredActorSystem on the simulated network: formation, leave, failure and downing."""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any

import pytest
import trio

from casty_trio import ClusteredActorSystem, MembershipTimeoutError, NodeAddress
from casty_trio.cluster import MemberDowned, MemberLeft, MemberUp, NodeDownedError
from casty_trio.testing import SimNetwork


def node(net: SimNetwork, i: int, seeds: list[NodeAddress]) -> ClusteredActorSystem:
    return ClusteredActorSystem(
        name="app",
        host=f"n{i}",
        port=1,
        node_id=f"node-{i}",
        seed_nodes=seeds,
        transport=net.transport(f"n{i}", 1),
    )


async def test_three_nodes_form_a_cluster(autojump_clock: Any) -> None:
    net = SimNetwork(seed=3, latency=0.002)
    seed = NodeAddress("n0", 1)
    async with AsyncExitStack() as stack:
        systems = [await stack.enter_async_context(node(net, i, [seed])) for i in range(3)]
        for system in systems:
            state = await system.wait_for(3, timeout=10)
            assert {m.node_id for m in state.up()} == {"node-0", "node-1", "node-2"}
            assert state.leader == NodeAddress("n0", 1)


async def test_wait_for_times_out_with_how_many_members_are_up(autojump_clock: Any) -> None:
    net = SimNetwork(seed=3, latency=0.002)
    seed = NodeAddress("n0", 1)
    async with node(net, 0, [seed]) as system:
        await system.wait_for(1, timeout=10)
        start = trio.current_time()
        with pytest.raises(MembershipTimeoutError, match="only 1 of 2 members up") as info:
            await system.wait_for(2, timeout=3)
        assert trio.current_time() - start == pytest.approx(3)
        assert isinstance(info.value, TimeoutError)
        assert (info.value.needed, info.value.up) == (2, 1)


async def test_required_quorum_not_reached_raises_on_entering(autojump_clock: Any) -> None:
    net = SimNetwork(seed=3, latency=0.002)
    system = ClusteredActorSystem(
        name="app",
        host="n0",
        port=1,
        node_id="node-0",
        seed_nodes=[NodeAddress("n0", 1)],
        transport=net.transport("n0", 1),
        required_quorum=2,
    )
    with trio.fail_after(120), pytest.raises(MembershipTimeoutError) as info:
        async with system:
            pass
    assert (info.value.needed, info.value.up) == (2, 1)


async def test_graceful_leave_is_seen_as_a_leave(autojump_clock: Any) -> None:
    net = SimNetwork(seed=4, latency=0.002)
    seed = NodeAddress("n0", 1)
    async with AsyncExitStack() as stack:
        a = await stack.enter_async_context(node(net, 0, [seed]))
        b = await stack.enter_async_context(node(net, 1, [seed]))
        await a.wait_for(2, timeout=10)
        async with a.event_stream.subscription(MemberLeft) as left:
            async with node(net, 2, [seed]) as c:
                await c.wait_for(3, timeout=10)
            with trio.fail_after(10):
                event = await left.receive()
        assert event.member.node_id == "node-2"
        with trio.fail_after(10):
            while len((await b.get_cluster_state()).members) != 2:
                await trio.sleep(0.1)


async def run_node(
    net: SimNetwork,
    i: int,
    seeds: list[NodeAddress],
    systems: dict[int, ClusteredActorSystem],
    outcome: dict[int, BaseException | None],
    entered: trio.Event,
) -> None:
    """One node in its own task, as a node runs in its own process: a downed node's block
    ends (cancelled) and raises NodeDownedError without touching the other nodes."""
    try:
        async with node(net, i, seeds) as system:
            systems[i] = system
            entered.set()
            await trio.sleep_forever()
    except NodeDownedError as exc:
        outcome[i] = exc


async def test_killed_node_is_downed_by_the_majority(autojump_clock: Any) -> None:
    net = SimNetwork(seed=5, latency=0.002)
    seed = NodeAddress("n0", 1)
    outcome: dict[int, BaseException | None] = {}
    systems: dict[int, ClusteredActorSystem] = {}
    async with trio.open_nursery() as nursery:
        for i in range(3):
            entered = trio.Event()
            nursery.start_soon(run_node, net, i, [seed], systems, outcome, entered)
            await entered.wait()
        await systems[0].wait_for(3, timeout=10)
        async with systems[0].event_stream.subscription(MemberDowned) as downed:
            net.kill(NodeAddress("n2", 1))
            with trio.fail_after(30):
                event = await downed.receive()
        assert event.member.node_id == "node-2"
        with trio.fail_after(30):
            while 2 not in outcome:  # the isolated node downs itself (minority side)
                await trio.sleep(0.5)
        state = await systems[1].get_cluster_state()
        assert {m.node_id for m in state.up()} == {"node-0", "node-1"}
        nursery.cancel_scope.cancel()
    assert isinstance(outcome[2], NodeDownedError)
    assert 0 not in outcome and 1 not in outcome


async def test_events_are_published_once(autojump_clock: Any) -> None:
    net = SimNetwork(seed=6, latency=0.002)
    seed = NodeAddress("n0", 1)
    async with node(net, 0, [seed]) as a:
        async with a.event_stream.subscription(MemberUp) as ups, node(net, 1, [seed]) as b:
            await b.wait_for(2, timeout=10)
            await trio.sleep(2)
            seen = []
            while True:
                try:
                    seen.append(ups.receive_nowait().member.node_id)
                except trio.WouldBlock:
                    break
        assert seen == ["node-0", "node-1"]  # each member up exactly once, in order
    assert a.cluster_gossip().member(a.self_unique) is not None


async def test_a_cluster_forms_within_a_few_round_trips(autojump_clock: Any) -> None:
    # Status changes are pushed to every member at once: forming does not wait for gossip
    # rounds (0.2 s each, to a random member). 5 ms of latency per hop.
    from casty_trio.testing import open_test_cluster

    start = trio.current_time()
    async with open_test_cluster(5, seed=11, latency=0.005) as cluster:
        formed = trio.current_time() - start
        assert formed < 0.15, formed
        state = await cluster.wait_for_convergence()
        assert len(state.up()) == 5
