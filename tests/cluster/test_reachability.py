"""Reachability views, indirect connectivity and the resolver's input: pure, property-tested.

Random gossip values (member statuses, reachability records) over a handful of nodes; the
properties are the rules of ``docs/cluster.md`` ("What happens when..."): stale reports do
not count, a node's own reports decide its side, a cut link is resolved without downing the
fully connected members, and two sides of a clean split never both stay up.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st

from casty_trio import NodeAddress
from casty_trio.cluster import Gossip, Member, MemberStatus, ObserverRecord, UniqueAddress
from casty_trio.cluster._daemon import _downing_input
from casty_trio.cluster._downing import (
    DownAll,
    DowningInput,
    DowningStrategy,
    KeepMajority,
    StableAfter,
    StaticQuorum,
)
from casty_trio.cluster._membership import (
    ReachabilityView,
    leader,
    reachability,
    seen_by,
    side_has_seen,
)

S = MemberStatus
NODES = [UniqueAddress(NodeAddress("10.0.0.1", 25520 + i), 1) for i in range(8)]
GONE = (S.down, S.removed)

quick = settings(max_examples=100, deadline=None)

Records = Mapping[int, frozenset[int]]


def gossip(statuses: list[MemberStatus], records: Records) -> Gossip:
    """Members 0..n-1 with these statuses; ``records[o]`` is what observer ``o`` reports."""
    members = [
        Member(NODES[i], f"node-{i}", status, up_number=0 if status is S.joining else i + 1)
        for i, status in enumerate(statuses)
    ]
    reports = {
        NODES[o]: ObserverRecord(1, frozenset(NODES[s] for s in subjects))
        for o, subjects in records.items()
        if subjects
    }
    return Gossip(members, reports)


def ids(uniques: frozenset[UniqueAddress]) -> frozenset[int]:
    return frozenset(NODES.index(u) for u in uniques)


@st.composite
def gossips(draw: st.DrawFn) -> tuple[list[MemberStatus], dict[int, frozenset[int]]]:
    n = draw(st.integers(2, 7))
    statuses = draw(
        st.lists(
            st.sampled_from([S.up, S.up, S.up, S.joining, S.leaving, S.exiting, S.down, S.removed]),
            min_size=n,
            max_size=n,
        )
    )
    records = {
        o: draw(st.frozensets(st.integers(0, n - 1).filter(lambda s, o=o: s != o), max_size=n))
        for o in range(n)
    }
    return statuses, records


def viewers(n: int) -> list[int | None]:
    return [None, *range(n)]


def counted_reports(
    statuses: list[MemberStatus], records: Records, view: ReachabilityView
) -> set[int]:
    """Subjects of the reports that count in ``view``: live observers not cleanly cut off."""
    away = ids(view.cleanly_unreachable)
    found: set[int] = set()
    for observer, subjects in records.items():
        if statuses[observer] in GONE or observer in away:
            continue
        found |= {s for s in subjects if statuses[s] not in GONE and s != observer}
    return found


# --------------------------------------------------------------------------- the view


@quick
@given(gossips())
def test_the_view_counts_exactly_the_reports_of_observers_that_are_not_cut_off(
    case: tuple[list[MemberStatus], dict[int, frozenset[int]]],
) -> None:
    statuses, records = case
    g = gossip(statuses, records)
    for me in viewers(len(statuses)):
        view = reachability(g, None if me is None else NODES[me])
        expected = counted_reports(statuses, records, view) - ({me} if me is not None else set())
        assert ids(view.unreachable) == expected
        assert view.indirectly_connected <= view.unreachable
        assert all(statuses[i] not in GONE for i in ids(view.unreachable))
        if me is not None:
            assert me not in ids(view.unreachable)  # a node is never unreachable to itself
            if statuses[me] not in GONE:
                own = {s for s in records[me] if statuses[s] not in GONE}
                assert own <= ids(view.cleanly_unreachable)  # its own reports always count
        # Each cleanly unreachable member is reported by this node or by an observer that
        # nobody whose reports count reports.
        counted = counted_reports(statuses, records, view)
        for subject in ids(view.cleanly_unreachable):
            assert any(
                subject in subjects
                and statuses[observer] not in GONE
                and (observer == me or observer not in counted)
                for observer, subjects in records.items()
            )


@quick
@given(gossips())
def test_reports_of_down_removed_or_cut_off_observers_do_not_count(
    case: tuple[list[MemberStatus], dict[int, frozenset[int]]],
) -> None:
    statuses, records = case
    g = gossip(statuses, records)
    for me in viewers(len(statuses)):
        self_unique = None if me is None else NODES[me]
        view = reachability(g, self_unique)
        silenced = {i for i, status in enumerate(statuses) if status in GONE}
        silenced |= ids(view.cleanly_unreachable)
        without = {o: s for o, s in records.items() if o not in silenced}
        assert reachability(gossip(statuses, without), self_unique) == view


@quick
@given(gossips(), st.data())
def test_a_leader_exists_and_is_never_cut_off(
    case: tuple[list[MemberStatus], dict[int, frozenset[int]]], data: st.DataObject
) -> None:
    statuses, records = case
    g = gossip(statuses, records)
    live = [i for i, status in enumerate(statuses) if status not in GONE]
    for me in viewers(len(statuses)):
        self_unique = None if me is None else NODES[me]
        view = reachability(g, self_unique)
        lead = leader(g, self_unique=self_unique)
        if any(NODES[i] not in view.cleanly_unreachable for i in live):
            assert lead is not None and lead not in view.cleanly_unreachable
        if me is not None and statuses[me] not in GONE:
            assert lead is not None  # a live node always sees a leader


@quick
@given(st.integers(2, 7), st.data())
def test_own_reports_of_the_other_side_decide_the_view_whatever_its_stale_reports(
    n: int, data: st.DataObject
) -> None:
    # A clean split: this side has noticed the whole other side; the other side's reports
    # are stale (from before the split: any of them, about anybody).
    side = data.draw(st.frozensets(st.integers(0, n - 1), min_size=1, max_size=n - 1))
    other = frozenset(range(n)) - side
    me = data.draw(st.sampled_from(sorted(side)))
    records: dict[int, frozenset[int]] = {me: other}
    for observer in side - {me}:
        records[observer] = data.draw(st.frozensets(st.sampled_from(sorted(other))))
    for observer in other:
        records[observer] = data.draw(st.frozensets(st.integers(0, n - 1))) - {observer}
    view = reachability(gossip([S.up] * n, records), NODES[me])
    assert ids(view.unreachable) == other
    assert view.indirectly_connected == frozenset()


@quick
@given(st.integers(3, 7), st.data())
def test_cut_links_make_their_ends_indirectly_connected_for_the_others(
    n: int, data: st.DataObject
) -> None:
    pairs = [(a, b) for a in range(n) for b in range(a + 1, n)]
    cut = data.draw(st.lists(st.sampled_from(pairs), min_size=1, max_size=n, unique=True))
    ends = {x for pair in cut for x in pair}
    assume(len(ends) < n)
    records: dict[int, frozenset[int]] = {}
    for a, b in cut:  # each end of a cut link reports the other
        records[a] = records.get(a, frozenset()) | {b}
        records[b] = records.get(b, frozenset()) | {a}
    g = gossip([S.up] * n, records)
    for me in sorted(set(range(n)) - ends):
        view = reachability(g, NODES[me])
        assert ids(view.unreachable) == ids(view.indirectly_connected) == ends


def test_a_stale_report_of_an_observer_behind_a_clean_split_is_ignored() -> None:
    # 4 once reported 0 (a glitch); now 0, 1 and 2 report 3 and 4 (a clean split).
    records = {0: frozenset({3, 4}), 1: frozenset({3, 4}), 2: frozenset({3, 4}), 4: {0}}
    g = gossip([S.up] * 5, {o: frozenset(s) for o, s in records.items()})
    for me in (None, 0, 1, 2):
        view = reachability(g, None if me is None else NODES[me])
        assert ids(view.unreachable) == {3, 4} and not view.indirectly_connected
    assert leader(g, self_unique=NODES[1]) == NODES[0]


def test_a_dead_observers_frozen_report_does_not_outlive_it() -> None:
    # 0 and 1 reported each other (a cut link), then 0 crashed; the link healed and 1 and 2
    # report 0. 0's record can never be refreshed: it must not keep 1 unreachable.
    records = {0: frozenset({1}), 1: frozenset({0}), 2: frozenset({0})}
    g = gossip([S.up] * 3, records)
    for me in (None, 1, 2):
        view = reachability(g, None if me is None else NODES[me])
        assert ids(view.unreachable) == {0} and not view.indirectly_connected
        assert leader(g, self_unique=None if me is None else NODES[me]) == NODES[1]


# --------------------------------------------------------------------------- decisions


def strategies(n: int) -> list[DowningStrategy]:
    return [KeepMajority(), StaticQuorum(n // 2 + 1), DownAll()]


@st.composite
def downing_inputs(draw: st.DrawFn) -> DowningInput[int]:
    n = draw(st.integers(1, 9))
    everyone = frozenset(range(n))
    joining = draw(st.frozensets(st.sampled_from(sorted(everyone)), max_size=2))
    members = everyone - joining
    assume(members)
    me = draw(st.sampled_from(sorted(everyone)))
    unreachable = draw(st.frozensets(st.sampled_from(sorted(everyone))))
    indirect = draw(st.frozensets(st.sampled_from(sorted(everyone))))
    leaving = draw(st.frozensets(st.sampled_from(sorted(members))))
    return DowningInput(
        members=members,
        unreachable=unreachable,
        self_member=me,
        joining=joining,
        leaving=leaving,
        indirectly_connected=indirect,
    )


@quick
@given(downing_inputs())
def test_a_surviving_side_never_downs_a_fully_connected_member(view: DowningInput[int]) -> None:
    for strategy in strategies(len(view.members | view.joining)):
        decision = strategy.decide(view)
        if decision.survives:
            assert not decision.to_down & view.fully_connected
            assert decision.to_down <= view.unreachable | view.indirectly_connected


@quick
@given(downing_inputs())
def test_cut_links_alone_down_exactly_the_indirectly_connected(view: DowningInput[int]) -> None:
    view = attrs.evolve(view, unreachable=frozenset(), leaving=frozenset())
    decision = KeepMajority().decide(view)
    assert decision.survives or view.self_member in view.indirectly_connected
    assert decision.to_down == view.indirectly_connected


@quick
@given(st.integers(2, 7), st.data())
def test_both_sides_of_a_clean_split_never_both_stay_up(n: int, data: st.DataObject) -> None:
    """Every node has noticed the whole other side; reports from before the split are stale
    on both sides, and some links inside each side may be cut too. Among the nodes that lead
    their own view, no two on different sides both keep their side up."""
    a_side = data.draw(st.frozensets(st.integers(0, n - 1), min_size=1, max_size=n - 1))
    sides = (a_side, frozenset(range(n)) - a_side)
    statuses = [data.draw(st.sampled_from([S.up, S.up, S.leaving, S.joining])) for _ in range(n)]
    assume(any(s is not S.joining for s in statuses))
    survivors: list[set[int]] = []
    for side in sides:
        other = frozenset(range(n)) - side
        records: dict[int, frozenset[int]] = {}
        for observer in range(n):
            if observer in side:
                # Fresh: the whole other side, plus the ends of cut links inside this side.
                inside = data.draw(st.frozensets(st.sampled_from(sorted(side)), max_size=1))
                records[observer] = other | (inside - {observer})
            else:
                records[observer] = data.draw(st.frozensets(st.integers(0, n - 1))) - {observer}
        g = gossip(statuses, records)
        kept: set[int] = set()
        for me in side:
            self_unique = NODES[me]
            view = _downing_input(g, self_unique, reachability(g, self_unique))
            if view is None or leader(g, self_unique=self_unique) != self_unique:
                continue
            for strategy in strategies(n):
                if strategy.decide(view).survives and view.needs_decision:
                    kept.add(me)
        survivors.append(kept)
    event(f"sides kept: {sum(bool(kept) for kept in survivors)}")
    assert not (survivors[0] and survivors[1])


# --------------------------------------------------------------------------- seen


def test_the_resolver_waits_until_its_whole_side_has_seen_the_state() -> None:
    # 0 and 1 report 3; 2 has not seen this state yet (it may be on the other side).
    g = gossip([S.up] * 4, {0: frozenset({3}), 1: frozenset({3})})
    g = seen_by(seen_by(g, NODES[0]), NODES[1])
    assert not side_has_seen(g, NODES[0])
    assert side_has_seen(seen_by(g, NODES[2]), NODES[0])
    # Indirectly connected members count on this side: they must have seen it too.
    cut = seen_by(gossip([S.up] * 3, {0: frozenset({1}), 1: frozenset({0})}), NODES[2])
    assert not side_has_seen(cut, NODES[2])
    assert side_has_seen(seen_by(seen_by(cut, NODES[0]), NODES[1]), NODES[2])


# --------------------------------------------------------------------------- instability


@quick
@given(
    duration=st.floats(0.0, 10.0),
    bound=st.floats(0.0, 10.0),
    steps=st.lists(
        st.tuples(st.floats(0.0, 6.0), st.frozensets(st.integers(0, 3), max_size=2), st.booleans()),
        min_size=1,
        max_size=30,
    ),
)
def test_down_all_when_unstable_matches_a_reference_model(
    duration: float, bound: float, steps: list[tuple[float, frozenset[int], bool]]
) -> None:
    stable: StableAfter[int] = StableAfter(duration, down_all_when_unstable=bound)
    now = 0.0
    current: frozenset[int] | None = None
    since: float | None = None
    for gap, seen, decided in steps:
        now += gap
        if stable.observe(now, seen):
            current = seen
            if not seen:
                since = None
            elif since is None:
                since = now
        if decided:
            stable.reset(now)
            since = now if current else None
        for probe in (now, now + bound, now + duration + bound, now + duration + bound + 1.0):
            expected = since is not None and probe - since >= duration + bound
            assert stable.should_down_all(probe) == expected


def test_flapping_reachability_downs_all_after_the_bound_but_a_settled_one_never() -> None:
    stable: StableAfter[int] = StableAfter(5.0, down_all_when_unstable=4.0)
    for t in range(9):  # 3 flaps unreachable, reachable by another observer, and back
        stable.observe(float(t), frozenset({3}) if t % 2 else frozenset({3, 4}))
    assert not stable.should_decide(8.0) and not stable.should_down_all(8.9)
    assert stable.should_down_all(9.0)
    stable.observe(9.5, frozenset())  # everybody reachable again: the episode is over
    assert not stable.should_down_all(100.0)
    never: StableAfter[int] = StableAfter(5.0)
    for t in range(100):
        never.observe(float(t), frozenset({t % 3}))
    assert not never.should_down_all(1e9)
