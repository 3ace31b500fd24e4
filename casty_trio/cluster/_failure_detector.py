"""Phi accrual failure detection: pure logic, the time passed in by the caller.

The detector of Hayashibara et al. ("The phi accrual failure detector", 2004) as Akka uses it.
Instead of a yes/no verdict it reports *phi*, a suspicion level on a continuous scale: given the
intervals seen so far between heartbeats (a bounded window, with a running mean and variance),
``phi = -log10(P(the next heartbeat arrives later than now))``, the distribution approximated by a
normal distribution through the logistic approximation of its CDF. ``phi = 1`` means a 10 %
chance that the peer is fine and merely late, ``phi = 8`` (the default threshold) one in 10^8.

Nothing here reads a clock, sleeps or does I/O: every method takes ``now`` (seconds on any
monotonic clock, ``trio.current_time()`` in the cluster), so the detector is tested with plain
numbers and the cluster's failure-detector tick decides when to look.

Examples:
    >>> detector = PhiAccrualFailureDetector()
    >>> for t in (0.0, 0.5, 1.0, 1.5, 2.0):
    ...     detector.heartbeat(t)
    >>> detector.is_available(2.5)
    True
    >>> detector.is_available(12.0)
    False
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Hashable, Iterator
from typing import Generic, TypeVar

import attrs

__all__ = [
    "FailureDetectorRegistry",
    "FailureDetectorStatistics",
    "PhiAccrualFailureDetector",
    "compute_phi",
]

K = TypeVar("K", bound=Hashable)

#: Intervals are kept as integer microseconds, so the running sums are exact (no drift).
_MICROS = 1_000_000
#: Longest interval recorded (about 31.7 years); longer ones are recorded as this.
_MAX_INTERVAL_MICROS = 10**9 * _MICROS
_LN10 = math.log(10.0)


def compute_phi(time_diff: float, mean: float, std_deviation: float) -> float:
    """The suspicion level for a silence of ``time_diff`` seconds.

    ``-log10(1 - F(time_diff))`` where ``F`` is the logistic approximation
    ``1 / (1 + exp(-y * (1.5976 + 0.070566 * y**2)))`` of the normal CDF, ``y`` being
    ``(time_diff - mean) / std_deviation``. Computed in log space, so it never overflows: a
    hopeless silence gives a large phi (``inf`` only for an infinite ``y``), never an exception or
    NaN. Non-decreasing in ``time_diff``; for ``time_diff <= mean`` it is at most
    ``log10(2) ~ 0.301``.

    Args:
        time_diff: Seconds since the last heartbeat.
        mean: Expected interval in seconds (the acceptable pause already added).
        std_deviation: Standard deviation of the intervals; must be positive.

    Returns:
        phi, a non-negative float.

    Examples:
        >>> round(compute_phi(1.0, 1.0, 0.1), 3)
        0.301
        >>> compute_phi(1.6, 1.0, 0.1) > 8
        True
        >>> compute_phi(1.5, 1.0, 0.5) < compute_phi(1.5, 1.0, 0.1)
        True
    """
    y = (time_diff - mean) / std_deviation
    z = y * (1.5976 + 0.070566 * y * y)
    # phi = log10(1 + e**z), written as a softplus that cannot overflow.
    if z > 0.0:
        return (z + math.log1p(math.exp(-z))) / _LN10
    return math.log1p(math.exp(z)) / _LN10


def _positive_finite(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not (0.0 < value < math.inf):  # also refuses nan
        raise ValueError(f"{attribute.name} must be a positive finite number, got {value!r}")


def _non_negative_finite(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not (0.0 <= value < math.inf):
        raise ValueError(f"{attribute.name} must be a non-negative finite number, got {value!r}")


def _at_least_one(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 1:
        raise ValueError(f"{attribute.name} must be at least 1, got {value!r}")


def _to_micros(seconds: float) -> int:
    if seconds >= _MAX_INTERVAL_MICROS / _MICROS:
        return _MAX_INTERVAL_MICROS
    return max(0, round(seconds * _MICROS))


@attrs.frozen
class FailureDetectorStatistics:
    """A snapshot of a detector's heartbeat history (see ``PhiAccrualFailureDetector.statistics``).

    Attributes:
        sample_count: Intervals in the window (at most ``max_sample_size``).
        mean: Mean interval in seconds.
        std_deviation: Standard deviation of the intervals in seconds, before
            ``min_std_deviation`` is applied.
        last_heartbeat: Time of the latest heartbeat, ``None`` before the first one.
    """

    sample_count: int
    mean: float
    std_deviation: float
    last_heartbeat: float | None


@attrs.define(eq=False)
class _HeartbeatHistory:
    """A bounded window of intervals (integer microseconds) with exact running sums."""

    _max_size: int
    _intervals: deque[int] = attrs.field(init=False, factory=deque)
    _sum: int = attrs.field(init=False, default=0)
    _squared_sum: int = attrs.field(init=False, default=0)
    mean: float = attrs.field(init=False, default=0.0)
    std_deviation: float = attrs.field(init=False, default=0.0)

    def __len__(self) -> int:
        return len(self._intervals)

    def append(self, micros: int) -> None:
        if len(self._intervals) >= self._max_size:
            dropped = self._intervals.popleft()
            self._sum -= dropped
            self._squared_sum -= dropped * dropped
        self._intervals.append(micros)
        self._sum += micros
        self._squared_sum += micros * micros
        n = len(self._intervals)
        self.mean = self._sum / (n * _MICROS)
        # n * sum(x^2) - sum(x)^2 >= 0 holds exactly in integers, so no negative variance.
        variance = (n * self._squared_sum - self._sum * self._sum) / (n * n * _MICROS * _MICROS)
        self.std_deviation = math.sqrt(variance)


@attrs.define(eq=False, kw_only=True)
class PhiAccrualFailureDetector:
    """Suspicion of one monitored peer, from the heartbeats it sent (Akka's phi accrual detector).

    All times are seconds on one monotonic clock, passed in explicitly; the detector never reads a
    clock. Every method is synchronous and cheap (``phi`` is O(1)); none is a checkpoint.

    The first heartbeat seeds the history with two intervals, ``first_heartbeat_estimate`` minus
    and plus a quarter of itself (mean ``first_heartbeat_estimate``, deviation a quarter of it),
    as Akka does. Later heartbeats record the interval since the previous one, except the first
    heartbeat after the peer was already considered unavailable, so one long pause does not skew
    the statistics. At most ``max_sample_size`` intervals are kept.

    Args:
        threshold: ``phi`` at or above which the peer counts as unavailable.
        max_sample_size: Intervals kept in the window.
        min_std_deviation: Lower bound of the standard deviation used in ``phi``, in seconds, so
            perfectly regular heartbeats do not make the detector hair-triggered.
        acceptable_heartbeat_pause: Seconds of extra silence tolerated (added to the mean).
        first_heartbeat_estimate: Expected interval before any has been measured, in seconds.
            Take it at least as large as the real heartbeat interval.

    Raises:
        ValueError: a setting is out of range (not positive, negative or not finite).

    Examples:
        >>> detector = PhiAccrualFailureDetector(threshold=8.0, acceptable_heartbeat_pause=1.0)
        >>> detector.is_monitoring, detector.phi(100.0)
        (False, 0.0)
        >>> detector.heartbeat(0.0)
        >>> detector.is_monitoring
        True
        >>> detector.phi(0.0) < 0.01
        True
        >>> detector.is_available(2.0), detector.is_available(10.0)
        (True, False)
    """

    threshold: float = attrs.field(
        default=8.0, validator=_positive_finite, on_setattr=attrs.setters.frozen
    )
    max_sample_size: int = attrs.field(
        default=200, validator=_at_least_one, on_setattr=attrs.setters.frozen
    )
    min_std_deviation: float = attrs.field(
        default=0.1, validator=_positive_finite, on_setattr=attrs.setters.frozen
    )
    acceptable_heartbeat_pause: float = attrs.field(
        default=0.0, validator=_non_negative_finite, on_setattr=attrs.setters.frozen
    )
    first_heartbeat_estimate: float = attrs.field(
        default=1.0, validator=_positive_finite, on_setattr=attrs.setters.frozen
    )
    _history: _HeartbeatHistory = attrs.field(init=False, repr=False)
    _last_heartbeat: float | None = attrs.field(init=False, default=None, repr=False)

    def __attrs_post_init__(self) -> None:
        self._history = self._first_history()

    def _first_history(self) -> _HeartbeatHistory:
        history = _HeartbeatHistory(self.max_sample_size)
        mean = _to_micros(self.first_heartbeat_estimate)
        deviation = mean // 4
        history.append(mean - deviation)
        history.append(mean + deviation)
        return history

    @property
    def is_monitoring(self) -> bool:
        """Whether a heartbeat has been received at all (before that the peer counts as fine)."""
        return self._last_heartbeat is not None

    def heartbeat(self, now: float) -> None:
        """Record a heartbeat received at ``now``.

        Args:
            now: Current time in seconds; must be finite. A time earlier than the previous
                heartbeat counts as a zero interval (the clock never goes back).

        Raises:
            ValueError: ``now`` is NaN or infinite.
        """
        if not math.isfinite(now):
            raise ValueError(f"heartbeat time must be finite, got {now!r}")
        last = self._last_heartbeat
        if last is None:
            self._last_heartbeat = now
            return
        # The first heartbeat after a failure is not a sample: the pause would skew the stats.
        if self.is_available(now):
            self._history.append(_to_micros(now - last))
        self._last_heartbeat = max(last, now)

    def phi(self, now: float) -> float:
        """The current suspicion level; ``0.0`` while not monitoring.

        Non-decreasing in ``now`` between two heartbeats; right after a heartbeat it is at most
        ``log10(2) ~ 0.301`` (close to 0 for heartbeats regular compared to
        ``min_std_deviation``); grows without bound (up to ``inf``, never NaN) with the silence.

        Args:
            now: Current time in seconds.

        Raises:
            ValueError: ``now`` is NaN.
        """
        last = self._last_heartbeat
        if last is None:
            if math.isnan(now):
                raise ValueError("time must not be NaN")
            return 0.0
        time_diff = now - last
        if math.isnan(time_diff):
            raise ValueError("time must not be NaN")
        history = self._history
        return compute_phi(
            time_diff,
            history.mean + self.acceptable_heartbeat_pause,
            max(history.std_deviation, self.min_std_deviation),
        )

    def is_available(self, now: float) -> bool:
        """Whether the peer is considered alive at ``now``: ``phi(now) < threshold``."""
        return self.phi(now) < self.threshold

    def statistics(self) -> FailureDetectorStatistics:
        """A frozen snapshot of the heartbeat history.

        Examples:
            >>> stats = PhiAccrualFailureDetector(first_heartbeat_estimate=2.0).statistics()
            >>> stats.sample_count, stats.mean, stats.std_deviation, stats.last_heartbeat
            (2, 2.0, 0.5, None)
        """
        history = self._history
        return FailureDetectorStatistics(
            sample_count=len(history),
            mean=history.mean,
            std_deviation=history.std_deviation,
            last_heartbeat=self._last_heartbeat,
        )


def _default_factory() -> PhiAccrualFailureDetector:
    return PhiAccrualFailureDetector()


class FailureDetectorRegistry(Generic[K]):
    """One :class:`PhiAccrualFailureDetector` per monitored peer, created on its first heartbeat.

    A peer never heard from counts as available and not monitored (as in Akka's
    ``DefaultFailureDetectorRegistry``). Synchronous, no I/O, no checkpoints.

    Args:
        detector_factory: Builds the detector of a new peer, e.g.
            ``functools.partial(PhiAccrualFailureDetector, threshold=10.0)``.

    Examples:
        >>> registry: FailureDetectorRegistry[str] = FailureDetectorRegistry()
        >>> registry.is_available("b", 100.0), registry.is_monitoring("b")
        (True, False)
        >>> registry.heartbeat("b", 0.0)
        >>> registry.heartbeat("c", 0.0)
        >>> registry.heartbeat("c", 9.5)
        >>> sorted(registry.unavailable(10.0))
        ['b']
        >>> registry.remove("b")
        >>> sorted(registry)
        ['c']
    """

    __slots__ = ("_detectors", "_factory")

    def __init__(
        self, detector_factory: Callable[[], PhiAccrualFailureDetector] = _default_factory
    ) -> None:
        self._factory = detector_factory
        self._detectors: dict[K, PhiAccrualFailureDetector] = {}

    def __repr__(self) -> str:
        return f"<FailureDetectorRegistry monitoring {len(self._detectors)} peers>"

    def __contains__(self, key: object) -> bool:
        return key in self._detectors

    def __iter__(self) -> Iterator[K]:
        return iter(list(self._detectors))

    def __len__(self) -> int:
        return len(self._detectors)

    def heartbeat(self, key: K, now: float) -> None:
        """Record a heartbeat from ``key`` at ``now``, creating its detector if new."""
        detector = self._detectors.get(key)
        if detector is None:
            detector = self._detectors[key] = self._factory()
        detector.heartbeat(now)

    def phi(self, key: K, now: float) -> float:
        """Suspicion level of ``key`` (``0.0`` if never heard from)."""
        detector = self._detectors.get(key)
        return 0.0 if detector is None else detector.phi(now)

    def is_available(self, key: K, now: float) -> bool:
        """Whether ``key`` counts as alive (``True`` if never heard from)."""
        detector = self._detectors.get(key)
        return True if detector is None else detector.is_available(now)

    def is_monitoring(self, key: K) -> bool:
        """Whether a heartbeat from ``key`` has been received."""
        detector = self._detectors.get(key)
        return detector is not None and detector.is_monitoring

    def unavailable(self, now: float) -> frozenset[K]:
        """Every monitored peer that counts as unavailable at ``now``."""
        return frozenset(k for k, d in self._detectors.items() if not d.is_available(now))

    def detector(self, key: K) -> PhiAccrualFailureDetector | None:
        """The detector of ``key``, if it has one."""
        return self._detectors.get(key)

    def remove(self, key: K) -> None:
        """Forget ``key`` (e.g. once removed from the cluster); unknown keys are ignored."""
        self._detectors.pop(key, None)

    def reset(self) -> None:
        """Forget every peer."""
        self._detectors.clear()
