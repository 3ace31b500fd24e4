"""Membership state: merge laws, statuses, convergence, leader, leader actions and events.

Pure functions only: no trio, no I/O. Property tests run random gossip values and random
sequences of changes and gossip exchanges between simulated nodes.
"""

from __future__ import annotations

import doctest
import importlib
from collections import Counter, defaultdict
from collections.abc import Callable
from random import Random

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from casty_trio import NodeAddress
from casty_trio.cluster import (
    LIVE_STATUSES,
    ClusterEvent,
    Gossip,
    LeaderChanged,
    Member,
    MemberDowned,
    MemberLeft,
    MemberStatus,
    MemberUp,
    ObserverRecord,
    ReachableMember,
    UniqueAddress,
    UnreachableMember,
    VectorClock,
    diff_events,
    is_live,
)
from casty_trio.cluster._membership import (
    down,
    is_converged,
    join,
    leader,
    leader_actions,
    leave,
    mark_reachable,
    mark_unreachable,
    member_at,
    merge,
    oldest,
    reachability,
    seen_by,
    unreachable_members,
)

S = MemberStatus

# Four addresses; address 0 also has a second incarnation (uid 2): a restarted node.
ADDRESSES = [NodeAddress("10.0.0.1", 25520 + i) for i in range(4)]
UNIQUES = [UniqueAddress(a, 1) for a in ADDRESSES] + [UniqueAddress(ADDRESSES[0], 2)]
ROLES = {0: frozenset({"web"}), 1: frozenset(), 2: frozenset({"web", "db"}), 3: frozenset({"db"})}


def member_of(unique: UniqueAddress, status: MemberStatus = S.joining, up: int = 0) -> Member:
    """Members of one incarnation always carry the same node id and roles."""
    index = ADDRESSES.index(unique.node)
    return Member(unique, f"node-{index}", status, ROLES[index], up)


A, B, C, D, A2 = UNIQUES


# --------------------------------------------------------------------------- strategies

uniques = st.sampled_from(UNIQUES)
statuses = st.sampled_from(list(MemberStatus))


@st.composite
def members(draw: st.DrawFn) -> Member:
    unique = draw(uniques)
    status = draw(statuses)
    up = 0 if status is S.joining else draw(st.integers(0, 4))
    return member_of(unique, status, up)


records = st.builds(ObserverRecord, st.integers(0, 3), st.frozensets(uniques, max_size=3))
clocks = st.dictionaries(st.sampled_from([u.key for u in UNIQUES]), st.integers(0, 3)).map(
    VectorClock
)


@st.composite
def gossips(draw: st.DrawFn) -> Gossip:
    """Random (not necessarily reachable by real changes) states, normalized by a merge."""
    raw = Gossip(
        draw(st.lists(members(), max_size=5)),
        draw(st.dictionaries(uniques, records, max_size=3)),
        draw(clocks),
        draw(st.frozensets(uniques, max_size=3)),
    )
    return merge(raw, raw)


Change = Callable[[Gossip], Gossip]


@st.composite
def changes(draw: st.DrawFn) -> Change:
    """One change a node can make to its gossip."""
    kind = draw(st.sampled_from(["join", "leave", "down", "unreachable", "reachable", "lead"]))
    x, y = draw(uniques), draw(uniques)
    if kind == "join":
        return lambda g: join(g, member_of(x), by=y)
    if kind == "leave":
        return lambda g: leave(g, x, by=y)
    if kind == "down":
        return lambda g: down(g, x, by=y)
    if kind == "unreachable":
        return lambda g: mark_unreachable(g, x, y)
    if kind == "reachable":
        return lambda g: mark_reachable(g, x, y)
    return lambda g: leader_actions(seen_by(g, x), x)


def formed(*nodes: UniqueAddress) -> Gossip:
    """A converged cluster of ``nodes``, all up, up numbers in order, everybody has seen it."""
    g = Gossip(
        [member_of(u, S.up, i + 1) for i, u in enumerate(nodes)],
        version=VectorClock({nodes[0].key: 1}),
        seen=frozenset(nodes),
    )
    return g


