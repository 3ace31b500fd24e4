"""The phi accrual failure detector and its registry: pure, time passed in, property-tested."""

from __future__ import annotations

import doctest
import functools
import math
import statistics

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from casty_trio._core import NodeAddress
from casty_trio.cluster import _failure_detector
from casty_trio.cluster._failure_detector import (
    FailureDetectorRegistry,
    PhiAccrualFailureDetector,
    compute_phi,
)

LOG10_2 = math.log10(2.0)

#: For the slower properties (long heartbeat histories).
quick = settings(max_examples=50)

intervals = st.lists(st.floats(0.0, 5.0), max_size=60)
delays = st.floats(0.0, 1e6)
thresholds = st.floats(1.0, 100.0)


def feed(detector: PhiAccrualFailureDetector, gaps: list[float], start: float = 0.0) -> float:
    """Heartbeat at ``start`` and then after each gap; returns the time of the last one."""
    now = start
    detector.heartbeat(now)
    for gap in gaps:
        now += gap
        detector.heartbeat(now)
    return now


def effective(detector: PhiAccrualFailureDetector) -> tuple[float, float]:
    """The mean (pause included) and standard deviation phi works with."""
    stats = detector.statistics()
    return (
        stats.mean + detector.acceptable_heartbeat_pause,
        max(stats.std_deviation, detector.min_std_deviation),
    )


def test_docstring_examples() -> None:
    result = doctest.testmod(_failure_detector, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


def test_defaults_are_the_spec_defaults() -> None:
    detector = PhiAccrualFailureDetector()
    assert detector.threshold == 8.0
    assert detector.max_sample_size == 200
    assert detector.min_std_deviation == 0.1
    assert detector.acceptable_heartbeat_pause == 0.0
    assert detector.first_heartbeat_estimate == 1.0


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("threshold", 0.0),
        ("threshold", -1.0),
        ("threshold", math.inf),
        ("threshold", math.nan),
        ("max_sample_size", 0),
        ("min_std_deviation", 0.0),
        ("min_std_deviation", math.nan),
        ("acceptable_heartbeat_pause", -0.1),
        ("acceptable_heartbeat_pause", math.inf),
        ("first_heartbeat_estimate", 0.0),
        ("first_heartbeat_estimate", math.inf),
    ],
)
def test_bad_settings_are_refused(setting: str, value: float) -> None:
    with pytest.raises(ValueError, match=setting):
        PhiAccrualFailureDetector(**{setting: value})  # type: ignore[arg-type]


def test_settings_are_read_only() -> None:
    detector = PhiAccrualFailureDetector()
    with pytest.raises(AttributeError):
        detector.threshold = 1.0


@given(now=st.floats(-1e300, 1e300))
def test_unmonitored_peer_counts_as_healthy(now: float) -> None:
    detector = PhiAccrualFailureDetector()
    assert not detector.is_monitoring
    assert detector.phi(now) == 0.0
    assert detector.is_available(now)


def test_first_heartbeat_seeds_the_history_like_akka() -> None:
    detector = PhiAccrualFailureDetector(first_heartbeat_estimate=2.0)
    detector.heartbeat(10.0)
    stats = detector.statistics()
    assert detector.is_monitoring
    assert stats.sample_count == 2
    assert stats.mean == pytest.approx(2.0)
    assert stats.std_deviation == pytest.approx(0.5)
    assert stats.last_heartbeat == 10.0


def test_default_profile_detects_a_dead_peer_about_a_second_after_its_last_heartbeat() -> None:
    detector = PhiAccrualFailureDetector()
    last = feed(detector, [0.5] * 300)
    assert detector.statistics().mean == pytest.approx(0.5)
    assert detector.phi(last) < 1e-6
    assert detector.is_available(last + 1.0)  # phi ~ 7.3
    assert not detector.is_available(last + 1.1)  # phi ~ 10.8


def test_acceptable_pause_postpones_suspicion() -> None:
    strict = PhiAccrualFailureDetector()
    lenient = PhiAccrualFailureDetector(acceptable_heartbeat_pause=3.0)
    last = feed(strict, [0.5] * 50)
    feed(lenient, [0.5] * 50)
    assert not strict.is_available(last + 3.0)
    assert lenient.is_available(last + 3.0)
    assert not lenient.is_available(last + 10.0)


@given(gaps=intervals)
def test_phi_right_after_a_heartbeat_is_near_zero(gaps: list[float]) -> None:
    detector = PhiAccrualFailureDetector()
    last = feed(detector, gaps)
    assert 0.0 <= detector.phi(last) <= LOG10_2
    assert detector.is_available(last)


@given(gaps=st.lists(st.floats(0.4, 0.6), min_size=20, max_size=60))
def test_regular_heartbeats_leave_phi_at_practically_zero(gaps: list[float]) -> None:
    # Once the window holds only real samples (the first estimate's seeds are gone).
    detector = PhiAccrualFailureDetector(max_sample_size=20)
    last = feed(detector, gaps)
    assert detector.phi(last) < 1e-4


