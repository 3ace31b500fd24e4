"""Promotions: the failover decisions of the coordinator (pure; property-tested)."""

from __future__ import annotations

import doctest
import random

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from casty_trio import NodeAddress
from casty_trio.sharding.replication import _promotion
from casty_trio.sharding.replication._promotion import (
    AllocateAfresh,
    Promote,
    PromotionAction,
    Promotions,
    Query,
)

_NODES = [NodeAddress("10.0.0.1", 25520 + k) for k in range(5)]
_TIMEOUT = 2.0
_DELAYS = st.sampled_from([0.0, 0.5, 1.0])

candidate_sets = st.lists(st.sampled_from(_NODES), min_size=1, max_size=5, unique=True)


def test_docstrings() -> None:
    result = doctest.testmod(_promotion)
    assert result.failed == 0 and result.attempted > 0


def _queried(promotions: Promotions, shard: int, candidates: list[NodeAddress]) -> Query:
    (query,) = promotions.lost_primary(shard, candidates, now=0.0, delay=0.0)
    assert isinstance(query, Query)
    return query


@given(st.dictionaries(st.sampled_from(_NODES), st.integers(0, 3), min_size=1), st.randoms())
def test_the_replica_holding_the_most_becomes_primary_ties_to_the_lowest_address(
    holdings: dict[NodeAddress, int], rnd: random.Random
) -> None:
    promotions = Promotions(query_timeout=_TIMEOUT)
    query = _queried(promotions, 3, list(holdings))
    order = list(holdings)
    rnd.shuffle(order)
    actions: list[PromotionAction] = []
    for node in order:
        assert not actions  # nothing is decided before the last answer
        actions = promotions.holdings(node, 3, query.round, holdings[node])
    (promote,) = actions
    assert isinstance(promote, Promote)
    most = max(holdings.values())
    assert promote.primary == min(n for n, total in holdings.items() if total == most)
    assert promote.sources == tuple(sorted(n for n in holdings if n != promote.primary))
    assert dict(promote.holdings) == holdings
    assert 3 not in promotions


@given(
    candidate_sets,
    st.lists(st.tuples(st.sampled_from(_NODES), st.integers(0, 5), st.integers(0, 9))),
    st.floats(0.0, 3.0),
)
def test_a_promotion_never_picks_a_node_not_among_the_candidates(
    candidates: list[NodeAddress], answers: list[tuple[NodeAddress, int, int]], wait: float
) -> None:
    promotions = Promotions(query_timeout=_TIMEOUT)
    query = _queried(promotions, 0, candidates)
    actions: list[PromotionAction] = []
    for node, round_offset, total in answers:
        actions += promotions.holdings(node, 0, query.round + round_offset, total)
    actions += promotions.tick(wait)
    actions += promotions.tick(_TIMEOUT)
    (end,) = actions
    if isinstance(end, Promote):
        assert end.primary in candidates
        assert set(end.sources) <= set(candidates)
    else:
        assert isinstance(end, AllocateAfresh)
        assert end.sources == tuple(sorted(candidates))


@given(candidate_sets, st.lists(st.integers(0, 9), min_size=1))
def test_answers_from_an_old_round_are_ignored(
    candidates: list[NodeAddress], totals: list[int]
) -> None:
    promotions = Promotions(query_timeout=_TIMEOUT)
    old = _queried(promotions, 5, candidates)
    new = _queried(promotions, 5, candidates)  # the shard lost its primary again
    assert new.round != old.round
    for node, total in zip(candidates, totals, strict=False):
        assert promotions.holdings(node, 5, old.round, total) == []
    assert promotions.tick(_TIMEOUT) == [AllocateAfresh(5, tuple(sorted(candidates)))]


@given(candidate_sets, _DELAYS)
def test_a_timeout_with_no_answer_allocates_afresh(
    candidates: list[NodeAddress], delay: float
) -> None:
    promotions = Promotions(query_timeout=_TIMEOUT)
    promotions.lost_primary(1, candidates, now=10.0, delay=delay)
    if delay > 0:
        assert promotions.tick(10.0 + delay / 2) == []
        assert [type(a) for a in promotions.tick(10.0 + delay)] == [Query]
    assert promotions.tick(10.0 + delay + _TIMEOUT / 2) == []
    assert promotions.tick(10.0 + delay + _TIMEOUT) == [
        AllocateAfresh(1, tuple(sorted(candidates)))
    ]
    assert 1 not in promotions and promotions.next_deadline() is None