def synced(g: Gossip, *nodes: UniqueAddress) -> Gossip:
    for node in nodes:
        g = seen_by(g, node)
    return g


# --------------------------------------------------------------------------- docs and basics


@pytest.mark.parametrize(
    "module",
    [
        "casty_trio.cluster._membership",
        "casty_trio.cluster._membership_state",
        "casty_trio.cluster._events",
    ],
)
def test_docstring_examples(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


def test_values() -> None:
    assert str(A) == "10.0.0.1:25520#1" and A.key == str(A)
    assert A < A2 < B  # address first, then uid
    m = Member(A, "n", roles=["x", "y"])
    assert m.roles == frozenset({"x", "y"}) and m.node == A.node and m.status is S.joining
    assert m.has_role(None) and m.has_role("x") and not m.has_role("z")
    with pytest.raises(TypeError, match="collection of strings"):
        Member(A, "n", roles="web")
    g = Gossip({A: member_of(A)})
    assert g == Gossip([member_of(A)])
    with pytest.raises(TypeError):
        g.members[B] = member_of(B)  # type: ignore[index]
    with pytest.raises(TypeError):
        hash(g)
    assert [s.precedence for s in MemberStatus] == list(range(6))
    removed = Gossip([member_of(A, S.up, 1), member_of(B, S.removed, 2)])
    assert [m.unique for m in removed.sorted_members()] == [A]
    assert [m.unique for m in removed.sorted_members(include_removed=True)] == [A, B]


# --------------------------------------------------------------------------- merge laws


@settings(max_examples=50)
@given(gossips(), gossips(), gossips())
def test_merge_laws(a: Gossip, b: Gossip, c: Gossip) -> None:
    ab = merge(a, b)
    # commutative, associative, idempotent -- seen sets included
    assert ab == merge(b, a)
    assert merge(ab, c) == merge(a, merge(b, c))
    assert merge(a, a) == a
    assert merge(ab, b) == ab and merge(ab, a) == ab


@settings(max_examples=40)
@given(gossips(), gossips())
def test_merge_contents(a: Gossip, b: Gossip) -> None:
    m = merge(a, b)
    # version and seen
    assert m.version == a.version.merge(b.version)
    if a.version == b.version:
        assert m.seen == a.seen | b.seen
    elif a.version < b.version:
        assert m.seen == b.seen
    elif a.version > b.version:
        assert m.seen == a.seen
    else:
        assert m.seen == frozenset()
    same_version = merge(a, attrs.evolve(b, version=a.version))
    assert same_version.seen == a.seen | b.seen
    # status precedence is monotonic, up numbers keep the lowest assigned one
    assert m.members.keys() == a.members.keys() | b.members.keys()
    for unique, member in m.members.items():
        inputs = [g.members[unique] for g in (a, b) if unique in g.members]
        assert member.status.precedence == max(x.status.precedence for x in inputs)
        assigned = [x.up_number for x in inputs if x.up_number]
        assert member.up_number == min(assigned, default=0)
    # per observer the newest record wins; nothing by or about removed members
    removed = {u for u, x in m.members.items() if x.status is S.removed}
    for observer, record in m.reachability.items():
        assert observer not in removed
        assert not record.unreachable & removed
        newest = max(g.reachability[observer].version for g in (a, b) if observer in g.reachability)
        assert record.version == newest


@settings(max_examples=40)
@given(gossips(), changes())
def test_changes_are_monotone(g: Gossip, change: Change) -> None:
    """Merging the older state into the result of a change gives the result back."""
    changed = change(g)
    assert g.version <= changed.version
    if (changed.members, changed.reachability) != (g.members, g.reachability):
        assert g.version < changed.version and len(changed.seen) == 1
    assert merge(changed, g) == changed
    for unique, member in g.members.items():
        assert changed.members[unique].status.precedence >= member.status.precedence


# --------------------------------------------------------------------------- changes


def test_join_is_idempotent_and_resets_status() -> None:
    g = join(Gossip(), member_of(A, S.up, 7), by=A)
    assert g.member(A) == member_of(A)
    assert g.seen == {A} and g.version == VectorClock({A.key: 1})
    assert join(g, member_of(A), by=B) is g


def test_leave_and_down_only_move_forward() -> None:
    g = formed(A, B)
    left = leave(g, B, by=B)
    assert left.members[B].status is S.leaving
    assert leave(left, B, by=A) is left
    downed = down(left, B, by=A)
    assert downed.members[B].status is S.down
    assert down(downed, B, by=A) is downed
    assert leave(downed, B, by=B) is downed
    assert leave(g, C, by=A) is g and down(g, C, by=A) is g  # unknown members
    joining = join(g, member_of(C), by=A)
    assert leave(joining, C, by=C).members[C].status is S.leaving


def test_reachability_records() -> None:
    g = formed(A, B, C)
    assert mark_unreachable(g, A, A) is g  # not about itself
    assert mark_unreachable(g, A, D) is g  # not about strangers
    g1 = mark_unreachable(g, A, B)
    assert mark_unreachable(g1, A, B) is g1
    assert unreachable_members(g1) == {g.member(B)}
    assert g1.reachability[A] == ObserverRecord(1, frozenset({B}))
    assert g1.version.get(A.key) == g.version.get(A.key) + 1 and g1.seen == {A}
    g2 = mark_unreachable(g1, C, B)
    g3 = mark_reachable(g2, A, B)
    assert unreachable_members(g3) == {g.member(B)}  # C still says so
    g4 = mark_reachable(g3, C, B)
    assert unreachable_members(g4) == frozenset()
    assert mark_reachable(g4, C, B) is g4
    # The newest observation of one observer wins over an older one in a merge.
    assert unreachable_members(merge(g2, g4)) == frozenset()


def test_observations_of_gone_observers_and_subjects_do_not_count() -> None:
    g = mark_unreachable(formed(A, B, C), A, B)
    assert unreachable_members(down(g, A, by=C)) == frozenset()  # observer down
    assert unreachable_members(down(g, B, by=C)) == frozenset()  # subject down
    assert unreachable_members(mark_unreachable(g, D, C)) == {g.member(B)}  # D unknown


def test_member_at_skips_gone_incarnations() -> None:
    g = join(formed(A, B), member_of(A2), by=B)
    assert member_at(g, A.node) == member_of(A2)
    assert member_at(g, C.node) is None
    assert member_at(down(g, A2, by=B), A.node) is None


# --------------------------------------------------------------------------- convergence


def test_convergence_needs_every_live_member_to_have_seen() -> None:
    g = formed(A, B, C)
    assert is_converged(g, A)
    changed = leave(g, C, by=C)  # only C has seen it
    assert not is_converged(changed, C)
    assert not is_converged(synced(changed, A), A)  # B has not seen it
    assert is_converged(synced(changed, A, B), A)
    assert not is_converged(synced(changed, C), D)  # the caller itself has not seen it


def test_convergence_with_joining_down_and_exiting_members() -> None:
    g = join(formed(A, B), member_of(C), by=A)
    assert is_converged(synced(g, B), A)  # joining C need not have seen it
    downed = synced(down(formed(A, B, C), C, by=A), B)
    assert is_converged(downed, A)  # down C need not have seen it
    exiting = formed(A, B, C)
    exiting = attrs.evolve(exiting, members=[*exiting.members.values(), member_of(D, S.exiting, 4)])
    assert not is_converged(exiting, A)  # reachable exiting D must see it
    assert is_converged(synced(exiting, D), A)


def test_unreachable_members_block_convergence_unless_down_or_exiting() -> None:
    g = synced(mark_unreachable(formed(A, B, C), A, C), B, C)
    assert not is_converged(g, A)
    assert is_converged(synced(down(g, C, by=A), B), A)
    exiting = attrs.evolve(g, members=[*g.members.values(), member_of(C, S.exiting, 3)])
    assert is_converged(merge(exiting, exiting), A)  # unreachable exiting need not see it
    joining = join(formed(A, B), member_of(C), by=A)
    joining = synced(mark_unreachable(joining, A, C), B)
    assert not is_converged(joining, A)


@settings(max_examples=40)
@given(gossips(), uniques)
def test_convergence_rules(g: Gossip, self_unique: UniqueAddress) -> None:
    # Judged in the caller's own view (it is never unreachable to itself).
    unreachable = {m.unique for m in unreachable_members(g, self_unique)}
    expected = self_unique in g.seen and all(
        (m.status in (S.exiting,) if m.unique in unreachable else m.unique in g.seen)
        for m in g.members.values()
        if m.status in (S.joining, S.up, S.leaving, S.exiting)
        and (m.status is not S.joining or m.unique in unreachable)
    )
    assert is_converged(g, self_unique) == expected
    # Down and removed members never matter.
    gone = [m for m in g.members.values() if m.status in (S.down, S.removed)]
    if gone:
        without = attrs.evolve(g, members=[m for m in g.members.values() if m not in gone])
        assert is_converged(merge(without, without), self_unique) == is_converged(g, self_unique)


# --------------------------------------------------------------------------- leader and oldest


def test_leader_rules() -> None:
    assert leader(Gossip()) is None
    g = formed(B, C)
    assert leader(g) == B
    assert leader(join(g, member_of(A), by=B)) == B  # joining only when nobody is up
    assert leader(Gossip([member_of(C), member_of(B)])) == B
    assert leader(mark_unreachable(g, C, B)) == C
    assert leader(down(g, B, by=C)) == C
    assert leader(leave(g, B, by=B)) == B  # leaving still leads
    only_exiting = Gossip([member_of(B, S.exiting, 1), member_of(C, S.down, 2)])
    assert leader(only_exiting) == B
    assert leader(Gossip([member_of(B, S.down, 1), member_of(C, S.removed, 2)])) is None
    assert leader(formed(B, D), role="web") is None
    assert leader(g, role="web") == C
    assert leader(formed(A, B, C), role="db") == C


@settings(max_examples=40)
@given(gossips(), st.randoms(use_true_random=False), st.frozensets(uniques))
def test_leader_is_deterministic(g: Gossip, rnd: Random, seen: frozenset[UniqueAddress]) -> None:
    shuffled = list(g.members.values())
    rnd.shuffle(shuffled)
    records = list(g.reachability.items())
    rnd.shuffle(records)
    other = attrs.evolve(g, members=shuffled, reachability=dict(records), seen=seen)
    for role in (None, "web", "db"):
        assert leader(other, role=role) == leader(g, role=role)
        assert oldest(other, role=role) == oldest(g, role=role)
    chosen = leader(g)
    if chosen is not None:
        member = g.members[chosen]
        assert member.status not in (S.down, S.removed)
        # Reachable, unless every live member is cut off: then an indirectly connected one
        # leads, so that a leader always exists.
        view = reachability(g)
        assert chosen not in view.unreachable or chosen in view.indirectly_connected


def test_oldest() -> None:
    g = Gossip(
        [
            member_of(A, S.up, 3),
            member_of(B, S.leaving, 1),
            member_of(C, S.up, 2),
            member_of(D, S.joining),
        ]
    )
    assert oldest(g) == member_of(B, S.leaving, 1)  # leaving: still the oldest
    assert oldest(g, role="web") == member_of(C, S.up, 2)
    assert oldest(g, role="db") == member_of(C, S.up, 2)
    assert oldest(leave(g, C, by=C), role="web") == member_of(C, S.leaving, 2)
    exited = Gossip([member_of(A, S.up, 3), member_of(C, S.exiting, 2)])
    assert oldest(exited, role="web") == member_of(A, S.up, 3)
    assert oldest(g, role="nope") is None
    # Unreachable members stay oldest until they are downed.
    assert oldest(mark_unreachable(g, A, B)) == member_of(B, S.leaving, 1)
    assert oldest(down(g, B, by=A)) == member_of(C, S.up, 2)
    # A member that left while joining never got an up number: never the oldest.
    assert oldest(Gossip([member_of(D, S.leaving)])) is None


def test_live_statuses() -> None:
    assert frozenset({S.up, S.leaving}) == LIVE_STATUSES
    for status in MemberStatus:
        assert is_live(member_of(A, status, 1)) == (status in LIVE_STATUSES)


def _candidates(g: Gossip, role: str | None) -> list[Member]:
    """The members the oldest is chosen from, written out independently of ``oldest``."""
    return [
        m
        for m in g.members.values()
        if m.status in (S.up, S.leaving) and m.up_number > 0 and m.has_role(role)
    ]


@settings(max_examples=200)
@given(gossips(), st.sampled_from([None, "web", "db", "nope"]))
def test_oldest_is_the_live_member_up_longest(g: Gossip, role: str | None) -> None:
    chosen = oldest(g, role=role)
    candidates = _candidates(g, role)
    if not candidates:
        assert chosen is None
        return
    assert chosen in candidates
    assert chosen is not None and is_live(chosen) and chosen.has_role(role)
    for other in candidates:
        assert (chosen.up_number, chosen.unique) <= (other.up_number, other.unique)
    # With no role the oldest of all is chosen; a role only narrows the candidates.
    overall = oldest(g)
    assert overall is not None
    assert (overall.up_number, overall.unique) <= (chosen.up_number, chosen.unique)


@settings(max_examples=100)
@given(gossips(), st.sampled_from([None, "web", "db"]), uniques, uniques)
def test_oldest_ignores_reachability_and_moves_only_when_it_exits_or_is_downed(
    g: Gossip, role: str | None, observer: UniqueAddress, subject: UniqueAddress
) -> None:
    chosen = oldest(g, role=role)
    assert oldest(mark_unreachable(g, observer, subject), role=role) == chosen
    assert oldest(seen_by(g, observer), role=role) == chosen
    if chosen is None:
        return
    # Starting a graceful leave keeps it the oldest (as ``leaving``).
    left = leave(g, chosen.unique, by=observer)
    assert oldest(left, role=role) == left.members[chosen.unique]
    # Exiting or being downed hands the part to the next oldest.
    for gone in (S.exiting, S.down):
        members = dict(g.members)
        members[chosen.unique] = attrs.evolve(chosen, status=gone)
        after = oldest(attrs.evolve(g, members=members), role=role)
        assert after != chosen and (after is None or after.unique != chosen.unique)
        assert after == min(
            [m for m in _candidates(g, role) if m.unique != chosen.unique],
            key=lambda m: (m.up_number, m.unique),
            default=None,
        )


@settings(max_examples=100)
@given(gossips())
def test_the_leader_is_live_when_a_reachable_live_member_exists(g: Gossip) -> None:
    unreachable = unreachable_members(g)
    live = [m for m in g.members.values() if is_live(m) and m not in unreachable]
    chosen = leader(g)
    if live:
        assert chosen is not None and is_live(g.members[chosen])


# --------------------------------------------------------------------------- leader actions


def test_leader_actions_only_by_the_leader_on_convergence() -> None:
    g = join(formed(A, B), member_of(C), by=A)
    assert leader_actions(g, A) is g  # B has not seen it yet
    converged = synced(g, B)
    assert leader_actions(converged, B) is converged  # B is not the leader
    promoted = leader_actions(converged, A)
    assert promoted.member(C) == member_of(C, S.up, 3)
    assert promoted.seen == {A}
    assert leader_actions(synced(promoted, B, C), A) == synced(promoted, B, C)  # nothing to do


def test_graceful_leave_goes_through_exiting_to_removed() -> None:
    g = synced(leave(formed(A, B, C), C, by=C), A, B)
    g = leader_actions(g, A)
    assert g.members[C].status is S.exiting
    assert leader_actions(synced(g, B), A) is not g
    assert leader_actions(synced(g, B), A).members[C].status is S.exiting  # C has not seen it
    g = leader_actions(synced(g, B, C), A)
    assert g.members[C].status is S.removed
    assert g.members[C].up_number == 3


def test_leader_leaving_hands_over() -> None:
    g = synced(leave(formed(A, B), A, by=A), B)
    g = leader_actions(g, A)
    assert g.members[A].status is S.exiting and leader(g) == B
    g = leader_actions(synced(g, B), B)
    assert g.members[A].status is S.removed


def test_down_member_is_removed_on_convergence_of_the_rest() -> None:
    g = mark_unreachable(formed(A, B, C), A, C)
    g = synced(down(g, C, by=A), B)
    assert is_converged(g, A)
    g = leader_actions(g, A)
    assert g.members[C].status is S.removed
    assert g.reachability[A].unreachable == frozenset()  # records about C dropped


def test_up_numbers_grow_and_are_never_reused() -> None:
    g = synced(down(formed(A, B, C), C, by=A), B)
    g = leader_actions(g, A)  # C removed, up number 3 gone with it
    g = synced(join(g, member_of(D), by=A), B)
    g = leader_actions(g, A)
    assert g.members[D].up_number == 4
    assert oldest(g) == member_of(A, S.up, 1)


def test_restarted_node_joins_although_stale_gossip_says_old_incarnation_down() -> None:
    g = synced(down(formed(A, B, C), A, by=B), C)  # old A down, not removed yet
    stale = g
    g = synced(join(g, member_of(A2), by=B), C)
    assert g.members[A].status is S.down and g.members[A2].status is S.joining
    # A stale copy from a node that missed the join changes nothing.
    assert merge(g, stale) == g
    g = leader_actions(g, B)
    assert g.members[A].status is S.removed and g.member(A2) == member_of(A2, S.up, 4)
    assert member_at(g, A.node) == member_of(A2, S.up, 4)


def test_restart_downs_a_live_old_incarnation() -> None:
    g = join(formed(A, B), member_of(A2), by=B)
    assert g.members[A].status is S.down
    g = leader_actions(g, B)  # A has not seen it, but A is down: converged
    assert g.members[A].status is S.removed and g.members[A2].status is S.up


# --------------------------------------------------------------------------- events


def names(events: list[ClusterEvent]) -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = []
    for e in events:
        if isinstance(e, LeaderChanged):
            out.append(("LeaderChanged", e.leader))
        else:
            out.append((type(e).__name__, e.member.unique))
    return out


def test_events_of_a_life_cycle() -> None:
    g0 = Gossip()
    g1 = join(g0, member_of(A), by=A)
    assert names(diff_events(g0, g1)) == [("LeaderChanged", A.node)]
    g2 = leader_actions(g1, A)
    assert names(diff_events(g1, g2)) == [("MemberUp", A)]
    g3 = join(g2, member_of(B), by=A)
    assert diff_events(g2, g3) == []
    g4 = leader_actions(synced(g3, B), A)
    assert names(diff_events(g3, g4)) == [("MemberUp", B)]
    g5 = mark_unreachable(g4, A, B)
    assert names(diff_events(g4, g5)) == [("UnreachableMember", B)]
    assert diff_events(g4, g5, self_unique=B) == []  # never about oneself
    g6 = mark_reachable(g5, A, B)
    assert names(diff_events(g5, g6)) == [("ReachableMember", B)]
    g7 = leave(g6, A, by=A)
    assert diff_events(g6, g7) == []
    g8 = leader_actions(synced(g7, B), A)
    assert names(diff_events(g7, g8)) == [("LeaderChanged", B.node)]  # A exiting
    g9 = leader_actions(synced(g8, B), B)
    assert names(diff_events(g8, g9)) == [("MemberLeft", A)]


def test_events_of_a_failure() -> None:
    g = mark_unreachable(formed(A, B, C), A, C)
    downed = down(g, C, by=A)
    assert names(diff_events(g, downed)) == [("MemberDowned", C)]  # no ReachableMember
    removed = leader_actions(synced(downed, B), A)
    assert diff_events(downed, removed) == []  # no MemberLeft after a down
    # A node that missed the down still reports a downing, never a leave.
    assert names(diff_events(formed(A, B, C), removed)) == [("MemberDowned", C)]


def test_events_of_a_new_node_and_of_the_leader() -> None:
    g = mark_unreachable(formed(A, B, C), B, A)
    events = diff_events(Gossip(), g)
    assert names(events) == [
        ("MemberUp", A),
        ("MemberUp", B),
        ("MemberUp", C),
        ("UnreachableMember", A),
        ("LeaderChanged", B.node),
    ]
    assert events[0] == MemberUp(member_of(A, S.up, 1))
    assert names(diff_events(g, Gossip())) == [("LeaderChanged", None)]
    assert diff_events(Gossip(), Gossip([member_of(A, S.removed, 1)])) == []


# --------------------------------------------------------------------------- simulation


class Cluster:
    """Nodes each holding their own gossip; every state change is diffed into events."""

    def __init__(self) -> None:
        self.state: dict[UniqueAddress, Gossip] = {u: Gossip() for u in UNIQUES}
        self.events: dict[UniqueAddress, list[ClusterEvent]] = defaultdict(list)
        self.history: dict[UniqueAddress, list[Gossip]] = {u: [Gossip()] for u in UNIQUES}
        self.set(A, join(Gossip(), member_of(A), by=A))

    def set(self, node: UniqueAddress, new: Gossip) -> None:
        old = self.state[node]
        assert old.version <= new.version
        for unique, member in old.members.items():
            assert new.members[unique].status.precedence >= member.status.precedence
        self.events[node].extend(diff_events(old, new, self_unique=node))
        self.state[node] = new
        self.history[node].append(new)

    def in_cluster(self, node: UniqueAddress) -> bool:
        return node in self.state[node].members

    def step(self, kind: str, i: int, j: int) -> None:
        """Apply one scripted step; ``i`` and ``j`` pick the nodes among the eligible ones."""
        insiders = [u for u in UNIQUES if self.in_cluster(u)]
        x = insiders[i % len(insiders)]
        gx = self.state[x]
        others = [u for u in sorted(gx.members) if u != x]
        y = others[j % len(others)] if others else x
        if kind == "join":
            outsiders = [u for u in UNIQUES if not self.in_cluster(u)]
            if outsiders:
                self.join(outsiders[j % len(outsiders)], x)
        elif kind == "gossip":
            self.gossip(x, insiders[j % len(insiders)])
        elif kind == "lead":
            self.set(x, leader_actions(gx, x))
        elif kind == "leave":
            self.set(x, leave(gx, x, by=x))
        elif kind == "down":
            self.set(x, down(gx, y, by=x))
        elif kind == "unreachable":
            self.set(x, mark_unreachable(gx, x, y))
        elif kind == "reachable":
            self.set(x, mark_reachable(gx, x, y))

    def join(self, joiner: UniqueAddress, contact: UniqueAddress) -> None:
        """``contact`` handles the join request of ``joiner`` and welcomes it with its gossip."""
        if joiner not in self.state[contact].members:
            self.set(contact, join(self.state[contact], member_of(joiner), by=contact))
            self.set(joiner, seen_by(merge(self.state[joiner], self.state[contact]), joiner))

    def gossip(self, sender: UniqueAddress, receiver: UniqueAddress) -> None:
        if sender != receiver:
            g = self.state[receiver]
            self.set(receiver, seen_by(merge(g, self.state[sender]), receiver))

    def settle(self) -> None:
        """Heal every observation, then gossip all-to-all and run leader actions until fixpoint."""
        for node in UNIQUES:
            for subject in sorted(self.state[node].members):
                self.set(node, mark_reachable(self.state[node], node, subject))
        for _ in range(30):
            before = dict(self.state)
            insiders = [u for u in UNIQUES if self.in_cluster(u)]
            for _ in range(2):
                for x in insiders:
                    for y in insiders:
                        self.gossip(x, y)
            for x in insiders:
                self.set(x, leader_actions(self.state[x], x))
            if self.state == before:
                return
        raise AssertionError("membership did not settle")


steps = st.lists(
    st.tuples(
        st.sampled_from(
            [
                *("join", "join", "gossip", "gossip", "gossip", "lead", "lead"),
                *("leave", "down", "unreachable", "unreachable", "reachable"),
            ]
        ),
        st.integers(0, 7),
        st.integers(0, 7),
    ),
    min_size=20,
    max_size=50,
)


def check_event_log(node: UniqueAddress, cluster: Cluster) -> None:
    events = cluster.events[node]
    history = cluster.history[node]
    first, last = history[0], history[-1]
    per_member: dict[UniqueAddress, list[str]] = defaultdict(list)
    leaders: list[NodeAddress | None] = []
    for event in events:
        if isinstance(event, LeaderChanged):
            leaders.append(event.leader)
        else:
            per_member[event.member.unique].append(type(event).__name__)
    for unique, kinds in per_member.items():
        counts = Counter(kinds)
        # Each transition exactly once; a member leaves or is downed, not both.
        assert counts["MemberUp"] <= 1 and counts["MemberDowned"] <= 1
        assert counts["MemberLeft"] <= 1
        assert counts["MemberLeft"] + counts["MemberDowned"] <= 1
        assert unique != node or counts["UnreachableMember"] == counts["ReachableMember"] == 0
        # Reachability alternates, starting with unreachable; nothing after a member is gone.
        flips = [k for k in kinds if k in ("UnreachableMember", "ReachableMember")]
        assert flips == ["UnreachableMember", "ReachableMember"] * (len(flips) // 2) + (
            ["UnreachableMember"] if len(flips) % 2 else []
        )
        for gone in ("MemberDowned", "MemberLeft"):
            if gone in kinds:
                assert kinds.index(gone) == len(kinds) - 1
        member = last.members[unique]
        if member.status not in (S.down, S.removed) and unique != node:
            assert (len(flips) % 2 == 1) == (member in unreachable_members(last))
    # Nothing missed: what the whole path shows was reported somewhere on the way.
    for event in diff_events(first, last, self_unique=node):
        if isinstance(event, MemberUp) or (
            isinstance(event, MemberDowned) and event.member.status is S.down
        ):
            assert type(event).__name__ in per_member[event.member.unique]
        elif isinstance(event, (MemberDowned, MemberLeft)):
            # Removed: through a leave or a downing, which the two ends alone do not tell.
            assert {"MemberLeft", "MemberDowned"} & set(per_member[event.member.unique])
    # The leader changes only when it does, and the last change names the current leader.
    final = leader(last)
    if leaders:
        assert leaders[-1] == (None if final is None else final.node)
    else:
        assert final is None


@settings(max_examples=20, deadline=None)
@given(steps)
def test_events_exactly_once_per_transition(script: list[tuple[str, int, int]]) -> None:
    cluster = Cluster()
    for kind, x, y in script:
        cluster.step(kind, x, y)
    cluster.settle()
    for node in UNIQUES:
        check_event_log(node, cluster)
    # Everybody who is still in the cluster holds the same members and agrees on the leader.
    live = [
        u
        for u in UNIQUES
        if cluster.in_cluster(u) and cluster.state[u].members[u].status not in (S.down, S.removed)
    ]
    contents = {
        (tuple(cluster.state[u].sorted_members(include_removed=True)), leader(cluster.state[u]))
        for u in live
    }
    assert len(contents) <= 1
    for u in live:
        g = cluster.state[u]
        statuses = {m.status for m in g.members.values()}
        if leader(g) is not None:
            # Settled: nothing is left half-way (down members of an all-down side stay down).
            assert statuses <= {S.up, S.removed}
            assert is_converged(g, u)


@settings(max_examples=6, deadline=None)
@given(st.permutations(UNIQUES[1:4]))
def test_nodes_joining_in_any_order_all_come_up(order: list[UniqueAddress]) -> None:
    cluster = Cluster()
    for node in order:
        cluster.join(node, A)
    cluster.settle()
    g = cluster.state[A]
    assert [m.status for m in g.sorted_members()] == [S.up] * 4
    assert sorted(m.up_number for m in g.sorted_members()) == [1, 2, 3, 4]
    assert oldest(g) == g.member(A)
    for node in UNIQUES[:4]:
        ups = [e for e in cluster.events[node] if isinstance(e, MemberUp)]
        assert sorted(e.member.unique for e in ups) == UNIQUES[:4]
        assert not [e for e in cluster.events[node] if isinstance(e, ReachableMember)]
        assert not [e for e in cluster.events[node] if isinstance(e, UnreachableMember)]
        assert not [e for e in cluster.events[node] if isinstance(e, (MemberLeft, MemberDowned))]
