"""open_test_cluster: whole clusters in one trio.run under autojump_clock."""

from __future__ import annotations

import doctest
import importlib
import random
import re
from collections import Counter
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio

from casty_trio import ClusteredActorSystem, MembershipTimeoutError, MsgpackSerializer, NodeAddress
from casty_trio.cluster import (
    ClusterSettings,
    LeaderChanged,
    MemberDowned,
    MemberLeft,
    MemberStatus,
    MemberUp,
    NodeDownedError,
    ReachableMember,
    UnreachableMember,
)
from casty_trio.testing import SimNetwork, TestCluster, TestProbe, open_test_cluster

MEMBER_EVENTS = (MemberUp, MemberLeft, MemberDowned, UnreachableMember, ReachableMember)
ALL_EVENTS = (*MEMBER_EVENTS, LeaderChanged)


def event_probe(system: ClusteredActorSystem, *types: type[Any]) -> TestProbe:
    """A probe subscribed to ``types`` (all cluster events by default) on ``system``."""
    probe = TestProbe(system)
    for event_type in types or ALL_EVENTS:
        system.event_stream.subscribe(event_type, probe.ref)
    return probe


async def drain(probe: TestProbe, *, quiet: float = 5.0) -> list[Any]:
    """Every message until the probe has been quiet for ``quiet`` seconds."""
    seen: list[Any] = []
    while True:
        with trio.move_on_after(quiet):
            seen.append(await probe.expect_message(within=quiet + 1))
            continue
        return seen


def up_ids(system: ClusteredActorSystem) -> list[str]:
    gossip = system.cluster_gossip()
    return sorted(m.node_id for m in gossip.sorted_members() if m.status is MemberStatus.up)


# --------------------------------------------------------------------------- formation


async def test_five_nodes_form_a_cluster(autojump_clock: Any) -> None:
    tasks_before = trio.lowlevel.current_statistics().tasks_living
    async with open_test_cluster(5, seed=1) as cluster:
        assert len(cluster) == 5
        assert isinstance(cluster.network, SimNetwork)
        assert [s.self_node for s in cluster.nodes] == [
            NodeAddress(f"node-{i}", 1) for i in range(5)
        ]
        assert [cluster.address(i) for i in range(5)] == [s.self_node for s in cluster.nodes]
        assert all(cluster.is_running(i) for i in range(5))
        assert cluster.outcomes == [None] * 5
        for system in cluster.nodes:
            state = await system.get_cluster_state()
            assert [m.node_id for m in state.up()] == [f"node-{i}" for i in range(5)]
            assert state.leader == NodeAddress("node-0", 1)
        state = await cluster.wait_for_convergence(timeout=10)
        assert len(state.up()) == 5 and not state.unreachable
        nodes = cluster.nodes
    # Leaving the block stopped every node gracefully and left no task behind.
    assert not any(cluster.is_running(i) for i in range(5))
    assert cluster.outcomes == [None] * 5
    assert trio.lowlevel.current_statistics().tasks_living == tasks_before
    assert [s.self_node.host for s in nodes] == [f"node-{i}" for i in range(5)]


async def test_wait_false_returns_before_up_and_roles_apply(autojump_clock: Any) -> None:
    roles = {0: ["frontend"], 2: {"backend", "worker"}}
    async with open_test_cluster(3, wait=False, roles=roles, name="shop") as cluster:
        assert all(cluster.is_running(i) for i in range(3))
        await cluster.wait_for_up(3, timeout=10)
        await cluster.wait_for_up(3, on=0, timeout=10)
        state = await cluster.wait_for_convergence(timeout=10)
        assert {m.node_id: m.roles for m in state.members} == {
            "node-0": frozenset({"frontend"}),
            "node-1": frozenset(),
            "node-2": frozenset({"backend", "worker"}),
        }
        assert cluster.node(1).name == "shop"


async def test_a_single_node_cluster(autojump_clock: Any) -> None:
    async with open_test_cluster(1) as cluster:
        assert up_ids(cluster.node(0)) == ["node-0"]


async def test_every_node_uses_the_serializer_given(autojump_clock: Any) -> None:
    @attrs.frozen
    class Order:  # as if defined in a script run as ``python app.py``
        n: int

    Order.__module__ = "__main__"
    Order.__qualname__ = "Order"
    serializer = MsgpackSerializer(types=[Order])
    async with open_test_cluster(2, serializer=serializer) as cluster:
        with TestProbe(cluster.node(1)) as probe:
            ref = cluster.node(0).lookup(probe.ref.path, node=cluster.address(1))
            assert ref is not None
            ref.tell(Order(7))  # sent only because every node registered it
            assert await probe.expect_message(Order, within=5) == Order(7)


