"""first_replicas: which replicas a write is sent to first (pure; property-tested)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from casty_trio import NodeAddress
from casty_trio.sharding.replication._replica_choice import ORIGIN_FACTOR, first_replicas

_NODES = [NodeAddress("10.0.0.1", 25520 + k) for k in range(6)]
_Case = tuple[list[NodeAddress], int, dict[NodeAddress, float], NodeAddress | None]


@st.composite
def _cases(draw: st.DrawFn) -> _Case:
    targets = draw(st.lists(st.sampled_from(_NODES), min_size=2, max_size=5, unique=True))
    needed = draw(st.integers(1, len(targets) - 1))
    known = draw(st.lists(st.sampled_from(targets), unique=True))
    latency = {n: draw(st.floats(0.00001, 0.1)) for n in known}
    origin = draw(st.none() | st.sampled_from(_NODES))
    return targets, needed, latency, origin


@given(_cases())
def test_the_first_and_the_others_are_the_targets_split(case: _Case) -> None:
    targets, needed, latency, origin = case
    first, later = first_replicas(targets, needed, latency, origin)
    assert len(first) == needed
    assert sorted(first + later) == sorted(targets)


@given(_cases())
def test_the_origin_goes_first_unless_it_is_over_twice_as_slow(case: _Case) -> None:
    targets, needed, latency, origin = case
    first, _ = first_replicas(targets, needed, latency, origin)
    fastest = min(latency.get(n, 0.0) for n in targets)
    if origin in targets and latency.get(origin, 0.0) <= ORIGIN_FACTOR * fastest:
        assert origin in first
    # the others among the first are the fastest of the rest (unknown latency counts as 0)
    chosen = [n for n in first if n != origin]
    rest = sorted((n for n in targets if n != origin), key=lambda n: latency.get(n, 0.0))
    assert sorted(latency.get(n, 0.0) for n in chosen) == sorted(
        latency.get(n, 0.0) for n in rest[: len(chosen)]
    )
