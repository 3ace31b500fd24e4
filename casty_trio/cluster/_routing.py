"""The ref side of a shard region: what ``spawn(Behaviors.sharded(...), name)`` returns.

:class:`RegionRouting` is that ref's target. It hands envelopes for entities running here straight
to their mailboxes (one dict lookup, no hop through the region actor) and everything else to the
region; a per-entity count of envelopes queued in the region keeps the fast path shut while any
is queued, so the fast path never overtakes a message of the same sender.

Across nodes it does the same in both directions. A tell for an entity whose shard lives on a
known remote home (nothing for the id queued in the region) is encoded and sent to that node's
region at once (:meth:`RegionRouting.forward`), on the same link the region forwards on, so a
handoff marker the region sends later still follows it. On the receiving node the region's
incoming messages go first to :meth:`RegionRouting.receive` (``Remoting.set_receiver``):
deliveries to running entities skip the region's mailbox, and under a stream of them they are
gathered for a few scheduling rounds and handed over together, so that each of many entities is
woken once for many messages rather than once per message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs
import msgspec
import trio

from .._core import ActorRef, NodeAddress
from .._errors import MailboxFullError, SerializationError
from ._shard_wire import ShardDeliver

if TYPE_CHECKING:
    from ._region import _Region

__all__ = ["DRAIN", "Entity", "Inbound", "RegionRouting", "RegionStatistics"]

_log = logging.getLogger("casty_trio.sharding")

# Peers' deliveries for running entities wait in ``RegionRouting.inbound`` while each scheduling
# round brings at least _BURST more of them (the link is reading a backlog), up to _CAP messages
# or _ROUNDS rounds; then every entity gets its share at once and is woken once for all of it.
_BURST = 32
_CAP = 16_384
_ROUNDS = 64
# Once that many wait, a round that brings less waits once more, _LINGER seconds.
_LINGER_FROM = 256
_LINGER = 0.0005


@attrs.frozen
class RegionStatistics:
    """A snapshot of one node's region of a sharded type.

    Attributes:
        shards: The shards this node hosts.
        entities: Entities running here.
        buffered: Messages waiting for a shard home.
        coordinator: Where this region believes the type's coordinator runs.
    """

    shards: frozenset[int]
    entities: int
    buffered: int
    coordinator: NodeAddress | None


class Entity:
    """A running entity as its region and the fast path see it."""

    __slots__ = ("deliver", "eid", "last", "ref", "shard", "stopping", "waiting")

    def __init__(self, eid: str, shard: int, ref: ActorRef[Any], tick: int) -> None:
        self.eid = eid
        self.shard = shard
        self.ref = ref
        self.deliver = ref.tell
        self.last = tick
        self.stopping = False
        self.waiting: list[Any] = []


class Inbound:
    """A peer's delivery taking the region's way (its entity is not running, or something for
    its id is queued in the region): ``RegionRouting.pending`` counts it until the region has
    it."""

    __slots__ = ("deliver",)

    def __init__(self, deliver: ShardDeliver) -> None:
        self.deliver = deliver


class _Drain:
    __slots__ = ()


DRAIN = _Drain()  # told to the region when peers' deliveries start waiting in ``inbound``


class RegionRouting:
    """The target behind the ref that ``spawn(Behaviors.sharded(...), name)`` returns.

    ``deliver`` is that ref's ``tell``: the fast path to running entities, else the region.
    """

    __slots__ = ("direct", "fast", "inbound", "pending", "region", "remote", "state", "tick")

    region: ActorRef[Any]  # set right after the region is spawned

    def __init__(self) -> None:
        self.fast: dict[str, Entity] = {}
        self.pending: dict[str, int] = {}
        # shard -> (its remote home, as last seen in the region's homes; that region's tell)
        self.remote: dict[int, tuple[NodeAddress, Callable[[Any], None]]] = {}
        self.tick = 0
        self.state: _Region | None = None
        # Peers' deliveries to running entities, decoded, waiting to be handed over in one go.
        self.inbound: list[tuple[Entity, Any]] = []
        # Peers' deliveries handed straight to their entities since the last small drain:
        # sparse traffic (asks) skips ``inbound``; once _BURST went that way, it is a stream.
        self.direct = 0

    def statistics(self) -> RegionStatistics:
        """What the region holds right now."""
        state = self.state
        if state is None:
            return RegionStatistics(frozenset(), 0, 0, None)
        return RegionStatistics(
            frozenset(state.hosted),
            sum(len(h.entities) for h in state.hosted.values()),
            state.buffered,
            state.coordinator_at,
        )

    def deliver(self, envelope: Any) -> None:
        try:
            eid = envelope.entity_id
        except AttributeError:
            raise TypeError(
                f"a sharded region takes ShardEnvelope messages, not {type(envelope).__name__}"
            ) from None
        entity = self.fast.get(eid)
        if entity is not None:
            entity.last = self.tick
            entity.deliver(envelope.message)
            return
        pending = self.pending
        if eid not in pending:
            state = self.state
            if state is not None and self.forward(state, eid, envelope.message):
                return
        pending[eid] = pending.get(eid, 0) + 1
        self.region.tell(envelope)

    def forward(self, state: _Region, eid: str, message: Any) -> bool:
        """Send ``message`` straight to the region of its shard's remote home, as the region
        would (``_Region.route``, not forwarded), if that home is known and the shard is not
        hosted here; False (nothing done) otherwise.

        Only for ids with nothing queued in the region (the caller checks ``pending``): what
        the region forwards and what this forwards go through the same link, in tell order.
        """
        shard = state.shard_cache.get(eid)
        if shard is None:
            shard = state.shard_of(eid)
        home = state.homes.get(shard)
        if home is None or shard in state.hosted:
            return False
        cached = self.remote.get(shard)
        if cached is None or cached[0] is not home:
            if home == state.me:
                return False
            ref = state.region_at(home)
            if ref is None:
                return False
            cached = self.remote[shard] = (home, ref.tell)
        try:
            manifest, payload = state.codec.encode(message)
        except SerializationError:
            state.forward(home, eid, shard, message)  # logs it and makes it a dead letter
            return True
        cached[1](ShardDeliver(eid, shard, manifest, msgspec.Raw(payload)))
        return True

    # ------------------------------------------------------------------ from peers

    def receive(self, msg: Any) -> None:
        """What peers send the region (``Remoting.set_receiver``), in the link's reader.

        A ``ShardDeliver`` for a running entity with nothing for its id queued in the region is
        decoded here and handed to the entity at once while traffic is sparse, else it waits
        in ``inbound`` (the region hands it over, see :meth:`drain_inbound`); any other goes to
        the region wrapped in :class:`Inbound` (counted in ``pending``, which keeps later
        messages for the id behind it), and everything else goes to the region as is.
        Handoff markers stay behind earlier deliveries: the region hands ``inbound`` over
        before it handles any message.
        """
        if type(msg) is ShardDeliver:
            eid = msg.entity_id
            entity = self.fast.get(eid)
            if entity is not None and entity.shard == msg.shard:
                state = self.state
                assert state is not None  # set before the receiver is
                try:
                    message = state.codec.decode(msg.manifest, msg.payload)
                except SerializationError as exc:
                    _log.warning("%s: dropped an invalid ShardDeliver: %s", state.path, exc)
                    return
                inbound = self.inbound
                if not inbound and self.direct < _BURST:
                    self.direct += 1
                    entity.last = self.tick
                    try:
                        entity.deliver(message)
                    except MailboxFullError as exc:  # "reject" policy: already a dead letter
                        _log.debug("message for entity %r refused: %s", eid, exc)
                    return
                inbound.append((entity, message))
                if len(inbound) == 1:
                    self.region.tell(DRAIN)
                return
            pending = self.pending
            pending[eid] = pending.get(eid, 0) + 1
            self.region.tell(Inbound(msg))
            return
        self.region.tell(msg)

    def took(self, inbound: Inbound) -> ShardDeliver:
        """The region has ``inbound``: uncount it."""
        msg = inbound.deliver
        pending = self.pending
        count = pending.get(msg.entity_id)
        if count is not None:
            if count <= 1:
                del pending[msg.entity_id]
            else:
                pending[msg.entity_id] = count - 1
        return msg

    async def drain_inbound(self) -> None:
        """Hand ``inbound`` over to its entities (the region, on :data:`DRAIN`). A checkpoint.

        While the link keeps bringing a burst every scheduling round, wait (up to a bound) so
        that the entities run once for many messages instead of once per message: with many
        entities a wake-up per message costs far more than the message. A lone message (an
        ask) is handed over at once.
        """
        inbound = self.inbound
        seen = rounds = 0
        lingered = False
        while len(inbound) < _CAP and rounds < _ROUNDS:
            grown = len(inbound) - seen
            seen = len(inbound)
            rounds += 1
            if grown >= _BURST:
                await trio.lowlevel.checkpoint()
            elif not lingered and seen >= _LINGER_FROM:
                # A stream, not a burst: the peer's next frame is likely on its way.
                lingered = True
                await trio.sleep(_LINGER)
            else:
                break
            inbound = self.inbound
        if len(inbound) < _BURST:
            self.direct = 0  # sparse again
        self.flush_inbound()
        await trio.lowlevel.checkpoint()

    def flush_inbound(self) -> None:
        """Hand everything in ``inbound`` to its entities, in arrival order (sync)."""
        inbound = self.inbound
        if not inbound:
            return
        self.inbound = []
        tick = self.tick
        for entity, message in inbound:
            entity.last = tick
            try:
                entity.deliver(message)
            except MailboxFullError as exc:  # a full "reject" mailbox: already a dead letter
                _log.debug("message for entity %r refused: %s", entity.eid, exc)

    def add_watcher(self, watcher: Callable[[ActorRef[Any]], None]) -> None:
        self.region._target.add_watcher(watcher)

    def remove_watcher(self, watcher: Callable[[ActorRef[Any]], None]) -> None:
        self.region._target.remove_watcher(watcher)
