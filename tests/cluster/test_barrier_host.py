"""BarrierHost, the barrier host's state machine: leases, withdrawals, releases (no I/O).

The property tests drive it with random histories of arrivals, renewals, withdrawals, stale
re-sends, departures, resignations and sweeps, and check every answer against a model of which
calls are live: a call is counted while its lease runs and until it is withdrawn, released,
refused, its member goes or the host resigns.
"""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from hypothesis import given, settings, target
from hypothesis import strategies as st

from casty_trio._core import NodeAddress
from casty_trio.cluster._barrier import LEASE, RESEND_INTERVAL, Answer, BarrierHost, Call

NODES = [NodeAddress(f"n{i}", 1) for i in range(4)]
NAMES = ["a", "b"]
LEASE_T = 2.0


def _call(node: int, call_id: int) -> Call:
    return (NODES[node], call_id)


# ---------------------------------------------------------------------- examples


def test_the_lease_outlasts_several_lost_renewals() -> None:
    assert LEASE >= 3 * RESEND_INTERVAL


def test_a_round_is_released_when_n_arrived() -> None:
    host = BarrierHost[str](lease=LEASE_T)
    assert host.arrive("a", 3, _call(0, 1), "r1", now=0.0) == []
    assert host.arrive("a", 3, _call(1, 2), "r2", now=0.5) == []
    assert host.arrive("a", 3, _call(0, 1), "r1", now=1.0) == []  # a renewal counts once
    answers = host.arrive("a", 3, _call(2, 3), "r3", now=1.5)
    assert answers == [Answer("r1", "a", 1), Answer("r2", "a", 2), Answer("r3", "a", 3)]
    assert not host.has_rounds()


def test_an_arrival_counts_only_while_its_lease_runs() -> None:
    host = BarrierHost[str](lease=LEASE_T)
    host.arrive("a", 2, _call(0, 1), "r1", now=0.0)
    assert host.counted("a", now=2.0) == {_call(0, 1)}  # the lease runs up to 2.0 inclusive
    assert host.counted("a", now=2.01) == frozenset()
    assert host.arrive("a", 2, _call(1, 2), "r2", now=2.01) == []
    # a renewal brings the waiting call back
    assert len(host.arrive("a", 2, _call(0, 1), "r1", now=2.5)) == 2


def test_a_withdrawn_call_never_counts_again() -> None:
    host = BarrierHost[str](lease=LEASE_T)
    host.arrive("a", 2, _call(0, 1), "r1", now=0.0)
    host.withdraw("a", _call(0, 1), now=0.1)
    assert not host.has_rounds()
    # a stale re-send after the withdrawal (a reordered frame) is ignored
    assert host.arrive("a", 2, _call(0, 1), "r1", now=0.2) == []
    assert host.arrive("a", 2, _call(1, 2), "r2", now=0.3) == []
    assert host.counted("a", now=0.3) == {_call(1, 2)}


def test_a_withdrawal_before_its_arrival_wins() -> None:
    host = BarrierHost[str](lease=LEASE_T)
    host.withdraw("a", _call(0, 1), now=0.0)
    assert host.arrive("a", 1, _call(0, 1), "r1", now=0.1) == []


def test_another_n_is_refused_and_the_round_goes_on() -> None:
    host = BarrierHost[str](lease=LEASE_T)
    host.arrive("a", 2, _call(0, 1), "r1", now=0.0)
    [refusal] = host.arrive("a", 3, _call(1, 2), "r2", now=0.1)
    assert refusal.reply_to == "r2" and "n=3" in refusal.error and "n=2" in refusal.error
    assert host.counted("a", now=0.1) == {_call(0, 1)}
    # once the round's only arrival lapsed, the round is gone: another n opens a new one
    assert host.arrive("a", 3, _call(1, 5), "r5", now=5.0) == []


def test_a_late_resend_of_a_decided_call_gets_the_same_answer() -> None:
    host = BarrierHost[str](lease=LEASE_T)
    host.arrive("a", 1, _call(0, 1), "r1", now=0.0)
    assert host.arrive("a", 1, _call(0, 1), "r1", now=0.5) == [Answer("r1", "a", 1)]
    # and it is not counted in the next round
    assert host.arrive("a", 2, _call(1, 2), "r2", now=0.6) == []
    assert host.counted("a", now=0.6) == {_call(1, 2)}
    [refusal] = host.arrive("a", 3, _call(2, 3), "r3", now=0.7)
    assert host.arrive("a", 3, _call(2, 3), "r3", now=0.8) == [refusal]
    host.arrive("a", 2, _call(1, 2), "r2", now=5.0)  # the round at n=2 lapsed and restarts
    assert host.arrive("a", 3, _call(2, 3), "r3", now=5.1) == [refusal]  # still refused


def test_member_gone_and_resign_drop_arrivals() -> None:
    host = BarrierHost[str](lease=LEASE_T)
    host.arrive("a", 3, _call(0, 1), "r1", now=0.0)
    host.arrive("a", 3, _call(1, 2), "r2", now=0.0)
    host.member_gone(NODES[0])
    assert host.counted("a", now=0.0) == {_call(1, 2)}
    host.resign()
    assert not host.has_rounds()


def test_expire_frees_lapsed_rounds() -> None:
    host = BarrierHost[str](lease=LEASE_T)
    host.arrive("a", 2, _call(0, 1), "r1", now=0.0)
    host.expire(now=1.0)
    assert host.has_rounds()
    host.expire(now=3.0)
    assert not host.has_rounds()


def test_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="positive"):
        BarrierHost[str](lease=0)
    with pytest.raises(ValueError, match="remembered"):
        BarrierHost[str](remembered=-1)


