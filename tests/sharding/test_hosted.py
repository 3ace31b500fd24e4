"""Hosted: when a shard at its home stops for a handoff (pure; property-tested)."""

from __future__ import annotations

import doctest

from hypothesis import given
from hypothesis import strategies as st

from casty_trio import NodeAddress
from casty_trio.sharding import _hosted
from casty_trio.sharding._hosted import (
    ACTIVE,
    COLLECTING,
    NOT_HOSTED,
    STOP,
    STOPPING,
    SYNCING,
    Hosted,
    ShardAction,
)
from casty_trio.sharding._wire import HandOff

_NODES = [NodeAddress("10.0.0.1", 25520 + k) for k in range(5)]
_EPOCH = 7
_DEADLINE = 10.0

node_sets = st.sets(st.sampled_from(_NODES))
rounds = st.integers(1, 3)
# (round, sender) of a marker
markers = st.lists(st.tuples(rounds, st.sampled_from(_NODES)))
times = st.just(_DEADLINE) | st.floats(0.0, 2 * _DEADLINE)


def test_docstrings() -> None:
    result = doctest.testmod(_hosted)
    assert result.failed == 0 and result.attempted > 0


def _request(round_: int, epoch: int = _EPOCH) -> HandOff:
    return HandOff(3, epoch, round_, [])


def _snapshot(hosted: Hosted) -> tuple[object, ...]:
    return (
        hosted.state,
        frozenset(hosted.markers),
        frozenset(hosted.awaiting),
        hosted.round,
        hosted.deadline,
        hosted.handoff,
    )


_trace_events = st.lists(
    st.one_of(
        st.tuples(st.just("marker"), rounds, st.sampled_from(_NODES)),
        st.tuples(st.just("members"), node_sets),
        st.tuples(st.just("tick"), times),
    ),
    max_size=30,
)


@given(markers, rounds, node_sets, _trace_events)
def test_a_handoff_stops_the_shard_exactly_when_the_awaited_markers_came_or_time_is_up(
    early: list[tuple[int, NodeAddress]],
    round_: int,
    expected: set[NodeAddress],
    events: list[tuple[object, ...]],
) -> None:
    hosted = Hosted(3, _EPOCH)
    for r, sender in early:
        assert hosted.marker(r, sender) is None
    # awaited: the expected regions whose marker of this round has not come, still members
    awaited = expected - {sender for r, sender in early if r == round_}
    action = hosted.hand_off(_request(round_), expected, _DEADLINE)
    if not awaited:
        assert action is STOP and hosted.state == STOPPING
        return
    assert action is None and hosted.state == COLLECTING
    for event in events:
        if event[0] == "marker":
            r, sender = event[1], event[2]
            assert isinstance(r, int) and isinstance(sender, NodeAddress)
            action = hosted.marker(r, sender)
            if r == round_:
                awaited.discard(sender)
            due = not awaited
        elif event[0] == "members":
            live = event[1]
            assert isinstance(live, set)
            action = hosted.members_changed(live)
            awaited &= live
            due = not awaited
        else:
            now = event[1]
            assert isinstance(now, float)
            action = hosted.tick(now)
            due = now >= _DEADLINE
        if due:
            assert action is STOP and hosted.state == STOPPING
            return
        assert action is None and hosted.state == COLLECTING
        assert hosted.awaiting == awaited


_any_events = st.lists(
    st.one_of(
        st.tuples(st.just("hand_off"), st.integers(-1, 1), rounds, node_sets),
        st.tuples(st.just("marker"), rounds, st.sampled_from(_NODES)),
        st.tuples(st.just("members"), node_sets),
        st.tuples(st.just("tick"), times),
        st.tuples(st.just("home_confirmed")),
        st.tuples(st.just("moved")),
        st.tuples(st.just("fence"), st.integers(-2, 2)),
        st.tuples(st.just("drop"), st.integers(-1, 1)),
        st.tuples(st.just("synced")),
    ),
    max_size=30,
)