async def test_bad_arguments(autojump_clock: Any) -> None:
    with pytest.raises(ValueError, match="at least one node"):
        async with open_test_cluster(0):
            pass
    with pytest.raises(ValueError, match="one collection of roles per node"):
        async with open_test_cluster(2, roles=[["a"]]):
            pass
    with pytest.raises(ValueError, match="not in a cluster of 2"):
        async with open_test_cluster(2, roles={2: ["a"]}):
            pass
    async with open_test_cluster(2) as cluster:
        with pytest.raises(IndexError):
            cluster.node(2)
        with pytest.raises(IndexError):
            cluster.partition([0], [5])
        with pytest.raises(ValueError, match="both sides"):
            cluster.partition([0], [0, 1])
        with pytest.raises(RuntimeError, match="running"):
            await cluster.restart(1)
        with pytest.raises(TimeoutError, match="node 1 still runs"):
            await cluster.wait_for_exit(1, timeout=1)
        with pytest.raises(MembershipTimeoutError, match="sees 2 of 3 members up") as info:
            await cluster.wait_for_up(3, timeout=2)
        assert isinstance(info.value, TimeoutError)
        assert (info.value.needed, info.value.up) == (3, 2)


async def test_timeout_while_forming(autojump_clock: Any) -> None:
    # No time at all to form: the nodes are stopped again and the timeout is raised.
    with pytest.raises(TimeoutError, match="members up"):
        async with open_test_cluster(3, wait=True, timeout=0.0):
            pass


async def test_the_block_ends_cleanly_on_error_and_on_cancel(autojump_clock: Any) -> None:
    tasks_before = trio.lowlevel.current_statistics().tasks_living
    with pytest.raises(KeyError):  # as is, not wrapped in an exception group
        async with open_test_cluster(2) as cluster:
            raise KeyError("boom")
    assert not cluster.is_running(0) and not cluster.is_running(1)
    with trio.move_on_after(5) as scope:
        async with open_test_cluster(3) as cluster:
            await trio.sleep_forever()
    assert scope.cancelled_caught
    assert not any(cluster.is_running(i) for i in range(3))
    assert trio.lowlevel.current_statistics().tasks_living == tasks_before
    with pytest.raises(RuntimeError, match="already entered"):
        async with cluster:
            pass


# --------------------------------------------------------------------------- leave, kill


async def test_graceful_stop_is_seen_as_a_leave(autojump_clock: Any) -> None:
    async with open_test_cluster(5, seed=2) as cluster:
        probes = [event_probe(cluster.node(i), MemberLeft, MemberDowned) for i in range(4)]
        await cluster.stop(4)
        assert not cluster.is_running(4)
        assert cluster.outcomes[4] is None
        for probe in probes:
            left = await probe.expect_message(MemberLeft, within=15)
            assert left.member.node_id == "node-4"
        state = await cluster.wait_for_convergence(timeout=10)
        assert [m.node_id for m in state.up()] == ["node-0", "node-1", "node-2", "node-3"]
        for probe in probes:
            await probe.expect_no_message(within=1)  # no MemberDowned
        await cluster.stop(4)  # stopping a stopped node does nothing


async def test_kill_is_unreachable_then_downed(autojump_clock: Any) -> None:
    async with open_test_cluster(5, seed=3) as cluster:
        probes = [event_probe(cluster.node(i), UnreachableMember, MemberDowned) for i in range(4)]
        victim = cluster.node(4).self_unique
        await cluster.kill(4)
        assert not cluster.is_running(4)
        assert cluster.network.is_killed(cluster.address(4))
        for probe in probes:
            unreachable = await probe.expect_message(UnreachableMember, within=15)
            assert unreachable.member.unique == victim
        for probe in probes:
            downed = await probe.expect_message(MemberDowned, within=15)
            assert downed.member.unique == victim
        state = await cluster.wait_for_convergence(timeout=10)
        assert [m.node_id for m in state.up()] == ["node-0", "node-1", "node-2", "node-3"]
        assert cluster.outcomes == [None] * 5  # a crash raises nothing in the node


