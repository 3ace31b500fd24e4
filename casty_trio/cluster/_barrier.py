"""Cluster-wide barriers: the actor behind :meth:`ClusteredActorSystem.barrier`.

Every node runs a barrier actor at ``/$barrier``. It plays two parts:

Participant
    ``system.barrier(name, n)`` asks the local barrier actor, which gives the call an id
    (random, drawn from a generator seeded by the node's incarnation) and sends a
    :class:`~casty_trio.cluster._wire.BarrierArrive` to the barrier actor of the *host*: the
    oldest member (:func:`~casty_trio.cluster.oldest`), a deterministic choice every member
    agrees on once the membership converged. While the call waits, the arrival is re-sent to
    the current host every :data:`RESEND_INTERVAL` seconds and at once when a membership event
    changes the host (the old host exited or was downed). Each re-send renews the call's
    *lease* at the host (below). A call that gives up (timeout, cancellation) stops re-sending
    and sends one withdrawal, so it stops counting at once when the withdrawal arrives and at
    the latest when its lease lapses.

Host
    :class:`BarrierHost`, a state machine without I/O (events in, answers out), counts the
    arrivals of each name's round in progress, once per call. An arrival counts only while
    its lease runs: :data:`LEASE` seconds from the last time the host heard it (host's clock,
    so no clocks need to agree). When the count of live arrivals reaches ``n`` the host
    releases them all (:class:`~casty_trio.cluster._wire.BarrierRelease` to each) and forgets
    the round: the next arrival at that name opens a new round (barriers are reusable). It
    remembers the last calls it decided: a late re-send of a released or refused call is
    answered as it was the first time, one of a withdrawn call is ignored, none is counted in
    a later round. An arrival with another ``n`` than the round in progress is refused
    (only that call fails, with :class:`ValueError`; the round goes on). Arrivals from members
    that are downed or leave are dropped. A node that is not the host in its own view drops
    arrivals (the sender re-sends once the views agree) and forgets the rounds it held.

Why leases rather than acknowledged withdrawals: a withdrawal, however often retried, only
helps once it reaches the host, and the host may stay out of reach for long (a cut link, a
partition healing late, a participant's node crashing before it could withdraw). A lease needs
no message at all to end: whatever is lost, a call that stopped waiting stops counting
:data:`LEASE` seconds after its last renewal, with no state left behind on either side. The
cost is that a waiting call whose renewals are all lost for longer than :data:`LEASE` (a glitch
on its link to the host) drops out of the round until its next renewal arrives, which delays
the release and never makes it early. The withdrawal stays as the fast path.

Not guaranteed: a call that gives up can still be counted in a release decided before the host
learns of it, that is before its withdrawal arrives and within :data:`LEASE` of its last
renewal; that call raises its timeout while the others go on. If the host crashes, the new host
rebuilds each round from re-sends, so a round can be released at most once per host; a release
already sent by the old host stands.
"""

from __future__ import annotations

import logging
import random
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import attrs
import trio

from .._core import (
    ActorContext,
    ActorRef,
    Behavior,
    Behaviors,
    NodeAddress,
    TimerScheduler,
    check_running,
)
from .._errors import AskTimeoutError, BarrierTimeoutError
from ._events import MemberDowned, MemberLeft, MemberUp
from ._membership import UniqueAddress, oldest
from ._wire import (
    MAX_BARRIER_NAME,
    BarrierArrive,
    BarrierRelease,
    check_barrier_arrive,
    check_barrier_release,
)

if TYPE_CHECKING:
    from ._system import MembershipSystem

__all__ = [
    "BARRIER_NAME",
    "LEASE",
    "RESEND_INTERVAL",
    "Answer",
    "BarrierHost",
    "Call",
    "barrier_actor",
    "wait_at_barrier",
]

_log = logging.getLogger("casty_trio.cluster")

BARRIER_NAME = "$barrier"
BARRIER_PATH = "/" + BARRIER_NAME
RESEND_INTERVAL = 0.5
"""Seconds between two re-sends (lease renewals) of a waiting call's arrival to the host."""
LEASE = 4 * RESEND_INTERVAL
"""Seconds an arrival counts at the host after the host last heard it: three renewals in a row
may be lost (or late) before a waiting call drops out of its round."""
_REMEMBERED = 4096  # decided calls a host remembers (answers late re-sends)
_MEMBERSHIP_EVENTS = (MemberUp, MemberLeft, MemberDowned)

R = TypeVar("R")

Call = tuple[NodeAddress, int]
"""A barrier call as the host knows it: the participant's node and the call's id there."""


# ---------------------------------------------------------------------- host state machine


@attrs.frozen
class Answer(Generic[R]):
    """What :class:`BarrierHost` asks its caller to send: tell ``reply_to`` that call ``call``
    at barrier ``name`` is released (``error`` empty) or refused (``error`` says why)."""

    reply_to: R
    name: str
    call: int
    error: str = ""