@given(gaps=intervals, a=delays, b=delays, pause=st.floats(0.0, 10.0))
def test_phi_never_decreases_while_silence_lasts(
    gaps: list[float], a: float, b: float, pause: float
) -> None:
    detector = PhiAccrualFailureDetector(acceptable_heartbeat_pause=pause)
    last = feed(detector, gaps)
    early, late = sorted((a, b))
    assert detector.phi(last + early) <= detector.phi(last + late) * (1 + 1e-12) + 1e-300


@quick
@given(
    interval=st.floats(0.05, 1.0),
    jitters=st.lists(st.floats(-0.05, 0.05), min_size=1, max_size=300),
)
def test_regular_heartbeats_keep_the_peer_available(interval: float, jitters: list[float]) -> None:
    """Heartbeats every ``interval`` (+-5 %), never slower than the first estimate."""
    detector = PhiAccrualFailureDetector()
    now = 0.0
    detector.heartbeat(now)
    for jitter in jitters:
        nxt = now + interval * (1 + jitter)
        # Checked at the worst moment: just before the next heartbeat arrives.
        assert detector.is_available(nxt), detector.phi(nxt)
        detector.heartbeat(nxt)
        now = nxt


@quick
@given(gaps=intervals, threshold=thresholds, pause=st.floats(0.0, 10.0))
def test_a_long_silence_makes_the_peer_unavailable(
    gaps: list[float], threshold: float, pause: float
) -> None:
    detector = PhiAccrualFailureDetector(threshold=threshold, acceptable_heartbeat_pause=pause)
    last = feed(detector, gaps)
    mean, std = effective(detector)
    silence = mean + 20 * std  # phi ~ 259 here, above every threshold drawn
    assert detector.phi(last + silence) >= threshold
    assert not detector.is_available(last + silence)
    assert not detector.is_available(last + 1e9)


@given(
    mean=st.floats(0.0, 100.0),
    excess=st.floats(1e-6, 100.0),
    std_a=st.floats(1e-3, 50.0),
    std_b=st.floats(1e-3, 50.0),
)
def test_a_larger_deviation_means_less_suspicion_for_a_late_heartbeat(
    mean: float, excess: float, std_a: float, std_b: float
) -> None:
    small, large = sorted((std_a, std_b))
    time_diff = mean + excess
    assert compute_phi(time_diff, mean, large) <= compute_phi(time_diff, mean, small)


@quick
@given(gaps=st.lists(st.floats(0.4, 0.6), max_size=40), excess=st.floats(0.05, 5.0))
def test_a_larger_min_deviation_means_less_suspicion(gaps: list[float], excess: float) -> None:
    tight = PhiAccrualFailureDetector(min_std_deviation=0.05, first_heartbeat_estimate=0.5)
    loose = PhiAccrualFailureDetector(min_std_deviation=0.5, first_heartbeat_estimate=0.5)
    last = feed(tight, gaps)
    feed(loose, gaps)
    mean, _ = effective(loose)
    late = last + max(mean, effective(tight)[0]) + excess
    assert loose.phi(late) <= tight.phi(late)


@quick
@given(max_size=st.integers(1, 30), count=st.integers(0, 120))
def test_history_is_bounded_by_the_window(max_size: int, count: int) -> None:
    detector = PhiAccrualFailureDetector(max_sample_size=max_size)
    feed(detector, [0.5] * count)
    assert detector.statistics().sample_count == min(count + 2, max_size)


