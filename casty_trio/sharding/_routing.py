"""The ref side of a shard region: what ``spawn(Behaviors.sharded(...), name)`` returns.

:class:`RegionRouting` is that ref's target. It hands envelopes for entities running here straight
to their mailboxes (one dict lookup, no hop through the region actor) and everything else to the
region; a per-entity count of envelopes queued in the region keeps the fast path shut while any
is queued, so the fast path never overtakes a message of the same sender.

Across nodes it does the same in both directions. A tell for an entity whose shard lives on a
known remote home (nothing for the id queued in the region) is encoded as a delivery and sent to
that node's region at once (:meth:`RegionRouting.deliver`), on the same link the region sends
on, so a handoff marker the region sends later still follows it. On the receiving node runs of
deliveries arrive whole at :meth:`RegionRouting.receive_run` (``RemotingPort.set_bulk_receiver``),
decoded in one call per run; those for running entities skip the region's mailbox: while
traffic is sparse each goes to its entity at once, and under a stream each is appended to its
entity's mailbox, lent to the region (``_core.mailbox_lending``) for a few scheduling rounds,
without waking the entity; then each entity gets its mailbox back and is woken once for all of
it. The region's other messages from peers go first to :meth:`RegionRouting.receive`
(``RemotingPort.set_receiver``), which keeps them behind those deliveries.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs
import msgspec
import trio

from .._core import ActorRef, NodeAddress, mailbox_lending
from .._errors import MailboxFullError

if TYPE_CHECKING:
    from ..remote import RawSender
    from ._region import _Region

__all__ = ["DRAIN", "Away", "Entity", "Inbound", "RegionRouting", "RegionStatistics"]

_log = logging.getLogger("casty_trio.sharding")

# Peers' deliveries for running entities wait in their mailboxes, unannounced, while each
# scheduling round brings at least _BURST more of them (the link is reading a backlog) or, once
# _LINGER_FROM wait, each pause of _LINGER seconds does (a stream whose frames come a little
# apart), up to _CAP messages, _HOLD seconds or _ROUNDS rounds; then every entity is woken once
# for all of its share. Under a saturating stream a hand-over must be large: a wake-up costs
# several messages' worth of work, so with many entities, waking each for a few messages would
# spend most of the receiver's time on wake-ups. The cost is latency under such a stream (at
# most _HOLD); sparse traffic (asks) is never held.
_BURST = 32
_CAP = 65_536
_ROUNDS = 1024
_HOLD = 0.05
# Once that many wait, two quiet rounds end in a pause of _LINGER seconds rather than at once.
_LINGER_FROM = 256
_LINGER = 0.0005

_AWAY_SIZE = 100_000  # entity ids of remote shards whose route is kept


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

    __slots__ = (
        "box",
        "deliver",
        "eid",
        "give_back",
        "last",
        "lend",
        "ref",
        "shard",
        "stopping",
        "waiting",
    )

    def __init__(self, eid: str, shard: int, ref: ActorRef[Any], tick: int) -> None:
        self.eid = eid
        self.shard = shard
        self.ref = ref
        self.deliver = ref.tell
        self.lend, self.give_back = mailbox_lending(ref)
        # Its mailbox, lent while peers' deliveries are appended to it unannounced (see
        # RegionRouting.receive_run): not None exactly while it is in ``RegionRouting.owed``.
        self.box: deque[Any] | None = None
        self.last = tick
        self.stopping = False
        self.waiting: list[Any] = []


class Away:
    """An entity id whose shard lives on a known remote home, as the fast path of
    :meth:`RegionRouting.deliver` sees it: the delivery's encoded prefix and the sender to that
    home. Valid while nothing for the id is queued in the region (``RegionRouting._pend`` drops
    it) and the region's shard homes stay as they were (the region clears
    ``RegionRouting.away`` whenever one changes, see ``Routes.homes_changed``)."""

    __slots__ = ("prefix", "send", "state", "wire")

    def __init__(self, state: _Region, prefix: bytes, sender: RawSender):
        self.state = state
        self.wire = state.deliveries
        self.prefix = prefix
        self.send = sender.send


class Inbound:
    """A peer's delivery taking the region's way (its entity is not running, or something for
    its id is queued in the region): ``RegionRouting.pending`` counts it until the region has
    it."""

    __slots__ = ("eid", "message", "shard")

    def __init__(self, eid: str, shard: int, message: Any) -> None:
        self.eid = eid
        self.shard = shard
        self.message = message


class _Drain:
    __slots__ = ()


DRAIN = _Drain()  # told to the region when entities start waiting in ``owed``


class RegionRouting:
    """The target behind the ref that ``spawn(Behaviors.sharded(...), name)`` returns.

    ``deliver`` is that ref's ``tell``: the fast path to running entities, else the region.
    """

    __slots__ = (
        "away",
        "direct",
        "fast",
        "held",
        "owed",
        "pending",
        "region",
        "state",
        "tick",
    )

    region: ActorRef[Any]  # set right after the region is spawned

    def __init__(self) -> None:
        self.fast: dict[str, Entity] = {}
        self.away: dict[str, Away] = {}
        self.pending: dict[str, int] = {}
        self.tick = 0
        self.state: _Region | None = None
        # Entities holding peers' deliveries they were not woken for, and how many such
        # deliveries came since the first of them (see receive_run and drain_inbound).
        self.owed: list[Entity] = []
        self.held = 0
        # Peers' deliveries handed straight to their entities since the last small drain:
        # sparse traffic (asks) is not held; once _BURST went that way, it is a stream.
        self.direct = 0

    def statistics(self) -> RegionStatistics:
        """What the region holds right now."""
        state = self.state
        if state is None:
            return RegionStatistics(frozenset(), 0, 0, None)
        return RegionStatistics(
            frozenset(state.hosted),
            sum(len(h.entities) for h in state.hosted.values()),
            state.routes.buffered,
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
        away = self.away.get(eid)
        if away is not None:
            # The remote fast path: ``Deliveries.send`` with its answers kept for this id (the
            # prefix and the sender) and for the last message type sent (the header), inlined
            # because every tell to a remote entity takes it. The link makes its checks as for
            # any send; any doubt or failure takes the general way below, which reports it.
            message = envelope.message
            wire = away.wire
            if type(message) is wire.sent_type:
                try:
                    sent = away.send(wire.header, away.prefix + wire.encode(message))
                except Exception:  # unencodable, or too big for a frame
                    pass
                else:
                    if not sent:
                        away.state.dead_letter(eid, message)  # outbox full, or shutting down
                    return
        self._route(eid, envelope)

    def _route(self, eid: str, envelope: Any) -> None:
        """``deliver`` for an id with no fast path: a remote home's region, else this one."""
        state = self.state
        # Straight to the region of the shard's remote home, as the region would
        # (``Routes.forward``), if that home is known. Only for ids with nothing queued
        # in the region: what the region sends and what this sends go through the same link,
        # in tell order.
        if (
            eid not in self.pending
            and state is not None
            and state.routes.forward(eid, state.routes.shard_of(eid), envelope.message)
        ):
            return
        self._pend(eid)
        self.region.tell(envelope)

    def went_away(self, eid: str, prefix: bytes, sender: RawSender) -> None:
        """The region sent a message for ``eid`` to the shard's remote home with ``sender``:
        later ones take the same way from the ref (:class:`Away`) while nothing for the id is
        queued in the region."""
        if eid in self.pending or self.state is None:
            return
        away = self.away
        if len(away) >= _AWAY_SIZE:
            away.clear()
        away[eid] = Away(self.state, prefix, sender)

    def _pend(self, eid: str) -> None:
        """Count one more message for ``eid`` queued in the region: until the region has them
        all, nothing for the id takes a fast path."""
        pending = self.pending
        pending[eid] = pending.get(eid, 0) + 1
        self.away.pop(eid, None)

    # ------------------------------------------------------------------ from peers

    def receive_run(self, peer: NodeAddress, manifest: str, run: msgspec.Raw, count: int) -> int:
        """A run of ``count`` deliveries from ``peer`` (``RemotingPort.set_bulk_receiver``), in the
        link's reader; returns how many were malformed (dropped and logged).

        A delivery for a running entity goes to the entity's mailbox at once while traffic is
        sparse (the first ``_BURST`` since the last hand-over), else it is appended to the
        entity's mailbox, lent for it, and the entity is then owed a hand-over (``owed``, made
        by :meth:`drain_inbound`, which gives the mailboxes back); any other
        goes to the region wrapped in :class:`Inbound` (counted in ``pending``, which keeps
        later messages for the id behind it). Handoff markers stay behind earlier deliveries:
        the region gives the mailboxes back before it handles any message.

        The stream loop is the receiver's hot path: a dict lookup, a shard check and a deque
        append per delivery; the cell is called twice per hand-over, not once per delivery.
        """
        state = self.state
        assert state is not None  # set before the receiver is
        batch, bad = state.deliveries.decode_run(peer, manifest, run, count)
        fast = self.fast
        owed = self.owed
        deliveries = iter(batch)
        if not owed and self.direct < _BURST:
            # Sparse traffic: each to its entity at once, until it looks like a stream.
            tick = self.tick
            for eid, shard, message in deliveries:
                entity = fast.get(eid)
                if entity is None or entity.shard != shard:
                    self._to_region(eid, shard, message)
                    continue
                entity.last = tick
                try:
                    entity.deliver(message)
                except MailboxFullError as exc:  # "reject" policy: already a dead letter
                    _log.debug("message for entity %r refused: %s", eid, exc)
                self.direct += 1
                if self.direct >= _BURST:
                    break
        # A stream: into the entities' lent mailboxes, each woken once for its share later.
        for eid, shard, message in deliveries:
            entity = fast.get(eid)
            if entity is None or entity.shard != shard:
                self._to_region(eid, shard, message)
                continue
            box = entity.box
            if box is None:
                box = entity.box = entity.lend()
                if box is None:  # it stopped: the region knows what to do with the id
                    self._to_region(eid, shard, message)
                    continue
                owed.append(entity)
                if len(owed) == 1:
                    self.held = 0
                    self.region.tell(DRAIN)
            box.append(message)
        self.held += len(batch)  # about: the count only paces drain_inbound
        return bad

    def _to_region(self, eid: str, shard: int, message: Any) -> None:
        self._pend(eid)
        self.region.tell(Inbound(eid, shard, message))

    def receive(self, msg: Any) -> None:
        """What else peers send the region (``RemotingPort.set_receiver``), in the link's reader:
        to the region, behind the deliveries that came before it (see :meth:`receive_run`)."""
        self.region.tell(msg)

    def took(self, eid: str) -> None:
        """The region has taken one of the messages for ``eid`` counted by ``_pend``: uncount
        it."""
        pending = self.pending
        count = pending.get(eid)
        if count is not None:
            if count <= 1:
                del pending[eid]
            else:
                pending[eid] = count - 1

    async def drain_inbound(self) -> None:
        """Give the entities in ``owed`` their mailboxes back (the region, on :data:`DRAIN`). A
        checkpoint.

        While the link keeps bringing a burst every scheduling round (or every short pause,
        once a stream is seen), wait, up to a bound, so that the entities run once for many
        messages instead of once per message: with many entities a wake-up per message costs
        far more than the message. A lone message (an ask) is handed over at once.
        """
        seen = rounds = idle = 0
        lingered = False
        deadline = trio.current_time() + _HOLD
        while self.held < _CAP and rounds < _ROUNDS and trio.current_time() < deadline:
            held = self.held
            grown = held - seen
            seen = held
            rounds += 1
            if grown >= _BURST:
                idle = 0
                lingered = False
                await trio.lowlevel.checkpoint()
                continue
            idle += 1
            if idle == 1:
                # Trio runs a round's tasks in a random order: the reader may simply have run
                # before this task twice in a row. Only two quiet rounds say the burst is over.
                await trio.lowlevel.checkpoint()
            elif not lingered and seen >= _LINGER_FROM:
                # A stream, not a burst: the peer's next frame is likely on its way.
                lingered = True
                await trio.sleep(_LINGER)
            else:
                break
        if self.held < _BURST:
            self.direct = 0  # sparse again
        self.flush_inbound()
        await trio.lowlevel.checkpoint()

    def flush_inbound(self) -> None:
        """Give every entity in ``owed`` its mailbox back, and so wake it (sync)."""
        owed = self.owed
        if not owed:
            return
        self.owed = []
        self.held = 0
        tick = self.tick
        for entity in owed:
            entity.last = tick
            box = entity.box
            assert box is not None
            entity.box = None
            entity.give_back(box)

    def add_watcher(self, watcher: Callable[[ActorRef[Any]], None]) -> None:
        self.region._target.add_watcher(watcher)

    def remove_watcher(self, watcher: Callable[[ActorRef[Any]], None]) -> None:
        self.region._target.remove_watcher(watcher)
