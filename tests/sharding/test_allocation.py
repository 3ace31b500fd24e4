"""LeastShardAllocation: pure placement and rebalancing decisions."""

from __future__ import annotations

import doctest

from hypothesis import given
from hypothesis import strategies as st

from casty_trio import NodeAddress
from casty_trio.sharding import _allocation
from casty_trio.sharding._allocation import LeastShardAllocation, place_replicas

NODES = [NodeAddress(f"n{i}", 1) for i in range(6)]


def test_docstrings() -> None:
    result = doctest.testmod(_allocation, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


allocations = st.integers(min_value=1, max_value=6).flatmap(
    lambda n: st.lists(st.integers(0, n - 1), max_size=120).map(
        lambda owners: {
            NODES[i]: {shard for shard, owner in enumerate(owners) if owner == i} for i in range(n)
        }
    )
)


@given(allocations, st.integers(1, 3), st.integers(1, 20))
def test_rebalance_moves_only_from_overloaded_nodes_within_budget(
    current: dict[NodeAddress, set[int]], threshold: int, budget: int
) -> None:
    strategy = LeastShardAllocation(threshold=threshold, max_simultaneous=budget)
    moves = strategy.rebalance(current, in_progress=())
    assert len(moves) <= budget
    counts = {node: len(shards) for node, shards in current.items()}
    least = min(counts.values())
    for shard in moves:
        owner = next(node for node, shards in current.items() if shard in shards)
        assert counts[owner] - least > threshold


@given(allocations, st.integers(1, 3))
def test_repeated_rebalancing_converges_within_threshold(
    current: dict[NodeAddress, set[int]], threshold: int
) -> None:
    strategy = LeastShardAllocation(threshold=threshold, max_simultaneous=5)
    state = {node: set(shards) for node, shards in current.items()}
    for _ in range(200):
        moves = strategy.rebalance(state, in_progress=())
        if not moves:
            break
        for shard in moves:
            for shards in state.values():
                shards.discard(shard)
            state[strategy.allocate(shard, NODES[0], state)].add(shard)
    counts = [len(shards) for shards in state.values()]
    assert max(counts) - min(counts) <= threshold
    assert sum(counts) == sum(len(s) for s in current.values())


@given(allocations)
def test_allocate_picks_a_least_loaded_node(current: dict[NodeAddress, set[int]]) -> None:
    node = LeastShardAllocation().allocate(999, NODES[0], current)
    assert len(current[node]) == min(len(s) for s in current.values())


def test_shards_in_progress_count_against_the_budget() -> None:
    a, b = NODES[:2]
    strategy = LeastShardAllocation(threshold=1, max_simultaneous=3)
    assert strategy.rebalance({a: set(range(10)), b: set()}, in_progress=(1, 2, 3)) == set()
    assert len(strategy.rebalance({a: set(range(10)), b: set()}, in_progress=(1,))) == 2


def test_a_threshold_below_one_is_refused() -> None:
    import pytest

    with pytest.raises(ValueError, match="threshold"):
        LeastShardAllocation(threshold=0)


@given(
    st.sampled_from(NODES),
    st.lists(st.sampled_from(NODES), max_size=4),
    st.sets(st.sampled_from(NODES)),
    st.dictionaries(st.sampled_from(NODES), st.integers(0, 10)),
    st.integers(0, 4),
)
def test_replicas_are_distinct_keep_the_filled_ones_and_top_up_least_loaded(
    primary: NodeAddress,
    current: list[NodeAddress],
    candidates: set[NodeAddress],
    load: dict[NodeAddress, int],
    count: int,
) -> None:
    chosen = place_replicas(primary, current, candidates, load, count)
    assert primary not in chosen
    assert len(set(chosen)) == len(chosen)
    assert set(chosen) <= candidates
    assert len(chosen) == min(count, len(candidates - {primary}))
    kept = [n for n in dict.fromkeys(current) if n != primary and n in candidates][:count]
    assert list(chosen[: len(kept)]) == kept
    added = chosen[len(kept) :]
    spare = candidates - {primary} - set(chosen)
    for node in added:
        for other in spare:
            assert (load.get(node, 0), node) <= (load.get(other, 0), other)


def test_replication_docstrings() -> None:
    from casty_trio.sharding.replication import _messages as _replication_messages
    from casty_trio.sharding.replication import _replication

    for module in (_replication, _replication_messages):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.failed == 0 and result.attempted > 0, module.__name__