@attrs.define
class _Arrival(Generic[R]):
    reply_to: R
    renewed_at: float


@attrs.define
class _Round(Generic[R]):
    n: int
    arrivals: dict[Call, _Arrival[R]] = attrs.Factory(dict)


class BarrierHost(Generic[R]):
    """The host's bookkeeping of barrier rounds: events in, :class:`Answer` values out.

    No I/O and no clock of its own: every event carries ``now`` (seconds, any monotonic clock
    the caller keeps; the barrier actor passes Trio's). ``R`` is whatever the caller needs to
    answer a participant (the barrier actor uses the participant's barrier actor ref).

    Guarantees, for any sequence of events:

    * A round of ``n`` is released exactly when ``n`` distinct live calls are counted in it,
      at the arrival that makes the ``n``-th: each gets one release answer, together.
    * A call is live while its lease runs (``now`` at most ``lease`` past its last arrival),
      and it was not withdrawn, released or refused, and no :meth:`member_gone` for its node
      or :meth:`resign` came after its last arrival. Only live calls are counted.
    * A call is decided once: released in at most one round, or refused, or withdrawn. A
      later re-send of it is answered as it was the first time (nothing for a withdrawn call)
      while the host remembers it, never counted anew.

    Args:
        lease: Seconds an arrival counts after it was last heard.
        remembered: How many decided calls (released, refused, withdrawn) to remember, for
            late re-sends.

    Examples:
        >>> host = BarrierHost[str](lease=2.0)
        >>> a, b = (NodeAddress("a", 1), 7), (NodeAddress("b", 1), 9)
        >>> host.arrive("start", 2, a, "ref-a", now=0.0)
        []
        >>> host.arrive("start", 2, b, "ref-b", now=3.0)  # a's lease lapsed at 2.0
        []
        >>> [x.reply_to for x in host.arrive("start", 2, a, "ref-a", now=3.5)]
        ['ref-b', 'ref-a']
    """

    def __init__(self, *, lease: float = LEASE, remembered: int = _REMEMBERED) -> None:
        if not lease > 0:
            raise ValueError(f"a lease must be positive, got {lease!r}")
        if remembered < 0:
            raise ValueError(f"remembered must be at least 0, got {remembered!r}")
        self._lease = lease
        self._remembered = remembered
        self._rounds: dict[str, _Round[R]] = {}
        # call -> (name, outcome) of the calls decided: the answer they got (a release or a
        # refusal), or None for a withdrawn call; a late re-send gets the same answer again
        self._done: OrderedDict[Call, tuple[str, str | None]] = OrderedDict()

    @property
    def lease(self) -> float:
        """Seconds an arrival counts after the host last heard it."""
        return self._lease

    def has_rounds(self) -> bool:
        """Whether some round is in progress (with at least one arrival, live or not)."""
        return bool(self._rounds)

    def counted(self, name: str, now: float) -> frozenset[Call]:
        """The live calls counted in the round in progress at ``name`` (empty if none)."""
        round_ = self._rounds.get(name)
        if round_ is None:
            return frozenset()
        return frozenset(
            call for call, a in round_.arrivals.items() if now - a.renewed_at <= self._lease
        )

    def arrive(self, name: str, n: int, call: Call, reply_to: R, now: float) -> list[Answer[R]]:
        """Call ``call`` waits at ``name`` for ``n`` participants (first arrival or renewal).

        Returns:
            The answers to send: nothing while the round waits; the release of every call
            counted when this arrival makes ``n``; a refusal of this call alone if the round
            in progress waits for another ``n``; the same answer again if this call was
            already released or refused (a re-send that crossed the answer, or whose answer
            was lost).
        """
        if call in self._done:
            done_name, outcome = self._done[call]
            if outcome is not None and done_name == name:
                return [Answer(reply_to, name, call[1], outcome)]
            return []  # withdrawn (or a stale message under another name): never counted
        round_ = self._prune(name, now)
        if round_ is not None and round_.n != n:
            error = (
                f"barrier {name!r} called with n={n} while its round in progress "
                f"waits for n={round_.n}"
            )
            self._remember(call, name, error)
            return [Answer(reply_to, name, call[1], error)]
        if round_ is None:
            round_ = self._rounds[name] = _Round(n)
        round_.arrivals[call] = _Arrival(reply_to, now)
        if len(round_.arrivals) < n:
            return []
        del self._rounds[name]
        answers = []
        for released_call, arrival in round_.arrivals.items():
            answers.append(Answer(arrival.reply_to, name, released_call[1]))
            self._remember(released_call, name, "")
        return answers

    def withdraw(self, name: str, call: Call, now: float) -> None:
        """Call ``call`` at ``name`` gave up: it is never counted again."""
        if call in self._done:
            return
        round_ = self._rounds.get(name)
        if round_ is not None:
            round_.arrivals.pop(call, None)
            self._prune(name, now)
        self._remember(call, name, None)

    def member_gone(self, node: NodeAddress) -> None:
        """The member at ``node`` was downed or left: drop its calls (a later arrival from that
        address, from a new incarnation, counts again)."""
        for name, round_ in list(self._rounds.items()):
            for call in [c for c in round_.arrivals if c[0] == node]:
                del round_.arrivals[call]
            if not round_.arrivals:
                del self._rounds[name]

    def expire(self, now: float) -> None:
        """Drop the arrivals whose lease lapsed by ``now``, and the rounds left empty."""
        for name in list(self._rounds):
            self._prune(name, now)

    def resign(self) -> None:
        """This node is no longer the host: forget the rounds in progress (participants re-send
        to the new host). Released and withdrawn calls stay remembered."""
        self._rounds.clear()

    def _prune(self, name: str, now: float) -> _Round[R] | None:
        round_ = self._rounds.get(name)
        if round_ is None:
            return None
        lapsed = [c for c, a in round_.arrivals.items() if now - a.renewed_at > self._lease]
        for call in lapsed:
            del round_.arrivals[call]
        if not round_.arrivals:
            del self._rounds[name]
            return None
        return round_

    def _remember(self, call: Call, name: str, outcome: str | None) -> None:
        self._done[call] = (name, outcome)
        self._done.move_to_end(call)
        while len(self._done) > self._remembered:
            self._done.popitem(last=False)