@quick
@given(
    max_size=st.integers(1, 40),
    gaps=st.lists(st.floats(0.0, 1e4), max_size=150),
    estimate=st.floats(1e-3, 100.0),
)
def test_running_statistics_match_the_window_exactly(
    max_size: int, gaps: list[float], estimate: float
) -> None:
    # A threshold no phi reaches, so every interval is recorded.
    detector = PhiAccrualFailureDetector(
        threshold=1e300, max_sample_size=max_size, first_heartbeat_estimate=estimate
    )
    feed(detector, gaps)
    seed = round(estimate * 1e6)
    micros = [seed - seed // 4, seed + seed // 4, *(round(g * 1e6) for g in gaps)]
    window = [m / 1e6 for m in micros[-max_size:]]
    stats = detector.statistics()
    assert stats.sample_count == len(window)
    assert stats.mean == pytest.approx(statistics.fmean(window), rel=1e-9, abs=1e-9)
    assert stats.std_deviation == pytest.approx(statistics.pstdev(window), rel=1e-6, abs=1e-6)


def test_the_heartbeat_ending_a_failure_is_not_a_sample() -> None:
    detector = PhiAccrualFailureDetector()
    last = feed(detector, [0.5] * 10)
    before = detector.statistics()
    detector.heartbeat(last + 100.0)  # the peer was unavailable: the 100 s pause is skipped
    after = detector.statistics()
    assert after.sample_count == before.sample_count
    assert after.mean == before.mean
    assert after.last_heartbeat == last + 100.0
    assert detector.phi(last + 100.0) < 0.01


def test_a_heartbeat_from_the_past_counts_as_a_zero_interval() -> None:
    detector = PhiAccrualFailureDetector()
    detector.heartbeat(5.0)
    detector.heartbeat(3.0)
    stats = detector.statistics()
    assert stats.sample_count == 3
    assert stats.last_heartbeat == 5.0


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_heartbeat_times_are_refused(bad: float) -> None:
    detector = PhiAccrualFailureDetector()
    with pytest.raises(ValueError, match="finite"):
        detector.heartbeat(bad)
    assert not detector.is_monitoring


def test_nan_time_is_refused_by_phi() -> None:
    detector = PhiAccrualFailureDetector()
    with pytest.raises(ValueError, match="NaN"):
        detector.phi(math.nan)
    detector.heartbeat(0.0)
    with pytest.raises(ValueError, match="NaN"):
        detector.phi(math.nan)


def test_infinite_silence_is_infinitely_suspicious() -> None:
    detector = PhiAccrualFailureDetector()
    detector.heartbeat(0.0)
    assert detector.phi(math.inf) == math.inf
    assert detector.phi(-math.inf) == 0.0
    assert not detector.is_available(math.inf)


huge = st.floats(-1e300, 1e300)


@given(
    times=st.lists(huge, max_size=30),
    probe=huge,
    threshold=st.floats(1e-300, 1e300),
    max_size=st.integers(1, 5),
    min_std=st.floats(1e-300, 1e300),
    pause=st.floats(0.0, 1e300),
    estimate=st.floats(1e-300, 1e300),
)
def test_extreme_inputs_give_no_exception_and_no_nan(
    times: list[float],
    probe: float,
    threshold: float,
    max_size: int,
    min_std: float,
    pause: float,
    estimate: float,
) -> None:
    detector = PhiAccrualFailureDetector(
        threshold=threshold,
        max_sample_size=max_size,
        min_std_deviation=min_std,
        acceptable_heartbeat_pause=pause,
        first_heartbeat_estimate=estimate,
    )
    for t in times:
        detector.heartbeat(t)
        phi = detector.phi(t)
        assert not math.isnan(phi) and phi >= 0.0
    phi = detector.phi(probe)
    assert not math.isnan(phi) and phi >= 0.0
    stats = detector.statistics()
    assert math.isfinite(stats.mean) and math.isfinite(stats.std_deviation)


@given(
    time_diff=st.floats(allow_nan=False),
    mean=st.floats(0.0, 1e300),
    std=st.floats(5e-324, 1e300),
)
def test_compute_phi_is_numerically_safe(time_diff: float, mean: float, std: float) -> None:
    phi = compute_phi(time_diff, mean, std)
    assert not math.isnan(phi)
    assert phi >= 0.0
    if time_diff <= mean:
        assert phi <= LOG10_2 + 1e-15


def test_registry_tracks_one_detector_per_peer() -> None:
    a, b = NodeAddress("10.0.0.1", 2552), NodeAddress("10.0.0.2", 2552)
    registry: FailureDetectorRegistry[NodeAddress] = FailureDetectorRegistry()
    assert registry.is_available(a, 1e6)
    assert registry.phi(a, 1e6) == 0.0
    assert not registry.is_monitoring(a)
    assert registry.detector(a) is None
    assert len(registry) == 0

    for i in range(20):
        registry.heartbeat(a, i * 0.5)
        registry.heartbeat(b, i * 0.5)
    registry.heartbeat(b, 20.0)
    assert registry.is_monitoring(a) and registry.is_monitoring(b)
    assert a in registry and len(registry) == 2
    assert set(registry) == {a, b}
    assert registry.unavailable(20.0) == frozenset({a})
    assert not registry.is_available(a, 20.0)
    assert registry.phi(a, 20.0) > registry.phi(b, 20.0)
    detector = registry.detector(b)
    assert detector is not None and detector.statistics().last_heartbeat == 20.0

    registry.remove(a)
    registry.remove(a)  # unknown keys are ignored
    assert a not in registry and registry.is_available(a, 20.0)
    registry.reset()
    assert len(registry) == 0
    assert "registry" in repr(registry).lower()


def test_registry_builds_detectors_with_the_factory() -> None:
    factory = functools.partial(PhiAccrualFailureDetector, threshold=3.0, max_sample_size=5)
    registry: FailureDetectorRegistry[str] = FailureDetectorRegistry(factory)
    registry.heartbeat("x", 0.0)
    detector = registry.detector("x")
    assert detector is not None
    assert detector.threshold == 3.0 and detector.max_sample_size == 5
