"""Split-brain resolution: which members to down once unreachability has been stable.

Pure decisions, as in Akka's split brain resolver. Each node's resolver looks at its own view of
the cluster, a frozen :class:`DowningInput`, and a strategy returns a :class:`Decision`: down the
unreachable side (this side survives), down the reachable side (this side, self included, goes
down by itself) or down everybody. Because every side runs the same deterministic rule on a
mirrored view, a clean partition ends with at most one side alive and no node downs others on
its own whim. :class:`StableAfter` tracks, with the time passed in, whether the unreachable set
has stopped changing for ``stable_after`` seconds, so a node that becomes reachable again before
then is never downed.

The member type is generic: any hashable, totally ordered value that identifies one incarnation
of a member (the cluster uses its unique address; ints work in tests). "Lowest address" below is
the smallest value under that order.

Examples:
    >>> view = DowningInput(
    ...     members=frozenset({1, 2, 3, 4, 5}), unreachable=frozenset({4, 5}), self_member=1
    ... )
    >>> decision = KeepMajority().decide(view)
    >>> decision.kind, sorted(decision.to_down), decision.downs_self
    (<DecisionKind.DOWN_UNREACHABLE: 'down-unreachable'>, [4, 5], False)
    >>> mirrored = DowningInput(
    ...     members=frozenset({1, 2, 3, 4, 5}), unreachable=frozenset({1, 2, 3}), self_member=4
    ... )
    >>> KeepMajority().decide(mirrored).downs_self
    True
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Generic, Protocol, TypeVar

import attrs

__all__ = [
    "Decision",
    "DecisionKind",
    "DownAll",
    "DowningInput",
    "DowningStrategy",
    "KeepMajority",
    "StableAfter",
    "StaticQuorum",
    "make_strategy",
]


class _OrderedKey(Protocol):
    def __lt__(self, other: Any, /) -> bool: ...

    def __hash__(self) -> int: ...


K = TypeVar("K", bound=_OrderedKey)

_EMPTY_ROLES: Mapping[Any, frozenset[str]] = MappingProxyType({})


def _freeze_roles(roles: Mapping[Any, frozenset[str]]) -> Mapping[Any, frozenset[str]]:
    if isinstance(roles, MappingProxyType):
        return roles
    return MappingProxyType({key: frozenset(value) for key, value in roles.items()})


@attrs.frozen
class DowningInput(Generic[K]):
    """One node's view of the cluster, as a downing strategy needs it.

    Contract (the caller builds it from its membership state):

    - ``members`` are the members that count: status ``up`` or ``leaving`` (not ``joining``,
      ``exiting``, ``down`` or ``removed``).
    - ``joining`` are ``joining`` members: not counted, except as possibly up on the other side
      of a partition (Akka's edge case), but downed with their side.
    - ``leaving`` is the subset of ``members`` whose status is ``leaving``: they might already be
      ``exiting`` on the other side, so the edge-case check does not count them on this side.
    - ``unreachable`` is the set the resolver has seen stable; entries outside
      ``members | joining`` and ``self_member`` itself are ignored (this node is always on the
      reachable side of its own view).
    - ``roles`` maps members to their roles; a member missing from it has no roles.

    Args:
        members: Members that count (up or leaving).
        unreachable: Members observed as unreachable.
        self_member: This node; must be in ``members`` or ``joining``.
        joining: Joining members (disjoint from ``members``).
        leaving: Members among ``members`` that are leaving.
        roles: Roles of each member; only needed by strategies with a ``role``.

    Raises:
        ValueError: ``self_member`` is in neither ``members`` nor ``joining``, or ``members`` and
            ``joining`` overlap.

    Examples:
        >>> view = DowningInput(
        ...     members=frozenset({1, 2}), unreachable=frozenset({2, 9, 1}), self_member=1
        ... )
        >>> sorted(view.unreachable), sorted(view.reachable)
        ([2], [1])
    """

    members: frozenset[K]
    unreachable: frozenset[K]
    self_member: K
    joining: frozenset[K] = frozenset()
    leaving: frozenset[K] = frozenset()
    roles: Mapping[Any, frozenset[str]] = attrs.field(
        default=_EMPTY_ROLES, converter=_freeze_roles, hash=False
    )

    def __attrs_post_init__(self) -> None:
        if self.members & self.joining:
            raise ValueError("a member cannot be both counted and joining")
        if self.self_member not in self.members and self.self_member not in self.joining:
            raise ValueError(f"self_member {self.self_member!r} is not a member")
        everyone = self.members | self.joining
        object.__setattr__(self, "unreachable", (self.unreachable & everyone) - {self.self_member})
        object.__setattr__(self, "leaving", self.leaving & self.members)

    @property
    def reachable(self) -> frozenset[K]:
        """Members and joining members not observed as unreachable (self included)."""
        return (self.members | self.joining) - self.unreachable

    def with_role(self, keys: frozenset[K], role: str | None) -> frozenset[K]:
        """The members among ``keys`` that have ``role`` (all of them when ``role`` is None)."""
        if role is None:
            return keys
        roles = self.roles
        return frozenset(k for k in keys if role in roles.get(k, ()))


class DecisionKind(enum.Enum):
    """What a strategy decided, seen from the node that decided it."""

    DOWN_UNREACHABLE = "down-unreachable"
    """This side survives: down every unreachable member."""
    DOWN_REACHABLE = "down-reachable"
    """This side loses: down every reachable member, this node included."""
    DOWN_ALL = "down-all"
    """Down every member, both sides."""


@attrs.frozen
class Decision(Generic[K]):
    """The outcome of a strategy: which members this node's side marks ``down``.

    Attributes:
        kind: The rule that applied.
        to_down: The members to down (among ``members | joining`` of the input).
        downs_self: Whether this node is among them, i.e. its side goes down by itself and its
            system should shut down.
    """

    kind: DecisionKind
    to_down: frozenset[K]
    downs_self: bool

    @property
    def survives(self) -> bool:
        """Whether this node's side stays up."""
        return not self.downs_self

    @classmethod
    def of(cls, kind: DecisionKind, view: DowningInput[K]) -> Decision[K]:
        """The decision of ``kind`` applied to ``view``.

        Examples:
            >>> view = DowningInput(
            ...     members=frozenset({1, 2, 3}), unreachable=frozenset({3}), self_member=1
            ... )
            >>> sorted(Decision.of(DecisionKind.DOWN_REACHABLE, view).to_down)
            [1, 2]
        """
        if kind is DecisionKind.DOWN_UNREACHABLE:
            to_down = view.unreachable
        elif kind is DecisionKind.DOWN_REACHABLE:
            to_down = view.reachable
        else:
            to_down = view.members | view.joining
        return cls(kind=kind, to_down=to_down, downs_self=view.self_member in to_down)


class DowningStrategy(Protocol):
    """A split-brain strategy: a deterministic function of a :class:`DowningInput`.

    Every strategy returns ``DOWN_UNREACHABLE`` with nothing to down when nothing is
    unreachable: the resolver acts only on a stable, non-empty unreachable set.
    """

    def decide(self, view: DowningInput[K], /) -> Decision[K]:
        """Decide which members to down."""
        ...


def _nothing_to_do(view: DowningInput[K]) -> Decision[K]:
    return Decision(kind=DecisionKind.DOWN_UNREACHABLE, to_down=frozenset(), downs_self=False)


def _majority(
    this_side: int, other_side: int, lowest: K, unreachable: frozenset[K]
) -> DecisionKind:
    if this_side == other_side:
        # Equal sizes: the side holding the lowest member survives.
        if lowest in unreachable:
            return DecisionKind.DOWN_REACHABLE
        return DecisionKind.DOWN_UNREACHABLE
    if this_side > other_side:
        return DecisionKind.DOWN_UNREACHABLE
    return DecisionKind.DOWN_REACHABLE


@attrs.frozen
class KeepMajority:
    """Keep the side with more members; on a tie, the side with the lowest member.

    Counts only ``members`` with ``role`` when one is given (downing still applies to every
    member of the losing side). No member with the role at all: everybody goes down. As in Akka,
    a surviving verdict is double-checked counting joining members as possibly up on the other
    side and not counting leaving members on this side; if the verdict changes, everybody goes
    down (the safe answer when membership changed during the partition). With more than two
    sides and no majority, every side downs itself.

    Args:
        role: Count only members with this role.

    Examples:
        >>> view = DowningInput(
        ...     members=frozenset({1, 2, 3, 4}), unreachable=frozenset({1, 2}), self_member=3
        ... )
        >>> KeepMajority().decide(view).kind  # 2 | 2 and the lowest (1) is on the other side
        <DecisionKind.DOWN_REACHABLE: 'down-reachable'>
    """

    role: str | None = None

    def decide(self, view: DowningInput[K], /) -> Decision[K]:
        """Decide which members to down (see the class docstring)."""
        if not view.unreachable:
            return _nothing_to_do(view)
        counted = view.with_role(view.members, self.role)
        if not counted:
            return Decision.of(DecisionKind.DOWN_ALL, view)
        unreachable = view.unreachable
        other = len(counted & unreachable)
        kind = _majority(len(counted) - other, other, min(counted), unreachable)
        if kind is DecisionKind.DOWN_UNREACHABLE:
            # For this side count as few as possible, for the other side as many.
            surely_here = counted - view.leaving
            if not surely_here:
                kind = DecisionKind.DOWN_ALL
            else:
                possibly_there = view.with_role(counted | view.joining, self.role) & unreachable
                # The lowest member that may count on either side breaks a tie (Akka takes the
                # lowest of this side's count, which lets both sides win a tie when the lowest
                # member is still joining on one side and already up on the other).
                check = _majority(
                    len(surely_here - unreachable),
                    len(possibly_there),
                    min(surely_here | possibly_there),
                    unreachable,
                )
                if check is not DecisionKind.DOWN_UNREACHABLE:
                    kind = DecisionKind.DOWN_ALL
        return Decision.of(kind, view)


def _quorum_size(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 1:
        raise ValueError(f"{attribute.name} must be at least 1, got {value!r}")


@attrs.frozen
class StaticQuorum:
    """A side survives when it has at least ``quorum_size`` members; otherwise it downs itself.

    Counts only ``members`` with ``role`` when one is given. If more than
    ``2 * quorum_size - 1`` members count, two sides could both reach the quorum, so everybody
    goes down instead (Akka's rule): size the quorum above half the cluster.

    Args:
        quorum_size: Members a side needs to stay up; at least 1.
        role: Count only members with this role.

    Raises:
        ValueError: ``quorum_size`` is below 1.

    Examples:
        >>> view = DowningInput(
        ...     members=frozenset({1, 2, 3}), unreachable=frozenset({3}), self_member=1
        ... )
        >>> StaticQuorum(2).decide(view).survives, StaticQuorum(3).decide(view).survives
        (True, False)
    """

    quorum_size: int = attrs.field(validator=_quorum_size)
    role: str | None = None

    def decide(self, view: DowningInput[K], /) -> Decision[K]:
        """Decide which members to down (see the class docstring)."""
        if not view.unreachable:
            return _nothing_to_do(view)
        counted = view.with_role(view.members, self.role)
        if len(counted) > 2 * self.quorum_size - 1:
            return Decision.of(DecisionKind.DOWN_ALL, view)
        if len(counted - view.unreachable) >= self.quorum_size:
            return Decision.of(DecisionKind.DOWN_UNREACHABLE, view)
        return Decision.of(DecisionKind.DOWN_REACHABLE, view)


@attrs.frozen
class DownAll:
    """Down every member as soon as any is (stably) unreachable.

    Examples:
        >>> view = DowningInput(
        ...     members=frozenset({1, 2, 3}), unreachable=frozenset({3}), self_member=1
        ... )
        >>> sorted(DownAll().decide(view).to_down)
        [1, 2, 3]
    """

    def decide(self, view: DowningInput[K], /) -> Decision[K]:
        """Decide which members to down (see the class docstring)."""
        if not view.unreachable:
            return _nothing_to_do(view)
        return Decision.of(DecisionKind.DOWN_ALL, view)


def make_strategy(
    name: str, *, quorum_size: int | None = None, role: str | None = None
) -> KeepMajority | StaticQuorum | DownAll:
    """The strategy a config names: ``keep-majority``, ``static-quorum`` or ``down-all``.

    Args:
        name: The strategy's name.
        quorum_size: Required by ``static-quorum``, ignored otherwise.
        role: Count only members with this role (ignored by ``down-all``).

    Raises:
        ValueError: unknown name, or ``static-quorum`` without a valid ``quorum_size``.

    Examples:
        >>> make_strategy("keep-majority")
        KeepMajority(role=None)
        >>> make_strategy("static-quorum", quorum_size=3)
        StaticQuorum(quorum_size=3, role=None)
    """
    if name == "keep-majority":
        return KeepMajority(role=role)
    if name == "static-quorum":
        if quorum_size is None:
            raise ValueError("the static-quorum strategy needs a quorum_size")
        return StaticQuorum(quorum_size, role=role)
    if name == "down-all":
        return DownAll()
    raise ValueError(
        f"unknown downing strategy {name!r}; expected keep-majority, static-quorum or down-all"
    )


def _non_negative_finite(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not (0.0 <= value < math.inf):  # also refuses nan
        raise ValueError(f"{attribute.name} must be a non-negative finite number, got {value!r}")


@attrs.define(eq=False)
class StableAfter(Generic[K]):
    """Whether the unreachable set has stayed the same for ``duration`` seconds.

    Feed it the current unreachable set with :meth:`observe` (any change, a member becoming
    reachable again included, restarts the wait) and call :meth:`reset` on other membership
    changes that should postpone a decision. Time is passed in; nothing here reads a clock.
    Synchronous, no checkpoints.

    Args:
        duration: The ``stable_after`` period in seconds.

    Raises:
        ValueError: ``duration`` is negative or not finite.

    Examples:
        >>> stable: StableAfter[str] = StableAfter(5.0)
        >>> stable.observe(0.0, frozenset({"c"}))
        True
        >>> stable.is_stable(4.0), stable.stable_at
        (False, 5.0)
        >>> stable.observe(4.0, frozenset())  # c is reachable again: nothing to decide
        True
        >>> stable.should_decide(20.0)
        False
    """

    duration: float = attrs.field(validator=_non_negative_finite, on_setattr=attrs.setters.frozen)
    _unreachable: frozenset[K] = attrs.field(init=False, factory=frozenset)
    _changed_at: float | None = attrs.field(init=False, default=None)

    @property
    def unreachable(self) -> frozenset[K]:
        """The unreachable set last observed (empty before the first observation)."""
        return self._unreachable

    @property
    def changed_at(self) -> float | None:
        """When the set last changed (or :meth:`reset` was called); ``None`` before any."""
        return self._changed_at

    @property
    def stable_at(self) -> float | None:
        """When the current set becomes stable unless it changes; ``None`` before any."""
        if self._changed_at is None:
            return None
        return self._changed_at + self.duration

    def observe(self, now: float, unreachable: frozenset[K]) -> bool:
        """Record the unreachable set seen at ``now``.

        The first observation always counts as a change.

        Returns:
            Whether the set changed (which restarts the stable period).
        """
        if self._changed_at is not None and unreachable == self._unreachable:
            return False
        self._unreachable = unreachable
        self._changed_at = now
        return True

    def reset(self, now: float) -> None:
        """Restart the stable period at ``now`` without changing the set."""
        self._changed_at = now

    def is_stable(self, now: float) -> bool:
        """Whether ``duration`` seconds have passed since the last change (False before any)."""
        stable_at = self.stable_at
        return stable_at is not None and now >= stable_at

    def should_decide(self, now: float) -> bool:
        """Whether it is time for a downing decision: a non-empty set, stable at ``now``."""
        return bool(self._unreachable) and self.is_stable(now)