# ---------------------------------------------------------------------- the actor


@attrs.frozen
class _Await:
    """Local: a ``barrier()`` call; ``token`` identifies it for a withdrawal."""

    name: str
    n: int
    token: str
    reply_to: ActorRef[_Outcome]


@attrs.frozen
class _Withdraw:
    """Local: the call ``token`` gave up (timeout or cancellation)."""

    token: str


@attrs.frozen
class _Outcome:
    """Local answer to :class:`_Await`: released (``error`` empty) or refused."""

    error: str


class _Resend:
    pass


class _Expire:
    pass


@attrs.define
class _Pending:
    name: str
    n: int
    token: str
    reply_to: ActorRef[_Outcome]


class _Barriers:
    """State and handlers of one node's barrier actor."""

    def __init__(
        self, system: MembershipSystem, ctx: ActorContext[Any], timers: TimerScheduler[Any]
    ) -> None:
        self.system = system
        self.ctx = ctx
        self.timers = timers
        self.me = system.self_unique
        self.rng = random.Random(self.me.uid ^ 0x5EED_BA55)
        # participant side
        self.pending: dict[int, _Pending] = {}
        self.tokens: dict[str, int] = {}
        self.sent_to: UniqueAddress | None = None
        # host side
        self.hosting: BarrierHost[ActorRef[Any]] = BarrierHost()

    # ------------------------------------------------------------------ helpers

    def host(self) -> UniqueAddress | None:
        member = oldest(self.system.cluster_gossip())
        return member.unique if member is not None else None

    def actor_at(self, node: NodeAddress) -> ActorRef[Any]:
        ref = self.system.lookup(BARRIER_PATH, node=node)
        assert ref is not None
        return ref

    def node_of(self, ref: ActorRef[Any]) -> NodeAddress:
        node = ref.address.node
        return node if node is not None else self.me.node

    # ------------------------------------------------------------------ participant

    def send(self, call: int, pending: _Pending, host: UniqueAddress) -> None:
        arrive = BarrierArrive(pending.name, pending.n, call, self.ctx.self)
        self.actor_at(host.node).tell(arrive)

    def resend_all(self) -> None:
        host = self.host()
        self.sent_to = host
        if host is None:
            return
        for call, pending in self.pending.items():
            self.send(call, pending, host)

    def on_await(self, msg: _Await) -> None:
        call = self.rng.getrandbits(62)
        while call in self.pending:
            call = self.rng.getrandbits(62)
        pending = _Pending(msg.name, msg.n, msg.token, msg.reply_to)
        self.pending[call] = pending
        self.tokens[msg.token] = call
        host = self.host()
        if host is not None:
            self.send(call, pending, host)
        if not self.timers.is_active("resend"):
            self.timers.start_periodic("resend", _Resend(), RESEND_INTERVAL)

    def forget(self, call: int) -> _Pending | None:
        pending = self.pending.pop(call, None)
        if pending is not None:
            self.tokens.pop(pending.token, None)
        if not self.pending:
            self.timers.cancel("resend")
        return pending

    def on_withdraw(self, msg: _Withdraw) -> None:
        call = self.tokens.get(msg.token)
        if call is None:
            return
        pending = self.forget(call)  # no more renewals: the lease ends the call if this is lost
        host = self.host()
        if pending is not None and host is not None:
            withdraw = BarrierArrive(pending.name, pending.n, call, self.ctx.self, withdraw=True)
            self.actor_at(host.node).tell(withdraw)

    def on_release(self, msg: BarrierRelease) -> None:
        try:
            check_barrier_release(msg)
        except ValueError as exc:
            _log.warning("%s: dropped an invalid barrier release: %s", self.me, exc)
            return
        pending = self.pending.get(msg.call)
        if pending is None or pending.name != msg.name:
            return  # a duplicate, or a call that gave up meanwhile
        self.forget(msg.call)
        pending.reply_to.tell(_Outcome(msg.error))

    def on_membership(self, event: Any) -> None:
        if isinstance(event, MemberDowned | MemberLeft):
            self.hosting.member_gone(event.member.node)
            self.sync_expiry()
        if self.pending and self.host() != self.sent_to:
            self.resend_all()

    # ------------------------------------------------------------------ host

    def on_arrive(self, msg: BarrierArrive) -> None:
        try:
            check_barrier_arrive(msg)
        except ValueError as exc:
            _log.warning("%s: dropped an invalid barrier arrival: %s", self.me, exc)
            return
        if self.host() != self.me:
            self.hosting.resign()  # not (or no longer) the host: the sender will re-send
            self.sync_expiry()
            return
        call = (self.node_of(msg.reply_to), msg.call)
        now = trio.current_time()
        if msg.withdraw:
            self.hosting.withdraw(msg.name, call, now)
        else:
            for answer in self.hosting.arrive(msg.name, msg.n, call, msg.reply_to, now):
                answer.reply_to.tell(BarrierRelease(answer.name, answer.call, answer.error))
        self.sync_expiry()

    def sync_expiry(self) -> None:
        """Sweep lapsed arrivals every :data:`LEASE` while some round is in progress (a lapsed
        arrival is never counted anyway; the sweep only frees its memory)."""
        active = self.timers.is_active("expire")
        if self.hosting.has_rounds() and not active:
            self.timers.start_periodic("expire", _Expire(), LEASE)
        elif not self.hosting.has_rounds() and active:
            self.timers.cancel("expire")

    def on_expire(self) -> None:
        self.hosting.expire(trio.current_time())
        self.sync_expiry()

    # ------------------------------------------------------------------ dispatch

    async def receive(self, ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
        if isinstance(msg, BarrierArrive):
            self.on_arrive(msg)
        elif isinstance(msg, BarrierRelease):
            self.on_release(msg)
        elif isinstance(msg, _Await):
            self.on_await(msg)
        elif isinstance(msg, _Withdraw):
            self.on_withdraw(msg)
        elif isinstance(msg, _Resend):
            self.resend_all()
        elif isinstance(msg, _Expire):
            self.on_expire()
        elif isinstance(msg, _MEMBERSHIP_EVENTS):
            self.on_membership(msg)
        return Behaviors.same()


def barrier_actor(system: MembershipSystem) -> Behavior[Any]:
    """The barrier actor's behavior (spawned once per node at ``/$barrier``)."""

    def with_timers(ctx: ActorContext[Any], timers: TimerScheduler[Any]) -> Behavior[Any]:
        state = _Barriers(system, ctx, timers)
        for event_type in _MEMBERSHIP_EVENTS:
            system.event_stream.subscribe(event_type, ctx.self)
        return Behaviors.receive(state.receive)

    return Behaviors.with_timers(with_timers)


async def wait_at_barrier(
    system: MembershipSystem, name: str, n: int, *, timeout: float
) -> None:
    """What :meth:`ClusteredActorSystem.barrier` does (see there)."""
    if not isinstance(name, str) or not name or len(name) > MAX_BARRIER_NAME:
        raise ValueError(
            f"a barrier name must be a non-empty string of at most {MAX_BARRIER_NAME} "
            f"characters, got {name!r}"
        )
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"a barrier needs at least one participant, got n={n!r}")
    ref = system.lookup(BARRIER_PATH)
    if ref is None:
        check_running(system)
        raise RuntimeError("the barrier actor is not running")
    tokens: list[str] = []

    def arrive(reply_to: ActorRef[_Outcome]) -> _Await:
        tokens.append(reply_to.address.path)
        return _Await(name, n, reply_to.address.path, reply_to)

    released = False
    try:
        outcome: _Outcome = await system.ask(ref, arrive, timeout=timeout)
        released = True
    except AskTimeoutError:
        raise BarrierTimeoutError(
            f"barrier {name!r}: fewer than {n} participants arrived within {timeout}s"
        ) from None
    finally:
        if not released and tokens:
            ref.tell(_Withdraw(tokens[0]))  # timed out or cancelled: stop counting this call
    if outcome.error:
        raise ValueError(outcome.error)
