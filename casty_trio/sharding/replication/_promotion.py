"""Failover promotion: which replica of a shard whose primary is gone becomes its primary.

:class:`Promoting` holds the promotion methods of the shard coordinator (``_coordinator.py``), a
base of its state class ``_Coordinator``. When a replicated shard loses its primary, the
coordinator asks the shard's live replicas, after a delay (``failover_margin``, as a rule), how
much of it each holds (``ReplicaQuery``, answered by ``ReplicaHoldings``: the sum of the
sequence numbers it holds over the shard's entities). Once all have answered, or
``query_timeout`` passed, the one holding the most (then the lowest address) becomes the
primary and the others its sources of history; with no answer the shard is allocated afresh.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import attrs
import trio

from ..._core import NodeAddress, TimerScheduler
from ...config import FailoverConfig
from ._wire import ReplicaHoldings, ReplicaQuery, check_shard, node_of

if TYPE_CHECKING:
    from ...cluster import MembershipSystem

__all__ = ["Promoting"]

_log = logging.getLogger("casty_trio.sharding")


@attrs.define
class _Promotion:
    """A replicated shard whose primary is gone: which replica takes over."""

    round: int
    start_at: float
    candidates: set[NodeAddress]
    answers: dict[NodeAddress, int] = attrs.Factory(dict)
    deadline: float | None = None


class _PromotionTick:
    __slots__ = ()


_PROMOTION_TICK = _PromotionTick()


class Promoting:
    """The promotion methods of the coordinator's state (``_Coordinator``, which sets every
    attribute declared here)."""

    system: MembershipSystem
    region_path: str
    num_shards: int
    me: NodeAddress
    live: frozenset[NodeAddress]
    epoch: int
    rounds: int
    allocation: dict[int, tuple[NodeAddress, int]]
    waiting: dict[int, set[NodeAddress]]
    failover: FailoverConfig
    replica_sets: dict[int, tuple[NodeAddress, ...]]
    sources: dict[int, tuple[NodeAddress, ...]]
    promotions: dict[int, _Promotion]
    timers: TimerScheduler[Any] | None

    if TYPE_CHECKING:  # defined by ``_Coordinator``

        def place(self, shard: int) -> bool: ...

        def announce(self, shard: int) -> None: ...

        def reallocate(self, shard: int) -> None: ...

    def start_promotion(self, shard: int, delay: float) -> bool:
        """``shard`` lost its primary: ask its live replicas, after ``delay``, which holds the
        most; False when it has none."""
        candidates = {n for n in self.replica_sets.get(shard, ()) if n in self.live}
        if not candidates:
            return False
        self.rounds += 1
        start = trio.current_time() + delay
        self.promotions[shard] = _Promotion(self.rounds, start, candidates)
        if delay <= 0:
            self.query(shard)
        else:
            self.wake_in(("promote", self.rounds), delay)
        return True

    def wake_in(self, key: tuple[str, int], delay: float) -> None:
        """Look at promotions again after ``delay`` (not at the next, coarser, rebalance tick)."""
        if self.timers is not None:
            self.timers.start_single(key, _PROMOTION_TICK, delay)

    def query(self, shard: int) -> None:
        promotion = self.promotions[shard]
        promotion.deadline = trio.current_time() + self.failover.query_timeout
        self.wake_in(("query", promotion.round), self.failover.query_timeout)
        path = f"{self.region_path}/replica"
        for node in sorted(promotion.candidates):
            ref = self.system.lookup(path, node=node)
            if ref is not None:
                ref.tell(ReplicaQuery(shard, promotion.round, self.me.host, self.me.port))

    def on_holdings(self, msg: ReplicaHoldings) -> None:
        shard = check_shard(msg.shard, self.num_shards)
        promotion = self.promotions.get(shard)
        node = node_of(msg.host, msg.port)
        if promotion is None or promotion.round != msg.round or node not in promotion.candidates:
            return
        promotion.answers[node] = msg.total
        if set(promotion.answers) >= promotion.candidates:
            self.promote(shard)

    def promote(self, shard: int) -> None:
        """Make the replica holding the most of ``shard`` its primary; the others are its
        sources of history (and stay replicas)."""
        promotion = self.promotions.pop(shard)
        answers = {
            n: t
            for n, t in promotion.answers.items()
            if n in self.live and n in promotion.candidates
        }
        if not answers:
            _log.warning(
                "coordinator %s: no replica of shard %d answered; allocating it afresh",
                self.region_path,
                shard,
            )
            self.sources[shard] = tuple(sorted(promotion.candidates & self.live))
            self.reallocate(shard)
            return
        best = min(answers, key=lambda n: (-answers[n], n))
        self.epoch += 1
        self.allocation[shard] = (best, self.epoch)
        self.place(shard)
        self.sources[shard] = tuple(sorted(n for n in answers if n != best))
        _log.info(
            "coordinator %s: shard %d promoted to %s (holds %d; others %s)",
            self.region_path,
            shard,
            best,
            answers[best],
            {str(n): t for n, t in answers.items() if n != best},
        )
        self.waiting.setdefault(shard, set())
        self.announce(shard)

    def tick_promotions(self, now: float) -> None:
        for shard, promotion in list(self.promotions.items()):
            if promotion.deadline is None:
                if now >= promotion.start_at:
                    self.query(shard)
            elif now >= promotion.deadline:
                self.promote(shard)
