"""Vector clocks: the semilattice laws and the ordering, property-tested."""

from __future__ import annotations

import doctest
import importlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from casty_trio.cluster import Ordering, VectorClock

KEYS = st.sampled_from(["a", "b", "c", "d"])
clocks = st.dictionaries(KEYS, st.integers(0, 4)).map(VectorClock)

_REVERSED = {
    Ordering.same: Ordering.same,
    Ordering.before: Ordering.after,
    Ordering.after: Ordering.before,
    Ordering.concurrent: Ordering.concurrent,
}


def test_docstring_examples() -> None:
    module = importlib.import_module("casty_trio.cluster._vector_clock")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


def test_basics() -> None:
    empty = VectorClock()
    assert empty == VectorClock({"a": 0}) and hash(empty) == hash(VectorClock({"a": 0}))
    a1 = empty.increment("a")
    assert a1.get("a") == 1 and a1.get("b") == 0 and list(a1) == ["a"] and len(a1) == 1
    assert a1.compare(empty) is Ordering.after
    assert empty.compare(a1) is Ordering.before
    assert a1.compare(empty.increment("b")) is Ordering.concurrent
    assert empty < a1 and a1 > empty and a1 <= a1 and a1 >= a1
    b1 = empty.increment("b")
    assert not a1 <= b1 and not a1 >= b1 and not a1 < b1 and not a1 > b1
    assert repr(a1) == "VectorClock({'a': 1})"
    assert a1 != "a1" and (a1 == object()) is False


def test_rejects_bad_entries() -> None:
    with pytest.raises(ValueError, match="counters are >= 0"):
        VectorClock({"a": -1})
    with pytest.raises(TypeError, match="keys are strings"):
        VectorClock({1: 1})  # type: ignore[dict-item]


def test_entries_are_read_only() -> None:
    clock = VectorClock({"a": 1})
    with pytest.raises(TypeError):
        clock.entries["a"] = 5  # type: ignore[index]


@settings(max_examples=60)
@given(clocks, clocks, clocks)
def test_merge_is_a_semilattice(u: VectorClock, v: VectorClock, w: VectorClock) -> None:
    # commutative, associative, idempotent
    assert v.merge(w) == w.merge(v)
    assert u.merge(v).merge(w) == u.merge(v.merge(w))
    assert v.merge(v) == v
    # the least upper bound
    merged = v.merge(w)
    assert v <= merged and w <= merged
    if v <= u and w <= u:
        assert merged <= u


@settings(max_examples=60)
@given(clocks, clocks, clocks, KEYS)
def test_ordering(u: VectorClock, v: VectorClock, w: VectorClock, key: str) -> None:
    # increment makes "after"
    bumped = v.increment(key)
    assert bumped.compare(v) is Ordering.after and v.compare(bumped) is Ordering.before
    assert bumped.get(key) == v.get(key) + 1
    # antisymmetric
    assert w.compare(v) is _REVERSED[v.compare(w)]
    assert (v.compare(w) is Ordering.same) == (v == w)
    # consistent with merge
    ordering = v.compare(w)
    merged = v.merge(w)
    if ordering in (Ordering.same, Ordering.before):
        assert merged == w
    if ordering in (Ordering.same, Ordering.after):
        assert merged == v
    if ordering is Ordering.concurrent:
        assert merged.compare(v) is Ordering.after and merged.compare(w) is Ordering.after
    assert (v <= w) == (merged == w) and (v < w) == (v <= w and v != w)
    assert (v >= w) == (w <= v) and (v > w) == (w < v)
    # transitive
    if u <= v and v <= w:
        assert u <= w
