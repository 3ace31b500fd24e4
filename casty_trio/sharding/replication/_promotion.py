"""Failover promotion: which replica of a shard whose primary is gone becomes its primary.

When a replicated shard loses its primary, the coordinator asks the shard's live replicas, after
a delay (``failover_margin``, as a rule), how much of it each holds (``ReplicaQuery``, answered
by ``ReplicaHoldings``: the sum of the sequence numbers it holds over the shard's entities).
Once every replica asked has answered, or ``query_timeout`` passed, the one holding the most
(then the lowest address) becomes the primary and the others that answered its sources of
history; with no answer the shard is allocated afresh. A replica that leaves (or restarts)
meanwhile is no longer asked; when none is left the shard is allocated afresh at once.

:class:`Promotions` holds the promotions under way and makes these decisions. It is a sans-IO
state machine: it sends nothing, reads no clock and knows no actor. Each event method takes what
happened (with the time, where it matters) and returns the actions that follow, for the shard
coordinator (``_coordinator.py``) to perform: :class:`Query` (send ``ReplicaQuery``),
:class:`Promote` and :class:`AllocateAfresh`. The coordinator owns one and wakes it with
:meth:`Promotions.tick` at :meth:`Promotions.next_deadline`. Nothing here is a checkpoint.

Examples:
    >>> a, b = NodeAddress("h", 1), NodeAddress("h", 2)
    >>> promotions = Promotions(query_timeout=2.0)
    >>> promotions.lost_primary(7, [b, a], now=10.0, delay=1.0)
    []
    >>> promotions.next_deadline()
    11.0
    >>> promotions.tick(11.0)  # doctest: +NORMALIZE_WHITESPACE
    [Query(shard=7, round=1, nodes=(NodeAddress(host='h', port=1),
                                    NodeAddress(host='h', port=2)))]
    >>> promotions.holdings(a, 7, 1, total=5)
    []
    >>> [action.primary.port for action in promotions.holdings(b, 7, 1, total=9)]
    [2]
    >>> 7 in promotions
    False
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from typing import TypeAlias

import attrs

from ..._core import NodeAddress

__all__ = ["AllocateAfresh", "Promote", "PromotionAction", "Promotions", "Query"]


@attrs.frozen
class Query:
    """Ask each of ``nodes`` how much of ``shard`` it holds (``ReplicaQuery`` with ``round``,
    which their ``ReplicaHoldings`` carry back).

    Attributes:
        shard: The shard being promoted.
        round: The promotion's round: answers with another round are ignored.
        nodes: The replicas to ask, in address order.
    """

    shard: int
    round: int
    nodes: tuple[NodeAddress, ...]


@attrs.frozen
class Promote:
    """Make ``primary`` the primary of ``shard``.

    Attributes:
        shard: The shard promoted.
        primary: Its new primary: the replica that answered holding the most of it (then the
            lowest address).
        sources: The other replicas that answered, in address order: the new primary copies
            the history they hold. They stay replicas.
        holdings: What each replica that answered holds (``ReplicaHoldings.total``), in address
            order.
    """

    shard: int
    primary: NodeAddress
    sources: tuple[NodeAddress, ...]
    holdings: tuple[tuple[NodeAddress, int], ...]


@attrs.frozen
class AllocateAfresh:
    """No replica of ``shard`` answered: allocate it as the coordinator allocates any shard.

    Attributes:
        shard: The shard.
        sources: The replicas asked that are still live, in address order (empty when none is
            left): they may hold some of its history.
    """

    shard: int
    sources: tuple[NodeAddress, ...]


PromotionAction: TypeAlias = Query | Promote | AllocateAfresh


@attrs.define
class _Promotion:
    """A replicated shard whose primary is gone: which replica takes over."""

    round: int
    start_at: float
    candidates: set[NodeAddress]
    answers: dict[NodeAddress, int] = attrs.Factory(dict)
    # when the query times out; None until the query is sent
    deadline: float | None = None


@attrs.define(eq=False)
class Promotions:
    """The promotions under way of one sharded type, and their decisions (see the module
    docstring).

    A shard is in it from :meth:`lost_primary` to the :class:`Promote` or
    :class:`AllocateAfresh` that ends its promotion.

    Args:
        query_timeout: Seconds to wait for the replicas' answers once they are asked
            (``FailoverConfig.query_timeout``).
    """

    _query_timeout: float = attrs.field(alias="query_timeout")
    _promotions: dict[int, _Promotion] = attrs.field(init=False, factory=dict)
    _rounds: int = attrs.field(init=False, default=0)

    def __contains__(self, shard: object) -> bool:
        """Whether ``shard`` is being promoted."""
        return shard in self._promotions

    def __iter__(self) -> Iterator[int]:
        """The shards being promoted."""
        return iter(self._promotions)

    def __len__(self) -> int:
        return len(self._promotions)

    def next_deadline(self) -> float | None:
        """When :meth:`tick` next has something to do (None while nothing is under way)."""
        times = [
            p.start_at if p.deadline is None else p.deadline for p in self._promotions.values()
        ]
        return min(times, default=None)

    def lost_primary(
        self, shard: int, candidates: Collection[NodeAddress], now: float, delay: float
    ) -> list[PromotionAction]:
        """``shard`` lost its primary: promote one of its live replicas, ``candidates``.

        They are asked ``delay`` seconds after ``now`` (at once when ``delay`` is 0 or less).
        A promotion of ``shard`` already under way is replaced (its answers are ignored).

        Raises:
            ValueError: ``candidates`` is empty (there is nothing to promote).
        """
        if not candidates:
            raise ValueError(f"shard {shard} has no replica to promote")
        self._rounds += 1
        promotion = _Promotion(self._rounds, now + delay, set(candidates))
        self._promotions[shard] = promotion
        if delay <= 0:
            return [self._query(shard, promotion, now)]
        return []

    def holdings(
        self, node: NodeAddress, shard: int, round: int, total: int
    ) -> list[PromotionAction]:
        """``node`` answered the query of ``round``: it holds ``total`` of ``shard``.

        Ignored unless ``node`` was asked in the promotion of ``shard`` under way, in that
        round. Once every replica asked has answered, the promotion ends.
        """
        promotion = self._promotions.get(shard)
        if (
            promotion is None
            or promotion.deadline is None
            or promotion.round != round
            or node not in promotion.candidates
        ):
            return []
        promotion.answers[node] = total
        if promotion.answers.keys() >= promotion.candidates:
            return [self._end(shard)]
        return []

    def tick(self, now: float) -> list[PromotionAction]:
        """Time passed: ask the replicas of promotions whose delay is over, and end those whose
        query timed out (with the answers they have)."""
        actions: list[PromotionAction] = []
        for shard, promotion in list(self._promotions.items()):
            if promotion.deadline is None:
                if now >= promotion.start_at:
                    actions.append(self._query(shard, promotion, now))
            elif now >= promotion.deadline:
                actions.append(self._end(shard))
        return actions

    def members_changed(self, held: Collection[NodeAddress]) -> list[PromotionAction]:
        """The members changed: only the nodes in ``held`` still hold what they held (the
        others left or restarted). Replicas not in ``held`` are no longer waited for; a
        promotion with none left is allocated afresh, one whose remaining replicas all
        answered ends."""
        actions: list[PromotionAction] = []
        for shard, promotion in list(self._promotions.items()):
            promotion.candidates.intersection_update(held)
            for node in [n for n in promotion.answers if n not in promotion.candidates]:
                del promotion.answers[node]
            if not promotion.candidates:
                del self._promotions[shard]
                actions.append(AllocateAfresh(shard, ()))
            elif (
                promotion.deadline is not None
                and promotion.answers.keys() >= promotion.candidates
            ):
                actions.append(self._end(shard))
        return actions

    def _query(self, shard: int, promotion: _Promotion, now: float) -> Query:
        promotion.deadline = now + self._query_timeout
        return Query(shard, promotion.round, tuple(sorted(promotion.candidates)))

    def _end(self, shard: int) -> Promote | AllocateAfresh:
        """End the promotion of ``shard``: promote the replica that answered holding the most."""
        promotion = self._promotions.pop(shard)
        answers = promotion.answers
        if not answers:
            return AllocateAfresh(shard, tuple(sorted(promotion.candidates)))
        best = min(answers, key=lambda n: (-answers[n], n))
        return Promote(
            shard,
            best,
            tuple(sorted(n for n in answers if n != best)),
            tuple(sorted(answers.items())),
        )
