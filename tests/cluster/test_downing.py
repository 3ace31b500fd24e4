"""Split-brain resolver decisions and the stable-after clock: pure, property-tested."""

from __future__ import annotations

import doctest
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from casty_trio._core import NodeAddress
from casty_trio.cluster import _downing
from casty_trio.cluster._downing import (
    Decision,
    DecisionKind,
    DownAll,
    DowningInput,
    DowningStrategy,
    KeepMajority,
    StableAfter,
    StaticQuorum,
    make_strategy,
)

Side = frozenset[int]

#: Small search spaces: fewer examples keep the module fast without losing much.
quick = settings(max_examples=40)


@st.composite
def partitions(draw: st.DrawFn, max_size: int = 9) -> tuple[Side, Side]:
    """Members 0..n-1 split into two non-empty sides."""
    n = draw(st.integers(2, max_size))
    members = draw(st.permutations(range(n)))
    cut = draw(st.integers(1, n - 1))
    return frozenset(members[:cut]), frozenset(members[cut:])


def view_from(
    side: Side,
    other: Side,
    *,
    self_member: int | None = None,
    roles: dict[int, frozenset[str]] | None = None,
    joining: Side = frozenset(),
    leaving: Side = frozenset(),
) -> DowningInput[int]:
    """The view of a node on ``side``, every member of ``other`` unreachable."""
    everyone = side | other
    return DowningInput(
        members=everyone - joining,
        unreachable=other,
        self_member=min(side) if self_member is None else self_member,
        joining=joining & everyone,
        leaving=leaving,
        roles=roles or {},
    )


def both_sides(
    strategy: DowningStrategy, a: Side, b: Side, **kwargs: object
) -> tuple[Decision[int], Decision[int]]:
    return (
        strategy.decide(view_from(a, b, **kwargs)),  # type: ignore[arg-type]
        strategy.decide(view_from(b, a, **kwargs)),  # type: ignore[arg-type]
    )


