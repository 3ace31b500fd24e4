"""Cluster-wide barriers: the actor behind :meth:`ClusteredActorSystem.barrier`.

Every node runs a barrier actor at ``/$barrier``. It plays two parts:

Participant
    ``system.barrier(name, n)`` asks the local barrier actor, which gives the call an id
    (random, drawn from a generator seeded by the node's incarnation) and sends a
    :class:`~casty_trio.cluster._wire.BarrierArrive` to the barrier actor of the *host*: the
    oldest member (:func:`~casty_trio.cluster.oldest`), a deterministic choice every member
    agrees on once the membership converged. While the call waits, the arrival is re-sent to
    the current host every :data:`RESEND_INTERVAL` seconds and at once when a membership event
    changes the host (the old host exited or was downed): the host counts a call once, by
    ``(node, call id)``, so re-sends are harmless. A call that gives up (timeout, cancellation)
    sends a withdrawal, so it no longer counts.

Host
    Counts the arrivals of each name's round in progress. When the count reaches ``n`` it
    sends :class:`~casty_trio.cluster._wire.BarrierRelease` to every participant and forgets
    the round: the next arrival at that name opens a new round (barriers are reusable). It
    remembers the last released calls, so a late re-send of a released call is answered with
    its release again rather than counted in the next round. An arrival with another ``n`` than
    the round in progress is refused (only that call fails, with :class:`ValueError`; the round
    goes on). Arrivals from members that are downed or leave are dropped. A node that is not
    the host in its own view drops arrivals (the sender re-sends once the views agree) and
    forgets the rounds it held.

Not guaranteed: if the host crashes, the new host rebuilds each round from re-sends, so a
round can be released at most once per host; a release already sent by the old host stands.
"""

from __future__ import annotations

import logging
import random
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import attrs

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

__all__ = ["BARRIER_NAME", "RESEND_INTERVAL", "barrier_actor", "wait_at_barrier"]

_log = logging.getLogger("casty_trio.cluster")

BARRIER_NAME = "$barrier"
BARRIER_PATH = "/" + BARRIER_NAME
RESEND_INTERVAL = 0.5
"""Seconds between two re-sends of a waiting call's arrival to the host."""
_REMEMBERED = 4096  # released calls a host remembers (answers late re-sends)
_MEMBERSHIP_EVENTS = (MemberUp, MemberLeft, MemberDowned)


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


@attrs.define
class _Pending:
    name: str
    n: int
    token: str
    reply_to: ActorRef[_Outcome]


@attrs.define
class _Round:
    n: int
    arrivals: dict[tuple[NodeAddress, int], ActorRef[Any]] = attrs.Factory(dict)


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
        self.rounds: dict[str, _Round] = {}
        self.released: OrderedDict[tuple[NodeAddress, int], str] = OrderedDict()

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
        pending = self.forget(call)
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
            gone = event.member.node
            for name, round_ in list(self.rounds.items()):
                for key in [k for k in round_.arrivals if k[0] == gone]:
                    del round_.arrivals[key]
                if not round_.arrivals:
                    del self.rounds[name]
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
            self.rounds.clear()  # not (or no longer) the host: the sender will re-send
            return
        key = (self.node_of(msg.reply_to), msg.call)
        round_ = self.rounds.get(msg.name)
        if msg.withdraw:
            if round_ is not None:
                round_.arrivals.pop(key, None)
                if not round_.arrivals:
                    del self.rounds[msg.name]
            return
        if self.released.get(key) == msg.name:
            msg.reply_to.tell(BarrierRelease(msg.name, msg.call, ""))
            return
        if round_ is not None and round_.n != msg.n:
            error = (
                f"barrier {msg.name!r} called with n={msg.n} while its round in progress "
                f"waits for n={round_.n}"
            )
            msg.reply_to.tell(BarrierRelease(msg.name, msg.call, error))
            return
        if round_ is None:
            round_ = self.rounds[msg.name] = _Round(msg.n)
        round_.arrivals[key] = msg.reply_to
        if len(round_.arrivals) < round_.n:
            return
        del self.rounds[msg.name]
        for (node, call), ref in round_.arrivals.items():
            ref.tell(BarrierRelease(msg.name, call, ""))
            self.released[(node, call)] = msg.name
        while len(self.released) > _REMEMBERED:
            self.released.popitem(last=False)

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
