"""Shard allocation strategies: pure functions of the current allocation.

The coordinator asks a strategy where a new shard goes and which shards to move for balance;
a strategy sees only plain values (nodes and the shards each hosts) and keeps no state, so it is
tested without any I/O. Plug another one in by implementing :class:`ShardAllocationStrategy`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Protocol

import attrs

from .._core import NodeAddress

__all__ = ["LeastShardAllocation", "ShardAllocationStrategy", "place_replicas"]


class ShardAllocationStrategy(Protocol):
    """Decides where shards live. Both methods are pure and synchronous."""

    def allocate(
        self, shard: int, requester: NodeAddress, current: Mapping[NodeAddress, Collection[int]]
    ) -> NodeAddress:
        """The node among ``current``'s keys (never empty) that gets the unallocated ``shard``."""
        ...

    def rebalance(
        self, current: Mapping[NodeAddress, Collection[int]], in_progress: Collection[int]
    ) -> set[int]:
        """Shards to move now (each is then handed off and allocated again with
        :meth:`allocate`); ``in_progress`` are shards already being moved."""
        ...


@attrs.frozen
class LeastShardAllocation:
    """New shards go to the node hosting the fewest; rebalancing moves shards from the most to
    the least loaded node while they differ by more than ``threshold``.

    Ties break on the node address, so every coordinator decides the same way.

    Args:
        threshold: Tolerated difference between the most and least loaded node, at least 1
            (with 0, a shard count that does not divide evenly would move shards forever).
        max_simultaneous: Shards in handoff at once (including ``in_progress``).

    Examples:
        >>> a, b = NodeAddress("a", 1), NodeAddress("b", 1)
        >>> strategy = LeastShardAllocation(threshold=1, max_simultaneous=5)
        >>> strategy.allocate(9, a, {a: {1, 2}, b: {3}})
        NodeAddress(host='b', port=1)
        >>> sorted(strategy.rebalance({a: {1, 2, 3, 4}, b: set()}, in_progress=()))
        [3, 4]
    """

    threshold: int = 1
    max_simultaneous: int = 10

    def __attrs_post_init__(self) -> None:
        if self.threshold < 1 or self.max_simultaneous < 1:
            raise ValueError(
                f"threshold and max_simultaneous must be at least 1, got {self.threshold} and "
                f"{self.max_simultaneous}"
            )

    def allocate(
        self, shard: int, requester: NodeAddress, current: Mapping[NodeAddress, Collection[int]]
    ) -> NodeAddress:
        return min(current, key=lambda node: (len(current[node]), node))

    def rebalance(
        self, current: Mapping[NodeAddress, Collection[int]], in_progress: Collection[int]
    ) -> set[int]:
        budget = self.max_simultaneous - len(in_progress)
        if budget <= 0 or len(current) < 2:
            return set()
        busy = set(in_progress)
        # Shards already moving are counted on neither side until they arrive.
        movable = {node: sorted(set(shards) - busy) for node, shards in current.items()}
        counts = {node: len(shards) for node, shards in movable.items()}
        chosen: set[int] = set()
        while budget > 0:
            most = max(counts, key=lambda node: (counts[node], node))
            least = min(counts, key=lambda node: (counts[node], node))
            if counts[most] - counts[least] <= self.threshold or not movable[most]:
                break
            chosen.add(movable[most].pop())
            counts[most] -= 1
            counts[least] += 1
            budget -= 1
        return chosen


def place_replicas(
    primary: NodeAddress,
    current: Sequence[NodeAddress],
    candidates: Collection[NodeAddress],
    load: Mapping[NodeAddress, int],
    count: int,
) -> tuple[NodeAddress, ...]:
    """The replica nodes of a shard whose primary is ``primary``: pure, for the coordinator.

    Keeps the ``current`` replicas that are still ``candidates`` (their copies are already
    filled), drops the primary and any surplus, then tops up with the least loaded candidates
    (fewest replicas in ``load``, then lowest address) until there are ``count`` or no more
    candidates. The result never contains ``primary`` or a node twice.

    Args:
        primary: The shard's primary node.
        current: Its replicas so far, in order.
        candidates: Nodes that may hold replicas (live regions hosting the type).
        load: Replicas each node holds now (missing means 0).
        count: Replicas wanted.

    Examples:
        >>> a, b, c, d = (NodeAddress("h", p) for p in (1, 2, 3, 4))
        >>> place_replicas(a, [b], {a, b, c, d}, {c: 5}, 2)
        (NodeAddress(host='h', port=2), NodeAddress(host='h', port=4))
    """
    kept: list[NodeAddress] = []
    for node in current:
        if node != primary and node in candidates and node not in kept and len(kept) < count:
            kept.append(node)
    spare = sorted(
        (n for n in candidates if n != primary and n not in kept), key=lambda n: (load.get(n, 0), n)
    )
    kept.extend(spare[: max(0, count - len(kept))])
    return tuple(kept)
