"""Vector clocks: the version of the cluster's gossip.

A :class:`VectorClock` maps a node key (a string; the cluster uses
:attr:`UniqueAddress.key <casty_trio.cluster.UniqueAddress.key>`, one key per node incarnation)
to a counter. A node that changes the gossip increments its own key; clocks of two gossip
versions then tell whether one version descends from the other (``before`` / ``after``), whether
they are the ``same``, or whether they were changed independently (``concurrent``) and must be
merged.

Clocks form a join semilattice under :meth:`VectorClock.merge` (pointwise maximum): merge is
commutative, associative and idempotent, and ``v <= v.merge(w)`` for all ``v``, ``w``. A missing
key counts as ``0``, so ``VectorClock({"a": 0}) == VectorClock()``.

Pure values, no I/O and no clock: safe to use from any task or thread.

Examples:
    >>> a = VectorClock().increment("a")
    >>> b = VectorClock().increment("b")
    >>> a.compare(b)
    <Ordering.concurrent: 'concurrent'>
    >>> merged = a.merge(b)
    >>> a <= merged and b <= merged
    True
    >>> merged.increment("a").compare(merged)
    <Ordering.after: 'after'>
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from types import MappingProxyType

import attrs

__all__ = ["Ordering", "VectorClock"]


class Ordering(enum.Enum):
    """How two vector clocks relate: the result of :meth:`VectorClock.compare`.

    Examples:
        >>> VectorClock({"a": 1}).compare(VectorClock({"a": 2}))
        <Ordering.before: 'before'>
    """

    #: Both clocks are equal.
    same = "same"
    #: The left clock happened before the right one (left < right).
    before = "before"
    #: The left clock happened after the right one (left > right).
    after = "after"
    #: Neither descends from the other: changes were made independently.
    concurrent = "concurrent"


def _normalized(entries: Mapping[str, int]) -> Mapping[str, int]:
    clean: dict[str, int] = {}
    for key, counter in sorted(entries.items()):
        if not isinstance(key, str):
            raise TypeError(f"vector clock keys are strings, got {key!r}")
        if counter < 0:
            raise ValueError(f"vector clock counters are >= 0, got {key!r}: {counter}")
        if counter:
            clean[key] = counter
    return MappingProxyType(clean)


@attrs.frozen(eq=False, repr=False)
class VectorClock:
    """An immutable vector clock: node key → counter, missing keys count as 0.

    Ordered partially: ``<=``, ``<``, ``>=`` and ``>`` compare as vector clocks do (like sets
    compare by inclusion), so two concurrent clocks are neither ``<=`` nor ``>=`` each other.

    Args:
        entries: Initial counters; zero counters are dropped, negative ones raise ``ValueError``.

    Examples:
        >>> clock = VectorClock({"a": 2, "b": 0})
        >>> clock
        VectorClock({'a': 2})
        >>> clock.get("a"), clock.get("zzz")
        (2, 0)
        >>> VectorClock({"a": 1}) < clock
        True
    """

    entries: Mapping[str, int] = attrs.field(factory=dict, converter=_normalized)

    def get(self, key: str) -> int:
        """The counter of ``key`` (0 when absent)."""
        return self.entries.get(key, 0)

    def increment(self, key: str) -> VectorClock:
        """A new clock with ``key``'s counter one higher; always ``after`` this one.

        Examples:
            >>> VectorClock().increment("a").increment("a")
            VectorClock({'a': 2})
        """
        entries = dict(self.entries)
        entries[key] = entries.get(key, 0) + 1
        return VectorClock(entries)

    def merge(self, other: VectorClock) -> VectorClock:
        """The pointwise maximum of both clocks: the least clock that is ``>=`` both.

        Examples:
            >>> VectorClock({"a": 2, "b": 1}).merge(VectorClock({"b": 3, "c": 1}))
            VectorClock({'a': 2, 'b': 3, 'c': 1})
        """
        if self.entries == other.entries:
            return self
        entries = dict(self.entries)
        for key, counter in other.entries.items():
            if counter > entries.get(key, 0):
                entries[key] = counter
        return VectorClock(entries)

    def compare(self, other: VectorClock) -> Ordering:
        """How this clock relates to ``other``.

        Returns:
            ``same``, ``before`` (self < other), ``after`` (self > other) or ``concurrent``.

        Examples:
            >>> VectorClock({"a": 1}).compare(VectorClock({"a": 1}))
            <Ordering.same: 'same'>
            >>> VectorClock({"a": 2}).compare(VectorClock({"a": 1}))
            <Ordering.after: 'after'>
        """
        mine, theirs = self.entries, other.entries
        less = False  # some counter of self is lower than other's
        greater = False  # some counter of self is higher than other's
        for key in mine.keys() | theirs.keys():
            a, b = mine.get(key, 0), theirs.get(key, 0)
            if a < b:
                less = True
            elif a > b:
                greater = True
            if less and greater:
                return Ordering.concurrent
        if less:
            return Ordering.before
        if greater:
            return Ordering.after
        return Ordering.same

    def __iter__(self) -> Iterator[str]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, VectorClock):
            return NotImplemented
        return self.entries == other.entries

    def __hash__(self) -> int:
        return hash(tuple(self.entries.items()))

    def __le__(self, other: object) -> bool:
        if not isinstance(other, VectorClock):
            return NotImplemented
        return self.compare(other) in (Ordering.same, Ordering.before)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, VectorClock):
            return NotImplemented
        return self.compare(other) is Ordering.before

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, VectorClock):
            return NotImplemented
        return self.compare(other) in (Ordering.same, Ordering.after)

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, VectorClock):
            return NotImplemented
        return self.compare(other) is Ordering.after

    def __repr__(self) -> str:
        return f"VectorClock({dict(self.entries)!r})"