@given(candidate_sets, st.data())
def test_replicas_that_leave_are_not_waited_for(
    candidates: list[NodeAddress], data: st.DataObject
) -> None:
    promotions = Promotions(query_timeout=_TIMEOUT)
    query = _queried(promotions, 2, candidates)
    answered = data.draw(st.lists(st.sampled_from(candidates), unique=True))
    held = data.draw(st.sets(st.sampled_from(_NODES)))
    for node in answered:
        promotions.holdings(node, 2, query.round, 1)
    if set(answered) >= set(candidates):
        return  # it ended with the last answer
    actions = promotions.members_changed(held)
    remaining = set(candidates) & held
    if not remaining:
        assert actions == [AllocateAfresh(2, ())]
    elif remaining <= set(answered):
        (promote,) = actions
        assert isinstance(promote, Promote)
        assert promote.primary in remaining
        assert {n for n, _ in promote.holdings} == remaining
    else:
        assert actions == [] and 2 in promotions


def test_a_promotion_needs_a_candidate() -> None:
    with pytest.raises(ValueError, match="no replica"):
        Promotions(query_timeout=_TIMEOUT).lost_primary(1, [], now=0.0, delay=0.0)


# ---------------------------------------------------------------------------- random runs


@attrs.define
class _Expected:
    """What the test knows of one promotion under way."""

    start_at: float
    candidates: set[NodeAddress]
    round: int | None = None
    answers: dict[NodeAddress, int] = attrs.Factory(dict)


_events = st.lists(
    st.one_of(
        st.tuples(st.just("lose"), st.integers(0, 3), candidate_sets, _DELAYS),
        st.tuples(
            st.just("answer"),
            st.sampled_from(_NODES),
            st.integers(0, 3),
            st.integers(-1, 1),
            st.integers(0, 4),
        ),
        st.tuples(st.just("advance"), st.floats(0.0, 1.5)),
        st.tuples(st.just("leave"), st.sampled_from(_NODES)),
    ),
    max_size=40,
)


@given(_events)
def test_every_promotion_ends_by_its_deadline_with_a_sound_decision(
    events: list[tuple[object, ...]],
) -> None:
    promotions = Promotions(query_timeout=_TIMEOUT)
    now = 0.0
    live = set(_NODES)
    expected: dict[int, _Expected] = {}
    rounds: dict[int, int] = {}  # the last round each shard was queried in

    def check(actions: list[PromotionAction]) -> None:
        for action in actions:
            mine = expected.get(action.shard)
            assert mine is not None, f"{action} for a shard not being promoted"
            if isinstance(action, Query):
                assert mine.round is None and now >= mine.start_at
                assert action.nodes == tuple(sorted(mine.candidates))
                mine.round = rounds[action.shard] = action.round
                continue
            del expected[action.shard]
            # every promotion ends by its deadline (the test ticks at next_deadline)
            assert now <= mine.start_at + _TIMEOUT
            if isinstance(action, Promote):
                assert mine.round is not None
                assert action.primary in mine.candidates and action.primary in live
                assert dict(action.holdings) == mine.answers
                most = max(mine.answers.values())
                assert action.primary == min(n for n, t in mine.answers.items() if t == most)
                assert set(action.sources) == set(mine.answers) - {action.primary}
            else:
                assert not mine.answers
                assert action.sources == tuple(sorted(mine.candidates))
            assert action.shard not in promotions

    def advance(to: float) -> None:
        nonlocal now
        while (at := promotions.next_deadline()) is not None and at <= to:
            now = max(now, at)
            check(promotions.tick(now))
        now = to
        check(promotions.tick(now))

    for event in events:
        kind = event[0]
        if kind == "lose":
            _, shard, nodes, delay = event
            assert isinstance(shard, int) and isinstance(nodes, list)
            assert isinstance(delay, float)
            candidates = [n for n in nodes if n in live]
            if not candidates:
                continue
            expected[shard] = _Expected(now + delay, set(candidates))
            check(promotions.lost_primary(shard, candidates, now, delay))
        elif kind == "answer":
            _, node, shard, offset, total = event
            assert isinstance(node, NodeAddress) and isinstance(shard, int)
            assert isinstance(offset, int) and isinstance(total, int)
            round_ = rounds.get(shard, 1) + offset
            mine = expected.get(shard)
            if (
                mine is not None
                and mine.round == round_
                and node in mine.candidates
                and node in live
            ):
                mine.answers[node] = total
            check(promotions.holdings(node, shard, round_, total))
        elif kind == "advance":
            assert isinstance(event[1], float)
            advance(now + event[1])
        else:
            node = event[1]
            live.discard(node)  # type: ignore[arg-type]
            for mine in expected.values():
                mine.candidates &= live
                mine.answers.pop(node, None)  # type: ignore[call-overload]
            check(promotions.members_changed(live))
        for shard, mine in expected.items():
            assert shard in promotions
            # once every replica asked has answered, it ends at once
            assert mine.round is None or not mine.answers.keys() >= mine.candidates
    advance(now + 1.0 + _TIMEOUT)
    assert not expected and len(promotions) == 0 and promotions.next_deadline() is None