async def test_partition_downs_the_minority_side(autojump_clock: Any) -> None:
    async with open_test_cluster(5, seed=4) as cluster:
        minority = {cluster.node(i).self_unique for i in (3, 4)}
        probes = [event_probe(cluster.node(i), MemberDowned) for i in range(3)]
        cluster.partition([0, 1, 2], [3, 4])
        for i in (3, 4):
            outcome = await cluster.wait_for_exit(i, timeout=30)
            assert isinstance(outcome, NodeDownedError)
            assert outcome.node == cluster.address(i)
            assert not cluster.is_running(i)
        for probe in probes:
            downed = [await probe.expect_message(MemberDowned, within=15) for _ in range(2)]
            assert {e.member.unique for e in downed} == minority
        state = await cluster.wait_for_convergence(timeout=10)
        assert [m.node_id for m in state.up()] == ["node-0", "node-1", "node-2"]
        outcomes = cluster.outcomes
        assert outcomes[:3] == [None, None, None]
        assert all(isinstance(o, NodeDownedError) for o in outcomes[3:])


async def test_heal_before_stable_after_downs_nobody(autojump_clock: Any) -> None:
    settings = ClusterSettings(stable_after=20.0)
    async with open_test_cluster(5, seed=5, cluster_settings=settings) as cluster:
        probe = event_probe(cluster.node(0), UnreachableMember, ReachableMember, MemberDowned)
        start = trio.current_time()
        cluster.partition([0, 1, 2], [3, 4])
        first = await probe.expect_message(UnreachableMember, within=10)
        assert first.member.node_id in ("node-3", "node-4")
        await trio.sleep(max(0.0, 3.0 - (trio.current_time() - start)))
        cluster.heal()
        events = await drain(probe, quiet=25.0)  # well past stable_after
        events.insert(0, first)
        assert not [e for e in events if isinstance(e, MemberDowned)]
        unreachable = Counter(e.member.node_id for e in events if type(e) is UnreachableMember)
        reachable = Counter(e.member.node_id for e in events if type(e) is ReachableMember)
        assert unreachable == reachable  # every unreachable member came back, once each
        assert {"node-3", "node-4"} <= set(reachable)
        assert cluster.outcomes == [None] * 5
        assert all(cluster.is_running(i) for i in range(5))
        state = await cluster.wait_for_convergence(timeout=10)
        assert len(state.up()) == 5


# --------------------------------------------------------------------------- restart


async def test_restart_after_the_old_incarnation_was_downed(autojump_clock: Any) -> None:
    async with open_test_cluster(3, seed=6) as cluster:
        probe = event_probe(cluster.node(0), MemberDowned, MemberUp)
        old = cluster.node(2).self_unique
        await cluster.kill(2)
        downed = await probe.expect_message(MemberDowned, within=30)
        assert downed.member.unique == old
        new_system = await cluster.restart(2)
        assert cluster.node(2) is new_system and cluster.is_running(2)
        assert not cluster.network.is_killed(cluster.address(2))
        new = new_system.self_unique
        assert new.node == old.node and new.uid != old.uid
        up = await probe.expect_message(MemberUp, within=15)
        assert up.member.unique == new
        state = await cluster.wait_for_convergence(timeout=15)
        assert {m.unique for m in state.up()} == {
            cluster.node(0).self_unique,
            cluster.node(1).self_unique,
            new,
        }
        old_member = cluster.node(0).cluster_gossip().member(old)
        assert old_member is None or old_member.status in (
            MemberStatus.down,
            MemberStatus.removed,
        )


async def test_restart_before_the_old_incarnation_was_downed(autojump_clock: Any) -> None:
    async with open_test_cluster(3, seed=7) as cluster:
        probe = event_probe(cluster.node(0), MemberDowned, MemberUp)
        old = cluster.node(1).self_unique
        await cluster.kill(1)
        new = (await cluster.restart(1)).self_unique  # at once: the join downs the old one
        assert new.uid != old.uid
        events = [await probe.expect_message(within=15) for _ in range(2)]
        assert {(type(e), e.member.unique) for e in events} == {
            (MemberDowned, old),
            (MemberUp, new),
        }
        await cluster.wait_for_up(3, timeout=15)
        state = await cluster.wait_for_convergence(timeout=15)
        assert new in {m.unique for m in state.up()}


async def test_restart_of_the_seed_joins_the_others(autojump_clock: Any) -> None:
    async with open_test_cluster(3, seed=8) as cluster:
        old = cluster.node(0).self_unique
        await cluster.stop(0)
        await cluster.restart(0)  # seeds are the running nodes: no second cluster is formed
        state = await cluster.wait_for_convergence(timeout=20)
        assert [m.node_id for m in state.up()] == ["node-0", "node-1", "node-2"]
        assert old not in {m.unique for m in state.members}
        assert state.leader == NodeAddress("node-0", 1)  # the lowest address leads again


# --------------------------------------------------------------------------- events


