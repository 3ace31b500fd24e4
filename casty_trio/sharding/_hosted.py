"""A shard as the region of the node hosting it sees it, and the states it goes through.

A shard is served (messages are delivered to its entities here) in the states below
``STOPPING``: ``ACTIVE``, or ``COLLECTING`` (a handoff waits for the other regions' markers).
``STOPPING``: its entities are stopping, new messages wait in the region's buffer.
``SYNCING``: a replicated shard's new primary copies the shard's history before serving it;
a handoff asked for meanwhile waits for the end of the copy (the coordinator balances shards
right after a failover, while its new primaries are still copying).

:class:`Hosted` decides when the shard stops, as a sans-IO state machine: its methods take the
events (the coordinator's ``HandOff``, ``ShardHome``, ``DropShard``, the other regions'
``HandOffMarker``, a newer allocation epoch, membership changes, the time) and return what the
region must do (:data:`STOP`: stop the shard's entities after their queued messages, then report
``ShardStopped``; :data:`NOT_HOSTED`: tell the coordinator that this node does not host the
allocation it asked about), or None. It sends nothing and reads no clock; none of its methods is
a checkpoint.

A handoff, at the shard's home: on ``HandOff`` the shard collects the marker of each live region
other than this one (each region sends it behind whatever it forwarded here before); it stops
once the last arrived, or the regions still awaited left, or the handoff's deadline passed.
Markers may arrive before the ``HandOff`` of their round: they are kept until it comes.

Examples:
    >>> a, b = NodeAddress("h", 1), NodeAddress("h", 2)
    >>> hosted = Hosted(shard=4, epoch=9)
    >>> hosted.marker(1, a)  # early: kept for round 1
    >>> hosted.hand_off(HandOff(4, 9, 1, []), expected={a, b}, deadline=30.0)
    >>> hosted.state == COLLECTING, sorted(hosted.awaiting)
    (True, [NodeAddress(host='h', port=2)])
    >>> hosted.marker(1, b)
    <ShardAction.STOP: 'stop'>
    >>> hosted.state == STOPPING
    True
    >>> Hosted(shard=4, epoch=9).hand_off(HandOff(4, 8, 1, []), expected=(), deadline=30.0)
    <ShardAction.NOT_HOSTED: 'not hosted'>
"""

from __future__ import annotations

import enum
from collections.abc import Collection

from .._core import NodeAddress
from ._routing import Entity
from ._wire import HandOff

__all__ = ["ACTIVE", "COLLECTING", "NOT_HOSTED", "STOP", "STOPPING", "SYNCING", "Hosted"]

ACTIVE, COLLECTING, STOPPING, SYNCING = 0, 1, 2, 3


class ShardAction(enum.Enum):
    """What the region hosting a shard must do (returned by :class:`Hosted`'s events)."""

    STOP = "stop"
    NOT_HOSTED = "not hosted"


STOP = ShardAction.STOP
NOT_HOSTED = ShardAction.NOT_HOSTED


class Hosted:
    """A shard this node hosts (allocation ``epoch``): its entities and its state.

    ``state`` and ``entities`` are read by the region's routing; ``state`` changes only through
    the event methods below (and ``syncing``, for the replication's history copy).
    """

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
        # markers of a round whose HandOff has not come (yet): (round, sender)
        self.markers: set[tuple[int, NodeAddress]] = set()
        # COLLECTING: the regions whose marker of ``round`` has not come, until ``deadline``
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

    def hand_off(
        self, request: HandOff, expected: Collection[NodeAddress], deadline: float
    ) -> ShardAction | None:
        """The coordinator asks to hand the shard off (``request``): collect the markers of its
        round from the ``expected`` regions (the live ones but this node's) until ``deadline``.

        :data:`NOT_HOSTED` when ``request`` is about another allocation epoch (nothing changes);
        kept for later while ``SYNCING``; ignored unless ``ACTIVE``; :data:`STOP` when no marker
        is awaited.
        """
        if request.epoch != self.epoch:
            return NOT_HOSTED
        if self.state == SYNCING:
            self.handoff = request
            return None
        if self.state != ACTIVE:
            return None
        self.state = COLLECTING
        self.round = request.round
        self.deadline = deadline
        seen = {node for round_, node in self.markers if round_ == request.round}
        self.markers.clear()
        self.awaiting = set(expected) - seen
        return self._collected()

    def marker(self, round_: int, sender: NodeAddress) -> ShardAction | None:
        """The region of ``sender`` sent its marker of handoff round ``round_``: :data:`STOP`
        when it was the last awaited."""
        if self.state == COLLECTING and round_ == self.round:
            self.awaiting.discard(sender)
            return self._collected()
        self.markers.add((round_, sender))
        return None

    def members_changed(self, live: Collection[NodeAddress]) -> ShardAction | None:
        """Only ``live`` are members now: markers of the others are no longer awaited."""
        if self.state != COLLECTING:
            return None
        self.awaiting.intersection_update(live)
        return self._collected()

    def tick(self, now: float) -> ShardAction | None:
        """Time passed: :data:`STOP` when a handoff's markers did not all come by its deadline
        (``awaiting`` names the regions that did not send theirs)."""
        if self.state == COLLECTING and now >= self.deadline:
            return self._stop()
        return None

    def home_confirmed(self) -> None:
        """The coordinator says this node is the shard's home: a handoff under way was given up
        (the shard is served on)."""
        if self.state == COLLECTING:
            self.state = ACTIVE

    def moved(self) -> ShardAction | None:
        """The coordinator says the shard lives elsewhere: :data:`STOP` unless stopping."""
        return self._stop()

    def fence(self, epoch: int) -> ShardAction | None:
        """Someone knows allocation ``epoch`` of the shard: :data:`STOP` if it is newer than
        this one (this node no longer owns the shard)."""
        return self._stop() if epoch > self.epoch else None

    def drop(self, epoch: int) -> ShardAction | None:
        """The coordinator drops allocation ``epoch`` here (another node claimed the shard):
        :data:`STOP` if it is this one; another epoch is ignored."""
        return self._stop() if epoch == self.epoch else None

    def _collected(self) -> ShardAction | None:
        return None if self.awaiting else self._stop()

    def _stop(self) -> ShardAction | None:
        if self.state == STOPPING:
            return None
        self.state = STOPPING
        return STOP