def _apply(hosted: Hosted, event: tuple[object, ...]) -> ShardAction | None:
    kind = event[0]
    if kind == "hand_off":
        offset, round_, expected = event[1], event[2], event[3]
        assert isinstance(offset, int) and isinstance(round_, int)
        assert isinstance(expected, set)
        return hosted.hand_off(_request(round_, _EPOCH + offset), expected, _DEADLINE)
    if kind == "marker":
        round_, sender = event[1], event[2]
        assert isinstance(round_, int) and isinstance(sender, NodeAddress)
        return hosted.marker(round_, sender)
    if kind == "members":
        assert isinstance(event[1], set)
        return hosted.members_changed(event[1])
    if kind == "tick":
        assert isinstance(event[1], float)
        return hosted.tick(event[1])
    if kind == "home_confirmed":
        hosted.home_confirmed()
        return None
    if kind == "moved":
        return hosted.moved()
    if kind == "fence":
        assert isinstance(event[1], int)
        return hosted.fence(_EPOCH + event[1])
    if kind == "drop":
        assert isinstance(event[1], int)
        return hosted.drop(_EPOCH + event[1])
    # the end of a history copy, as the replication's PrimarySide performs it
    if hosted.syncing:
        hosted.syncing = False
        request, hosted.handoff = hosted.handoff, None
        if request is not None:
            return hosted.hand_off(request, set(), _DEADLINE)
    return None


@given(st.booleans(), _any_events)
def test_a_shard_stops_once_and_stays_stopping(
    syncing: bool, events: list[tuple[object, ...]]
) -> None:
    hosted = Hosted(3, _EPOCH)
    hosted.syncing = syncing
    stops = 0
    for event in events:
        before = hosted.state
        action = _apply(hosted, event)
        if action is STOP:
            stops += 1
            assert before != STOPPING and hosted.state == STOPPING
        elif before == STOPPING:
            assert hosted.state == STOPPING
    assert stops <= 1


@given(st.booleans(), _any_events, st.integers(-3, 3), rounds, node_sets)
def test_another_allocation_epoch_is_ignored(
    syncing: bool,
    events: list[tuple[object, ...]],
    offset: int,
    round_: int,
    expected: set[NodeAddress],
) -> None:
    hosted = Hosted(3, _EPOCH)
    hosted.syncing = syncing
    for event in events:
        _apply(hosted, event)
    before = _snapshot(hosted)
    if offset != 0:
        request = _request(round_, _EPOCH + offset)
        assert hosted.hand_off(request, expected, _DEADLINE) is NOT_HOSTED
        assert hosted.drop(_EPOCH + offset) is None
    if offset <= 0:
        assert hosted.fence(_EPOCH + offset) is None
    assert _snapshot(hosted) == before


@given(markers, rounds, st.sets(st.sampled_from(_NODES), min_size=1))
def test_a_handoff_asked_for_while_syncing_starts_once_the_history_is_here(
    early: list[tuple[int, NodeAddress]], round_: int, expected: set[NodeAddress]
) -> None:
    hosted = Hosted(3, _EPOCH)
    hosted.syncing = True
    request = _request(round_)
    assert hosted.hand_off(request, expected, _DEADLINE) is None
    assert hosted.state == SYNCING and hosted.handoff == request
    for r, sender in early:
        assert hosted.marker(r, sender) is None
    assert hosted.state == SYNCING
    hosted.syncing = False
    assert hosted.state == ACTIVE
    action = hosted.hand_off(request, expected, _DEADLINE)
    # the markers that came during the copy count
    if expected <= {sender for r, sender in early if r == round_}:
        assert action is STOP
    else:
        assert action is None and hosted.state == COLLECTING


@given(rounds, st.sets(st.sampled_from(_NODES), min_size=1), markers)
def test_a_handoff_given_up_serves_on_and_ignores_its_markers(
    round_: int, expected: set[NodeAddress], late: list[tuple[int, NodeAddress]]
) -> None:
    hosted = Hosted(3, _EPOCH)
    assert hosted.hand_off(_request(round_), expected, _DEADLINE) is None
    hosted.home_confirmed()
    assert hosted.state == ACTIVE
    for r, sender in late:
        assert hosted.marker(r, sender) is None
    assert hosted.tick(2 * _DEADLINE) is None
    assert hosted.members_changed(set()) is None
    assert hosted.state == ACTIVE