async def test_events_are_published_once_per_transition(autojump_clock: Any) -> None:
    async with open_test_cluster(5, seed=9) as cluster:
        probes = {i: event_probe(cluster.node(i)) for i in range(3)}
        downs = {i: event_probe(cluster.node(i), MemberDowned) for i in range(3)}
        left = cluster.node(3).self_unique
        crashed = cluster.node(4).self_unique
        await cluster.stop(3)
        await cluster.wait_for_convergence(timeout=15)
        await cluster.kill(4)
        for probe in downs.values():
            downed = await probe.expect_message(MemberDowned, within=30)
            assert downed.member.unique == crashed
        restarted = (await cluster.restart(4)).self_unique
        await cluster.wait_for_up(4, timeout=15)
        await cluster.wait_for_convergence(timeout=15)
        for i, probe in probes.items():
            events = await drain(probe, quiet=3.0)
            counts = Counter(events)
            assert max(counts.values()) == 1, (i, counts)  # nothing twice
            per_member = Counter(
                (type(e).__name__, e.member.unique) for e in events if hasattr(e, "member")
            )
            assert per_member[("MemberLeft", left)] == 1
            assert per_member[("MemberDowned", left)] == 0
            assert per_member[("UnreachableMember", crashed)] == 1
            assert per_member[("MemberDowned", crashed)] == 1
            assert per_member[("ReachableMember", crashed)] == 0
            assert per_member[("MemberUp", restarted)] == 1
            assert not [e for e in events if isinstance(e, LeaderChanged)]  # node-0 leads


async def test_every_transition_once_on_each_survivor(autojump_clock: Any) -> None:
    async with open_test_cluster(4, seed=10) as cluster:
        probes = [event_probe(cluster.node(i)) for i in range(3)]
        victim = cluster.node(3).self_unique
        await cluster.kill(3)
        for probe in probes:
            events = await drain(probe, quiet=10.0)
            assert [(type(e), e.member.unique) for e in events] == [
                (UnreachableMember, victim),
                (MemberDowned, victim),
            ]


# --------------------------------------------------------------------------- property


@pytest.mark.parametrize("seed", range(10))
async def test_kill_one_of_three_over_seeds(autojump_clock: Any, seed: int) -> None:
    rng = random.Random(seed)
    victim = rng.randrange(3)
    survivors = [i for i in range(3) if i != victim]
    async with open_test_cluster(3, seed=seed, latency=rng.choice([0.0, 0.001, 0.01])) as cluster:
        gone = cluster.node(victim).self_unique
        probes = [event_probe(cluster.node(i), MemberDowned) for i in survivors]
        await cluster.kill(victim)
        for probe in probes:
            downed = await probe.expect_message(MemberDowned, within=30)
            assert downed.member.unique == gone
        state = await cluster.wait_for_convergence(timeout=15)
        assert [m.node_id for m in state.up()] == [f"node-{i}" for i in survivors]
        assert state.leader == cluster.address(survivors[0])
        assert cluster.outcomes == [None, None, None]


def test_test_cluster_is_not_collected() -> None:
    assert TestCluster.__test__ is False


# --------------------------------------------------------------------------- the docs


DOCS = Path(__file__).resolve().parents[2] / "docs" / "testing.md"


def doc_tests() -> dict[str, Any]:
    """The test functions of the code blocks in the "Test clusters" section of the docs."""
    section = DOCS.read_text().split("## Test clusters", 1)[1].split("\n## ", 1)[0]
    namespace: dict[str, Any] = {}
    for block in re.findall(r"```python\n(.*?)```", section, re.S):
        exec(compile(block, str(DOCS), "exec"), namespace)
    return {name: f for name, f in namespace.items() if name.startswith("test_")}


def test_the_docs_show_three_tests() -> None:
    assert sorted(doc_tests()) == [
        "test_a_crash_is_downed",
        "test_heal_in_time",
        "test_the_minority_downs_itself",
    ]


@pytest.mark.parametrize("name", sorted(doc_tests()))
async def test_docs_example(autojump_clock: Any, name: str) -> None:
    await doc_tests()[name](autojump_clock)


def test_docstring_examples() -> None:
    result = doctest.testmod(
        importlib.import_module("casty_trio.testing._cluster"), optionflags=doctest.ELLIPSIS
    )
    assert result.failed == 0
    assert result.attempted > 0


async def test_same_seed_replays_the_same_cluster(autojump_clock: Any) -> None:
    """Incarnations come from the seed, so two runs with one seed build identical members."""

    async def members(seed: int) -> list[tuple[str, int, str]]:
        async with open_test_cluster(3, seed=seed) as cluster:
            state = await cluster.wait_for_convergence()
            return [(m.node_id, m.unique.uid, m.status.value) for m in state.members]

    assert await members(11) == await members(11)
    assert await members(11) != await members(12)
