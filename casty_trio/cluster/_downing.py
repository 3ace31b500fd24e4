"""Split-brain resolution: which members to down once unreachability has been stable.

Pure decisions, as in Akka's split brain resolver. Each node's resolver looks at its own view of
the cluster, a frozen :class:`DowningInput`, and a strategy returns a :class:`Decision`: down the
unreachable side (this side survives), down the reachable side (this side, self included, goes
down by itself) or down everybody. Because every side runs the same deterministic rule on a
mirrored view, a clean partition ends with at most one side alive and no node downs others on
its own whim. Members that are *indirectly connected* (a cut link between members that both
still reach the others) are resolved on purpose, as in Akka: they count on this side when the
sides are compared, and they are downed with the unreachable side when this side survives;
the fully connected members are kept. :class:`StableAfter` tracks, with the time passed in,
whether the unreachable set has stopped changing for ``stable_after`` seconds, so a node that
becomes reachable again before then is never downed, and whether it has kept changing for so
long that everybody should go down rather than risk a split (Akka's
``down-all-when-unstable``).

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
    "default_down_all_when_unstable",
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
    - ``unreachable`` is the set the resolver has seen stable: the members cleanly cut off
      from this side; entries outside ``members | joining`` and ``self_member`` itself are
      ignored (this node is always on the reachable side of its own view).
    - ``indirectly_connected`` are members on this side that some members of this side cannot
      reach (a cut link); they count on this side and are downed when this side survives.
      Entries outside ``members | joining`` or in ``unreachable`` are ignored; this node may be
      one of them.
    - ``roles`` maps members to their roles; a member missing from it has no roles.

    Args:
        members: Members that count (up or leaving).
        unreachable: Members observed as unreachable.
        self_member: This node; must be in ``members`` or ``joining``.
        joining: Joining members (disjoint from ``members``).
        leaving: Members among ``members`` that are leaving.
        roles: Roles of each member; only needed by strategies with a ``role``.
        indirectly_connected: Members of this side behind a cut link.

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
    indirectly_connected: frozenset[K] = frozenset()

    def __attrs_post_init__(self) -> None:
        if self.members & self.joining:
            raise ValueError("a member cannot be both counted and joining")
        if self.self_member not in self.members and self.self_member not in self.joining:
            raise ValueError(f"self_member {self.self_member!r} is not a member")
        everyone = self.members | self.joining
        unreachable = (self.unreachable & everyone) - {self.self_member}
        object.__setattr__(self, "unreachable", unreachable)
        object.__setattr__(self, "leaving", self.leaving & self.members)
        object.__setattr__(
            self, "indirectly_connected", (self.indirectly_connected & everyone) - unreachable
        )

    @property
    def reachable(self) -> frozenset[K]:
        """Members and joining members not observed as unreachable (self included).

        Indirectly connected members are among them: they are on this side.
        """
        return (self.members | self.joining) - self.unreachable

    @property
    def fully_connected(self) -> frozenset[K]:
        """The reachable members that are not indirectly connected."""
        return self.reachable - self.indirectly_connected

    @property
    def needs_decision(self) -> bool:
        """Whether anything is unreachable or indirectly connected."""
        return bool(self.unreachable or self.indirectly_connected)

    def with_role(self, keys: frozenset[K], role: str | None) -> frozenset[K]:
        """The members among ``keys`` that have ``role`` (all of them when ``role`` is None)."""
        if role is None:
            return keys
        roles = self.roles
        return frozenset(k for k in keys if role in roles.get(k, ()))


class DecisionKind(enum.Enum):
    """What a strategy decided, seen from the node that decided it."""

    DOWN_UNREACHABLE = "down-unreachable"
    """This side survives: down every unreachable and every indirectly connected member."""
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
            to_down = view.unreachable | view.indirectly_connected
        elif kind is DecisionKind.DOWN_REACHABLE:
            to_down = view.reachable
        else:
            to_down = view.members | view.joining
        return cls(kind=kind, to_down=to_down, downs_self=view.self_member in to_down)


class DowningStrategy(Protocol):
    """A split-brain strategy: a deterministic function of a :class:`DowningInput`.

    Every strategy returns ``DOWN_UNREACHABLE`` with nothing to down when nothing is
    unreachable or indirectly connected: the resolver acts only on a stable, non-empty set.
    Indirectly connected members count on this side (they are not cut off from it), so a
    strategy compares ``reachable`` with ``unreachable`` as for a clean partition; when this
    side survives they are downed too (:meth:`Decision.of`), never the fully connected ones.
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
    sides and no majority, every side downs itself. Indirectly connected members count on this
    side and are downed when it survives.

    Args:
        role: Count only members with this role.

    Examples:
        >>> view = DowningInput(
        ...     members=frozenset({1, 2, 3, 4}), unreachable=frozenset({1, 2}), self_member=3
        ... )
        >>> KeepMajority().decide(view).kind  # 2 | 2 and the lowest (1) is on the other side
        <DecisionKind.DOWN_REACHABLE: 'down-reachable'>

        The link between 1 and 2 is cut; 3 and 4 reach both:

        >>> cut = DowningInput(
        ...     members=frozenset({1, 2, 3, 4}),
        ...     unreachable=frozenset(),
        ...     indirectly_connected=frozenset({1, 2}),
        ...     self_member=3,
        ... )
        >>> sorted(KeepMajority().decide(cut).to_down)
        [1, 2]
    """

    role: str | None = None

    def decide(self, view: DowningInput[K], /) -> Decision[K]:
        """Decide which members to down (see the class docstring)."""
        if not view.needs_decision:
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
    goes down instead (Akka's rule): size the quorum above half the cluster. Indirectly
    connected members count on this side and are downed when it survives.

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
        if not view.needs_decision:
            return _nothing_to_do(view)
        counted = view.with_role(view.members, self.role)
        if len(counted) > 2 * self.quorum_size - 1:
            return Decision.of(DecisionKind.DOWN_ALL, view)
        if len(counted - view.unreachable) >= self.quorum_size:
            return Decision.of(DecisionKind.DOWN_UNREACHABLE, view)
        return Decision.of(DecisionKind.DOWN_REACHABLE, view)


@attrs.frozen
class DownAll:
    """Down every member as soon as any is (stably) unreachable or indirectly connected.

    Examples:
        >>> view = DowningInput(
        ...     members=frozenset({1, 2, 3}), unreachable=frozenset({3}), self_member=1
        ... )
        >>> sorted(DownAll().decide(view).to_down)
        [1, 2, 3]
    """

    def decide(self, view: DowningInput[K], /) -> Decision[K]:
        """Decide which members to down (see the class docstring)."""
        if not view.needs_decision:
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


def _non_negative_or_infinite(
    instance: object, attribute: attrs.Attribute[float], value: float
) -> None:
    if not value >= 0.0:  # also refuses nan
        raise ValueError(f"{attribute.name} must be a non-negative number or inf, got {value!r}")


def default_down_all_when_unstable(stable_after: float) -> float:
    """The default instability bound: 3/4 of ``stable_after``, at least 4 seconds (as Akka).

    Examples:
        >>> default_down_all_when_unstable(5.0), default_down_all_when_unstable(20.0)
        (4.0, 15.0)
    """
    return max(4.0, stable_after * 3 / 4)


@attrs.define(eq=False)
class StableAfter(Generic[K]):
    """Whether the unreachable set has stayed the same for ``duration`` seconds, or kept changing.

    Feed it the current unreachable set (and which of its members are indirectly connected)
    with :meth:`observe` (any change, a member becoming reachable again included, restarts the
    wait) and call :meth:`reset` after a decision, or on other membership changes that should
    postpone one. Time is passed in; nothing here reads a clock. Synchronous, no checkpoints.

    Instability (Akka's ``down-all-when-unstable``): from the first change that leaves a
    non-empty set, if the set has not become empty again (every member reachable, downed or
    removed) nor been :meth:`reset` within ``duration + down_all_when_unstable`` seconds,
    :meth:`should_down_all` says so: reachability kept changing, or a decision never came, for
    longer than a stable view takes, and downing everybody is safer than a split.

    Args:
        duration: The ``stable_after`` period in seconds.
        down_all_when_unstable: Seconds of instability tolerated beyond ``duration``; ``inf``
            (the default) never downs all.

    Raises:
        ValueError: ``duration`` is negative or not finite, or ``down_all_when_unstable`` is
            negative or NaN.

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

        Flapping for longer than the bound:

        >>> flapping: StableAfter[str] = StableAfter(5.0, down_all_when_unstable=4.0)
        >>> for t in range(0, 12, 2):
        ...     _ = flapping.observe(float(t), frozenset({"c"} if t % 4 else {"d"}))
        >>> flapping.should_decide(10.0), flapping.should_down_all(8.9)
        (False, False)
        >>> flapping.should_down_all(9.0)
        True
    """

    duration: float = attrs.field(validator=_non_negative_finite, on_setattr=attrs.setters.frozen)
    down_all_when_unstable: float = attrs.field(
        default=math.inf, validator=_non_negative_or_infinite, on_setattr=attrs.setters.frozen
    )
    _unreachable: frozenset[K] = attrs.field(init=False, factory=frozenset)
    _indirectly_connected: frozenset[K] = attrs.field(init=False, factory=frozenset)
    _changed_at: float | None = attrs.field(init=False, default=None)
    _unstable_since: float | None = attrs.field(init=False, default=None)

    @property
    def unreachable(self) -> frozenset[K]:
        """The unreachable set last observed (empty before the first observation)."""
        return self._unreachable

    @property
    def indirectly_connected(self) -> frozenset[K]:
        """The indirectly connected members last observed."""
        return self._indirectly_connected

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

    @property
    def unstable_since(self) -> float | None:
        """When the current unstable period began; ``None`` while there is none."""
        return self._unstable_since

    def observe(
        self,
        now: float,
        unreachable: frozenset[K],
        indirectly_connected: frozenset[K] = frozenset(),
    ) -> bool:
        """Record the unreachable set (and its indirectly connected members) seen at ``now``.

        The first observation always counts as a change.

        Returns:
            Whether the set changed (which restarts the stable period).
        """
        if (
            self._changed_at is not None
            and unreachable == self._unreachable
            and indirectly_connected == self._indirectly_connected
        ):
            return False
        self._unreachable = unreachable
        self._indirectly_connected = indirectly_connected
        self._changed_at = now
        if not unreachable:
            self._unstable_since = None
        elif self._unstable_since is None:
            self._unstable_since = now
        return True

    def reset(self, now: float) -> None:
        """Restart the stable period and the instability clock at ``now``; the set stays."""
        self._changed_at = now
        self._unstable_since = now if self._unreachable else None

    def is_stable(self, now: float) -> bool:
        """Whether ``duration`` seconds have passed since the last change (False before any)."""
        stable_at = self.stable_at
        return stable_at is not None and now >= stable_at

    def should_decide(self, now: float) -> bool:
        """Whether it is time for a downing decision: a non-empty set, stable at ``now``."""
        return bool(self._unreachable) and self.is_stable(now)

    def should_down_all(self, now: float) -> bool:
        """Whether the set has been unsettled for longer than ``duration`` plus the bound."""
        since = self._unstable_since
        return since is not None and now - since >= self.duration + self.down_all_when_unstable
