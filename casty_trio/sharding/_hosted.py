"""A shard as the region of the node hosting it sees it, and the states it goes through.

A shard is served (messages are delivered to its entities here) in the states below
``STOPPING``: ``ACTIVE``, or ``COLLECTING`` (a handoff waits for the other regions' markers).
``STOPPING``: its entities are stopping, new messages wait in the region's buffer.
``SYNCING``: a replicated shard's new primary copies the shard's history before serving it;
a handoff asked for meanwhile waits for the end of the copy (the coordinator balances shards
right after a failover, while its new primaries are still copying).
"""

from __future__ import annotations

from .._core import NodeAddress
from ._routing import Entity
from ._wire import HandOff

__all__ = ["ACTIVE", "COLLECTING", "STOPPING", "SYNCING", "Hosted"]

ACTIVE, COLLECTING, STOPPING, SYNCING = 0, 1, 2, 3


class Hosted:
    """A shard this node hosts."""

    __slots__ = (
        "awaiting",
        "deadline",
        "entities",
        "epoch",
        "handoff",
        "markers",
        "round",
        "shard",
        "state",
    )

    def __init__(self, shard: int, epoch: int) -> None:
        self.shard = shard
        self.epoch = epoch
        self.state = ACTIVE
        self.entities: dict[str, Entity] = {}
        self.markers: set[tuple[int, NodeAddress]] = set()
        self.awaiting: set[NodeAddress] = set()
        self.round = 0
        self.deadline = 0.0
        # a HandOff asked for while SYNCING: it starts once the history is here
        self.handoff: HandOff | None = None

    @property
    def syncing(self) -> bool:
        """Whether the shard copies its history before being served (``SYNCING``)."""
        return self.state == SYNCING

    @syncing.setter
    def syncing(self, value: bool) -> None:
        self.state = SYNCING if value else ACTIVE