# ---------------------------------------------------------------------- properties


@attrs.frozen
class _Spec:
    """A call of the generated history: where it comes from and what it waits for."""

    node: int
    name: str
    n: int


# A history step: (kind, call index or node, time step). Times are multiples of 0.25 s so that
# the lease boundary (now - renewed == lease) is hit exactly in some histories.
_step = st.tuples(
    st.sampled_from(["arrive"] * 8 + ["withdraw", "withdraw", "gone", "resign", "expire"]),
    st.integers(0, 11),
    st.sampled_from([0.0, 0.0, 0.25, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0]),
)


@st.composite
def _specs(draw: st.DrawFn) -> list[_Spec]:
    """Twelve calls; the calls at a name mostly agree on its ``n`` (some do not, to be
    refused), so that rounds of several calls get released."""
    n_of = {name: draw(st.integers(1, 4)) for name in NAMES}
    specs = []
    for _ in range(12):
        name = draw(st.sampled_from(NAMES))
        n = draw(st.integers(1, 4)) if draw(st.integers(0, 9)) == 0 else n_of[name]
        specs.append(_Spec(draw(st.integers(0, len(NODES) - 1)), name, n))
    return specs


@attrs.define
class _Model:
    """Which calls are live, from the events alone."""

    specs: list[_Spec]
    last_arrival: dict[int, tuple[int, float]] = attrs.Factory(dict)  # call -> (step, time)
    finished: set[int] = attrs.Factory(set)  # withdrawn, released or refused
    released: set[int] = attrs.Factory(set)
    answered: dict[int, Answer[int]] = attrs.Factory(dict)  # released or refused: its answer
    gone: dict[int, int] = attrs.Factory(dict)  # node -> step of its last departure
    resigned: int = -1

    def live(self, call: int, now: float) -> bool:
        if call in self.finished or call not in self.last_arrival:
            return False
        step, at = self.last_arrival[call]
        spec = self.specs[call]
        return now - at <= LEASE_T and step > self.gone.get(spec.node, -1) and step > self.resigned


@settings(max_examples=300, deadline=None)
@given(_specs(), st.lists(_step, max_size=80))
def test_releases_count_exactly_n_live_calls_once(
    specs: list[_Spec], steps: list[tuple[str, int, float]]
) -> None:
    host = BarrierHost[int](lease=LEASE_T)
    model = _Model(specs)
    now = 0.0
    rounds_released = 0
    for index, (kind, which, dt) in enumerate(steps):
        now += dt
        if kind == "gone":
            host.member_gone(NODES[which % len(NODES)])
            model.gone[which % len(NODES)] = index
            continue
        if kind == "resign":
            host.resign()
            model.resigned = index
            continue
        if kind == "expire":
            host.expire(now)
            continue
        spec = specs[which]
        call = _call(spec.node, which)
        if kind == "withdraw":
            host.withdraw(spec.name, call, now)
            model.finished.add(which)
            continue
        # an arrival: a first arrival, a renewal, or a stale re-send of a finished call
        was_finished = which in model.finished
        if not was_finished:
            model.last_arrival[which] = (index, now)
        live_before = {
            c
            for c in range(len(specs))
            if c != which and specs[c].name == spec.name and model.live(c, now)
        }
        answers = host.arrive(spec.name, spec.n, call, which, now)
        for answer in answers:
            assert answer.reply_to == answer.call  # answers go to the call they are about
            assert answer.name == spec.name
        if was_finished:
            # never counted again; a released or refused call gets its answer again, alone
            expected = [model.answered[which]] if which in model.answered else []
            assert answers == expected
            continue
        refusals = [a for a in answers if a.error]
        if refusals:
            assert refusals == answers and [a.call for a in answers] == [which]
            # refused only if a live call of the same name waits for another n
            assert any(specs[c].n != spec.n for c in live_before)
            model.finished.add(which)
            model.answered[which] = refusals[0]
            continue
        # every live call of this name is in this round (the others were refused): so all of
        # them wait for this n
        assert all(specs[c].n == spec.n for c in live_before)
        live = live_before | {which}
        if answers:
            released = [a.call for a in answers]
            assert len(released) == len(set(released)) == spec.n
            assert set(released) == live  # exactly the n live calls, never a lapsed one
            assert not set(released) & model.released  # each call in one round only
            model.released |= set(released)
            model.finished |= set(released)
            model.answered.update((a.call, a) for a in answers)
            rounds_released += 1
            assert host.counted(spec.name, now) == frozenset()
        else:
            assert len(live) < spec.n  # released as soon as n live calls are counted
            assert host.counted(spec.name, now) == {_call(specs[c].node, c) for c in live}
    target(float(rounds_released), label="rounds released")  # steer towards busy histories
    # bookkeeping is consistent with the releases: every released call in exactly one round
    assert len(model.released) <= len(specs)
    assert rounds_released <= len(specs)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 11), min_size=1, max_size=40), st.integers(1, 5))
def test_renewed_calls_never_lapse(order: list[int], n: int) -> None:
    """Calls renewed every :data:`RESEND_INTERVAL` stay counted however long they wait: the
    round is released at the arrival of the n-th distinct call."""
    host = BarrierHost[Any](lease=LEASE)
    now = 0.0
    seen: set[int] = set()
    for call in order:
        now += RESEND_INTERVAL
        for other in sorted(seen):  # everyone waiting renews once per interval
            assert host.arrive("a", n, _call(0, other), other, now) == []
        answers = host.arrive("a", n, _call(0, call), call, now)
        seen.add(call)
        if len(seen) < n:
            assert answers == []
        else:
            assert sorted(a.call for a in answers) == sorted(seen)
            return
