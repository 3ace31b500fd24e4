"""Which replicas a write goes to first, and how long the others wait: pure policy.

With ``min_acks = k`` and more than ``k`` replicas, a write is sent first to ``k`` of them
(:func:`first_replicas`), chosen by their recent ack latencies (an exponential average,
:func:`updated_latency`) and by where the write's answer goes; the others get it once those
acked, or after :func:`hedge_delay` if they are slow. :class:`~._replication.Replication`
keeps the latencies and calls these functions; nothing here does I/O or reads a clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..._core import NodeAddress

__all__ = ["ORIGIN_FACTOR", "first_replicas", "hedge_delay", "updated_latency"]

# The other replicas get a write's events once the first ones acked, or after HEDGE_FACTOR
# times the slowest first one's recent ack latency, at least HEDGE_MIN seconds.
_HEDGE_FACTOR = 4.0
_HEDGE_MIN = 0.002
# Weight of a new ack latency sample in a replica's average.
_LATENCY_WEIGHT = 0.2
# A write's origin (the node its reply goes to) is among its first replicas unless its recent
# ack latency is over ORIGIN_FACTOR times the fastest replica's.
ORIGIN_FACTOR = 2.0


def first_replicas(
    targets: Sequence[NodeAddress],
    needed: int,
    latency: dict[NodeAddress, float],
    origin: NodeAddress | None,
) -> tuple[list[NodeAddress], list[NodeAddress]]:
    """Split a write's replicas into the ``needed`` it is sent to first and the others.

    The first are the fastest by recent ack latency (unknown counts as 0), except that the
    write's ``origin`` (the node its reply goes to), when it is a replica, takes the last of
    those places unless its latency is over :data:`ORIGIN_FACTOR` times the fastest one's.
    The reply wakes the origin's process anyway: when that process also takes the events and
    acks them, a confirmation keeps two processes busy instead of three, and does not wait for
    a third process to wake (a process long idle takes longest to wake).

    Examples:
        >>> a, b, c = (NodeAddress("h", p) for p in (1, 2, 3))
        >>> first_replicas([a, b], 1, {a: 0.001, b: 0.0003}, None)
        ([NodeAddress(host='h', port=2)], [NodeAddress(host='h', port=1)])
        >>> first_replicas([a, b], 1, {a: 0.0005, b: 0.0003}, a)[0]
        [NodeAddress(host='h', port=1)]
        >>> first_replicas([a, b], 1, {a: 0.0009, b: 0.0003}, a)[0]  # too slow
        [NodeAddress(host='h', port=2)]
        >>> [[n.port for n in part] for part in first_replicas([a, b, c], 1, {}, c)]
        [[3], [1, 2]]
    """
    ranked = sorted(targets, key=lambda node: latency.get(node, 0.0))
    if origin is not None and origin in ranked[needed:]:
        fastest = latency.get(ranked[0], 0.0)
        if latency.get(origin, 0.0) <= ORIGIN_FACTOR * fastest:
            ranked.remove(origin)
            ranked.insert(needed - 1, origin)
    return ranked[:needed], ranked[needed:]


def hedge_delay(
    latency: dict[NodeAddress, float], nodes: Iterable[NodeAddress], ack_timeout: float
) -> float:
    """How long the other replicas wait for the first ``nodes`` to ack a write.

    Examples:
        >>> a = NodeAddress("h", 1)
        >>> hedge_delay({a: 0.001}, [a], 5.0), hedge_delay({}, [a], 5.0)
        (0.004, 0.002)
    """
    slowest = max((latency.get(node, 0.0) for node in nodes), default=0.0)
    return min(max(_HEDGE_FACTOR * slowest, _HEDGE_MIN), ack_timeout)


def updated_latency(average: float | None, sample: float) -> float:
    """A replica's average ack latency after one more ``sample`` (seconds).

    Examples:
        >>> updated_latency(None, 0.002), round(updated_latency(0.001, 0.002), 6)
        (0.002, 0.0012)
    """
    return sample if average is None else average + (sample - average) * _LATENCY_WEIGHT