def test_docstring_examples() -> None:
    result = doctest.testmod(_downing, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


# --- DowningInput ------------------------------------------------------------------------


def test_input_ignores_unknown_and_self_in_unreachable() -> None:
    view = DowningInput(
        members=frozenset({1, 2, 3}),
        unreachable=frozenset({1, 3, 42}),
        self_member=1,
        leaving=frozenset({2, 77}),
    )
    assert view.unreachable == frozenset({3})
    assert view.leaving == frozenset({2})
    assert view.reachable == frozenset({1, 2})


def test_input_refuses_a_self_that_is_not_a_member() -> None:
    with pytest.raises(ValueError, match="self_member"):
        DowningInput(members=frozenset({1, 2}), unreachable=frozenset(), self_member=3)


def test_input_refuses_members_that_are_also_joining() -> None:
    with pytest.raises(ValueError, match="joining"):
        DowningInput(
            members=frozenset({1, 2}),
            unreachable=frozenset(),
            self_member=1,
            joining=frozenset({2}),
        )


def test_input_is_a_frozen_hashable_value_with_frozen_roles() -> None:
    roles = {1: frozenset({"a"})}
    view = DowningInput(
        members=frozenset({1, 2}), unreachable=frozenset({2}), self_member=1, roles=roles
    )
    roles[2] = frozenset({"a"})  # the caller's dict is copied
    assert view.with_role(view.members, "a") == frozenset({1})
    same = DowningInput(
        members=frozenset({2, 1}),
        unreachable=frozenset({2}),
        self_member=1,
        roles={1: frozenset({"a"})},
    )
    assert view == same and hash(view) == hash(same)
    with pytest.raises(AttributeError):
        view.members = frozenset()  # type: ignore[misc]
    with pytest.raises(TypeError):
        view.roles[3] = frozenset()  # type: ignore[index]


def test_a_joining_self_is_accepted() -> None:
    view = DowningInput(
        members=frozenset({1, 2}), unreachable=frozenset({2}), self_member=3, joining=frozenset({3})
    )
    assert view.reachable == frozenset({1, 3})


# --- keep-majority -----------------------------------------------------------------------


@given(partitions())
def test_keep_majority_keeps_exactly_one_side(sides: tuple[Side, Side]) -> None:
    a, b = sides
    from_a, from_b = both_sides(KeepMajority(), a, b)
    assert from_a.survives != from_b.survives
    winner, loser = (a, b) if from_a.survives else (b, a)
    if len(a) != len(b):
        assert len(winner) > len(loser)
    else:
        assert min(a | b) in winner
    # The two sides agree on who goes down: the losing side, all of it.
    survivor, downer = (from_a, from_b) if from_a.survives else (from_b, from_a)
    assert survivor.kind is DecisionKind.DOWN_UNREACHABLE and survivor.to_down == loser
    assert downer.kind is DecisionKind.DOWN_REACHABLE and downer.to_down == loser
    assert downer.downs_self and not survivor.downs_self


@quick
@given(partitions(), st.data())
def test_every_node_of_a_side_reaches_the_same_decision(
    sides: tuple[Side, Side], data: st.DataObject
) -> None:
    a, b = sides
    strategy = data.draw(
        st.sampled_from(
            list[DowningStrategy]([KeepMajority(), StaticQuorum(len(a | b) // 2 + 1), DownAll()])
        )
    )
    me = data.draw(st.sampled_from(sorted(a)))
    other_me = data.draw(st.sampled_from(sorted(a)))
    first = strategy.decide(view_from(a, b, self_member=me))
    second = strategy.decide(view_from(a, b, self_member=other_me))
    assert first.kind is second.kind and first.to_down == second.to_down
    assert strategy.decide(view_from(a, b, self_member=me)) == first  # deterministic


@quick
@given(partitions(), st.lists(st.sampled_from(["a", "b"]), min_size=9, max_size=9))
def test_keep_majority_with_a_role_counts_only_that_role(
    sides: tuple[Side, Side], picks: list[str]
) -> None:
    a, b = sides
    roles = {m: frozenset({picks[m]}) for m in a | b}
    from_a, from_b = both_sides(KeepMajority(role="a"), a, b, roles=roles)
    with_role = {m for m in a | b if picks[m] == "a"}
    if not with_role:
        assert from_a.kind is from_b.kind is DecisionKind.DOWN_ALL
        return
    assert from_a.survives != from_b.survives
    in_a, in_b = len(with_role & a), len(with_role & b)
    if in_a != in_b:
        assert from_a.survives == (in_a > in_b)
    else:
        assert from_a.survives == (min(with_role) in a)
    # Members without the role go down with their side all the same.
    loser = b if from_a.survives else a
    assert (from_a.to_down if from_a.survives else from_b.to_down) == loser


@given(partitions(), st.data())
def test_keep_majority_never_keeps_both_sides_despite_joining_and_leaving(
    sides: tuple[Side, Side], data: st.DataObject
) -> None:
    """Members joining or leaving when the partition hit may have moved on the leader's side.

    The leader moves a member on only once everybody has seen its current status, so the other
    side may lag one step behind (joining -> up, leaving -> exiting), on the leader's side only.
    """
    a, b = sides
    everyone = sorted(a | b)
    moving = data.draw(
        st.dictionaries(
            st.sampled_from(everyone),
            st.tuples(st.sampled_from(["joining", "leaving"]), st.booleans()),
        )
    )
    leader_side = data.draw(st.sampled_from(["a", "b"]))
    views = []
    for side, other, name in ((a, b, "a"), (b, a, "b")):
        members, joining, leaving = set(a | b), set(), set()
        for member, (status, advanced) in moving.items():
            if advanced and name == leader_side:  # this side saw the next step
                if status == "leaving":
                    members.discard(member)
            elif status == "joining":
                members.discard(member)
                joining.add(member)
            else:
                leaving.add(member)
        candidates = sorted(side & (members | joining))
        if not candidates:
            return
        views.append(
            DowningInput(
                members=frozenset(members),
                unreachable=other,
                self_member=data.draw(st.sampled_from(candidates)),
                joining=frozenset(joining),
                leaving=frozenset(leaving),
            )
        )
    from_a, from_b = (KeepMajority().decide(view) for view in views)
    assert not (from_a.survives and from_b.survives)


def test_keep_majority_downs_all_when_joining_members_could_tip_the_balance() -> None:
    # 1, 2 | 3 are up; 4 and 5 joined on 3's side and may be up there by now.
    view = DowningInput(
        members=frozenset({1, 2, 3}),
        unreachable=frozenset({3, 4, 5}),
        self_member=1,
        joining=frozenset({4, 5}),
    )
    decision = KeepMajority().decide(view)
    assert decision.kind is DecisionKind.DOWN_ALL
    assert decision.to_down == frozenset({1, 2, 3, 4, 5})


def test_keep_majority_does_not_count_leaving_members_in_the_double_check() -> None:
    # 1, 2, 3 | 4, 5 but 2 and 3 are leaving and may be exiting on the other side already.
    view = DowningInput(
        members=frozenset(range(1, 6)),
        unreachable=frozenset({4, 5}),
        self_member=1,
        leaving=frozenset({2, 3}),
    )
    assert KeepMajority().decide(view).kind is DecisionKind.DOWN_ALL


def test_keep_majority_tie_goes_to_the_lowest_address() -> None:
    low = NodeAddress("10.0.0.1", 2552)  # ordered by host, then port
    nodes = [low, NodeAddress("10.0.0.1", 2553), NodeAddress("10.0.0.2", 25), NodeAddress("9", 1)]
    members = frozenset(nodes)
    assert min(members) == low
    side = frozenset({nodes[1], nodes[2]})
    other = members - side
    view = DowningInput(members=members, unreachable=other, self_member=nodes[1])
    assert KeepMajority().decide(view).downs_self
    mirror = DowningInput(members=members, unreachable=side, self_member=nodes[3])
    decision = KeepMajority().decide(mirror)
    assert decision.survives and decision.to_down == side


def test_keep_majority_with_three_sides_and_no_majority_downs_every_side() -> None:
    members = frozenset(range(5))
    sides = [frozenset({0, 1}), frozenset({2, 3}), frozenset({4})]
    for side in sides:
        view = DowningInput(members=members, unreachable=members - side, self_member=min(side))
        assert KeepMajority().decide(view).downs_self


# --- static-quorum -----------------------------------------------------------------------


@given(partitions(), st.integers(1, 6))
def test_static_quorum_keeps_a_side_iff_it_has_the_quorum(
    sides: tuple[Side, Side], quorum: int
) -> None:
    a, b = sides
    from_a, from_b = both_sides(StaticQuorum(quorum), a, b)
    if len(a | b) > 2 * quorum - 1:
        # Both sides could reach the quorum: everybody goes down rather than split.
        assert from_a.kind is from_b.kind is DecisionKind.DOWN_ALL
        assert from_a.to_down == from_b.to_down == a | b
        return
    assert from_a.survives == (len(a) >= quorum)
    assert from_b.survives == (len(b) >= quorum)
    assert not (from_a.survives and from_b.survives)
    for decision, side, other in ((from_a, a, b), (from_b, b, a)):
        assert decision.to_down == (other if decision.survives else side)


@quick
@given(partitions(), st.lists(st.sampled_from(["a", "b"]), min_size=9, max_size=9), st.data())
def test_static_quorum_with_a_role_counts_only_that_role(
    sides: tuple[Side, Side], picks: list[str], data: st.DataObject
) -> None:
    a, b = sides
    with_role = {m for m in a | b if picks[m] == "a"}
    quorum = data.draw(st.integers(max(1, (len(with_role) + 2) // 2), 6))
    roles = {m: frozenset({picks[m]}) for m in a | b}
    from_a, _ = both_sides(StaticQuorum(quorum, role="a"), a, b, roles=roles)
    assert from_a.survives == (len(with_role & a) >= quorum)


def test_static_quorum_refuses_a_quorum_below_one() -> None:
    with pytest.raises(ValueError, match="quorum_size"):
        StaticQuorum(0)


# --- down-all ----------------------------------------------------------------------------


@quick
@given(partitions())
def test_down_all_downs_everyone(sides: tuple[Side, Side]) -> None:
    a, b = sides
    for decision in both_sides(DownAll(), a, b):
        assert decision.kind is DecisionKind.DOWN_ALL
        assert decision.to_down == a | b
        assert decision.downs_self


# --- all strategies ----------------------------------------------------------------------


@pytest.mark.parametrize("strategy", [KeepMajority(), StaticQuorum(3), DownAll()])
def test_nothing_unreachable_means_nothing_to_down(strategy: DowningStrategy) -> None:
    view = DowningInput(members=frozenset(range(8)), unreachable=frozenset(), self_member=0)
    decision = strategy.decide(view)
    assert decision.to_down == frozenset()
    assert decision.survives


@quick
@given(partitions(), st.sampled_from(["keep-majority", "static-quorum", "down-all"]))
def test_decisions_are_deterministic(sides: tuple[Side, Side], name: str) -> None:
    a, b = sides
    strategy = make_strategy(name, quorum_size=len(a | b) // 2 + 1)
    view = view_from(a, b)
    rebuilt = DowningInput(
        members=frozenset(sorted(a | b, reverse=True)),
        unreachable=frozenset(sorted(b)),
        self_member=min(a),
    )
    assert strategy.decide(view) == strategy.decide(rebuilt) == strategy.decide(view)


def test_make_strategy_knows_the_config_names() -> None:
    assert make_strategy("keep-majority", role="x") == KeepMajority(role="x")
    assert make_strategy("static-quorum", quorum_size=2, role="x") == StaticQuorum(2, role="x")
    assert make_strategy("down-all") == DownAll()
    with pytest.raises(ValueError, match="quorum_size"):
        make_strategy("static-quorum")
    with pytest.raises(ValueError, match="keep-majority"):
        make_strategy("keep-oldest")


# --- stable-after ------------------------------------------------------------------------


def test_stable_after_waits_for_the_unreachable_set_to_settle() -> None:
    fresh: StableAfter[int] = StableAfter(5.0)
    assert not fresh.is_stable(100.0) and fresh.stable_at is None and not fresh.unreachable
    stable: StableAfter[int] = StableAfter(5.0)
    assert stable.observe(0.0, frozenset({4}))
    assert not stable.observe(2.0, frozenset({4}))  # unchanged: the clock keeps running
    assert not stable.is_stable(4.9)
    assert stable.is_stable(5.0) and stable.should_decide(5.0)
    assert stable.observe(6.0, frozenset({4, 5}))  # a change restarts the wait
    assert stable.changed_at == 6.0 and stable.stable_at == 11.0
    assert not stable.should_decide(10.0) and stable.should_decide(11.0)
    stable.reset(12.0)
    assert stable.unreachable == frozenset({4, 5}) and not stable.is_stable(16.0)
    assert stable.is_stable(17.0)


def test_a_member_reachable_again_before_the_decision_is_not_downed() -> None:
    members = frozenset(range(1, 6))
    stable: StableAfter[int] = StableAfter(5.0)
    stable.observe(0.0, frozenset({4, 5}))
    stable.observe(3.0, frozenset({4}))  # 5 is back before stable_after elapsed
    assert not stable.should_decide(5.0)
    assert stable.should_decide(8.0)
    view = DowningInput(members=members, unreachable=stable.unreachable, self_member=1)
    assert KeepMajority().decide(view).to_down == frozenset({4})
    stable.observe(9.0, frozenset())  # everybody is back: no decision ever comes
    assert not stable.should_decide(1e9)


def test_stable_after_refuses_bad_durations() -> None:
    for bad in (-1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="duration"):
            StableAfter(bad)


@quick
@given(
    duration=st.floats(0.0, 20.0),
    steps=st.lists(
        st.tuples(st.floats(0.0, 10.0), st.frozensets(st.integers(0, 3), max_size=2)),
        min_size=1,
        max_size=30,
    ),
)
def test_stable_after_matches_a_reference_model(
    duration: float, steps: list[tuple[float, frozenset[int]]]
) -> None:
    stable: StableAfter[int] = StableAfter(duration)
    now = 0.0
    current: frozenset[int] | None = None
    changed = 0.0
    for gap, seen in steps:
        now += gap
        assert stable.observe(now, seen) == (seen != current)
        if seen != current:
            current, changed = seen, now
        for probe in (now, now + duration / 2, now + duration, now + duration + 1.0):
            expected = probe >= changed + duration
            assert stable.is_stable(probe) == expected
            assert stable.should_decide(probe) == (expected and bool(current))


def _strategies() -> list[Callable[[int], DowningStrategy]]:
    return [lambda n: KeepMajority(), lambda n: StaticQuorum(n // 2 + 1), lambda n: DownAll()]


@quick
@given(partitions(), st.sampled_from(_strategies()))
def test_no_strategy_lets_both_sides_survive(
    sides: tuple[Side, Side], factory: Callable[[int], DowningStrategy]
) -> None:
    a, b = sides
    from_a, from_b = both_sides(factory(len(a | b)), a, b)
    assert not (from_a.survives and from_b.survives)
