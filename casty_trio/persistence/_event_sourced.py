"""Event-sourced actors: state rebuilt from a journal, changed only by persisted events.

:class:`EventSourcedBehavior` is a frozen value (other layers read its fields, e.g. a replica
needs ``journal``, ``initial_state`` and ``on_event`` without running the actor). Started by the
cell, it recovers its state with :func:`recover` and runs a plain receive handler that calls the
user's ``on_command`` and carries out the :class:`PersistedBehavior` values it returns.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, ClassVar, Generic, Protocol, TypeVar

import attrs

from .._core import ActorContext, ActorRef, Behavior, Behaviors, ExtensionBehavior, NodeAddress
from ._journal import EventJournal, PersistedEvent, Snapshot

__all__ = [
    "EventSourcedBehavior",
    "PersistedBehavior",
    "Replicator",
    "SnapshotEvery",
    "recover",
]

M = TypeVar("M")
S = TypeVar("S")


class Replicator(Protocol):
    """Copies an entity's freshly persisted events to its replicas (set by the cluster layer).

    The sharding layer sets it on an :class:`EventSourcedBehavior` with
    ``attrs.evolve(behavior, replicator=...)``; users normally pass ``replication=`` to
    ``Behaviors.event_sourced`` instead and never implement this.

    Examples:
        >>> class Recording:
        ...     def __init__(self) -> None:
        ...         self.batches: list[list[int]] = []
        ...     async def replicate(self, entity_id, events) -> None:
        ...         self.batches.append([e.sequence_nr for e in events])
    """

    async def replicate(
        self,
        entity_id: str,
        events: Sequence[PersistedEvent],
        confirmed: Callable[[], None] | None = None,
        origin: NodeAddress | None = None,
    ) -> None:
        """Replicate ``events`` of ``entity_id``; return once the configured replicas have them.

        Called by the entity after the events are persisted locally and applied to its state,
        and before the command's ``reply`` runs. Raising an ``Exception`` runs the command's
        ``on_failure(exc)`` instead of ``reply``; the entity keeps running with the events
        persisted and applied.

        ``confirmed`` (optional to use) runs the command's reply: a replicator may call it
        once, synchronously, as soon as the events are confirmed and before it returns, from
        whichever task saw the confirmation (so the reply leaves without waiting for the
        entity's task to be scheduled again). It never raises; if it is not called, the entity
        runs the reply itself after ``replicate`` returns.

        ``origin`` (optional to use) is the node the command's answer goes to: the node of
        its ``reply_to`` field when it has one that is a ref (``None`` otherwise, or for a
        ref with no node). A replicator may send there first.
        """
        ...


def _at_least_one(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 1:
        raise ValueError(f"{attribute.name} must be at least 1, got {value}")


@attrs.frozen
class SnapshotEvery:
    """Snapshot an event-sourced entity's state every ``n_events`` events.

    After a persist whose events cross a multiple of ``n_events`` (sequence numbers 100, 200,
    ... for ``SnapshotEvery(100)``), the state after the whole batch is saved as a snapshot, so
    recovery replays at most about ``n_events`` events.

    Args:
        n_events: Events between two snapshots; at least 1.

    Examples:
        >>> policy = SnapshotEvery(100)
        >>> policy.should_snapshot(99, 101), policy.should_snapshot(101, 150)
        (True, False)
    """

    n_events: int = attrs.field(validator=_at_least_one)

    def should_snapshot(self, previous_sequence_nr: int, sequence_nr: int) -> bool:
        """Whether a persist moving from ``previous_sequence_nr`` to ``sequence_nr`` snapshots."""
        n = self.n_events
        return sequence_nr // n > previous_sequence_nr // n


def _events_tuple(events: Iterable[Any]) -> tuple[Any, ...]:
    return tuple(events)


@attrs.frozen
class PersistedBehavior(ExtensionBehavior[M]):
    """What ``on_command`` returns to persist events; build it with ``Behaviors.persisted``.

    Only meaningful as the result of an event-sourced ``on_command``: returned from any other
    handler, or used as an initial behavior, it fails the actor with a ``TypeError``.
    """

    events: tuple[Any, ...] = attrs.field(converter=_events_tuple)
    then: Behavior[M] | None = None
    reply: Callable[[], object] | None = None
    on_failure: Callable[[Exception], object] | None = None

    async def start(self, ctx: ActorContext[M]) -> Behavior[M]:
        """Always raises: a persisted behavior is no behavior of its own."""
        raise TypeError(
            f"actor {ctx.path}: Behaviors.persisted(...) is only meaningful as the return value "
            "of the on_command handler of Behaviors.event_sourced(...)"
        )


async def recover(
    journal: EventJournal,
    entity_id: str,
    initial_state: S,
    on_event: Callable[[S, Any], S],
) -> tuple[S, int]:
    """Rebuild an entity's state: its latest snapshot, then every later event folded in.

    Args:
        journal: Where the entity's history is.
        entity_id: The entity.
        initial_state: The state before the first event (used when there is no snapshot).
        on_event: ``on_event(state, event) -> state``, applied to each event in order.

    Returns:
        ``(state, highest_sequence_nr)``: the recovered state and the sequence number of the
        last event folded into it (the snapshot's when no event follows it; 0 for a new entity).

    Raises:
        JournalError: The journal failed (whatever the journal raises is propagated).

    This is a checkpoint (it awaits the journal).

    Examples:
        >>> import trio
        >>> async def main():
        ...     journal = InMemoryJournal()
        ...     await journal.persist("c", [PersistedEvent(n, n, 0.0) for n in (1, 2, 3)])
        ...     return await recover(journal, "c", 0, lambda total, n: total + n)
        >>> trio.run(main)
        (6, 3)
    """
    state = initial_state
    highest = 0
    snapshot = await journal.load_snapshot(entity_id)
    if snapshot is not None:
        state = snapshot.state
        highest = snapshot.sequence_nr
    for persisted in await journal.load(entity_id, highest + 1):
        state = on_event(state, persisted.event)
        highest = persisted.sequence_nr
    return state, highest


@attrs.frozen(kw_only=True)
class EventSourcedBehavior(ExtensionBehavior[M], Generic[M, S]):
    """An event-sourced actor as a value; build it with ``Behaviors.event_sourced``.

    Its fields are public so other layers can use them without running the actor (a replica
    folds replicated events with ``on_event`` into ``initial_state``, for example).
    ``replicator`` is set by the sharding layer (``attrs.evolve``), never by users.
    """

    opens_nursery: ClassVar[bool] = False  # entities rarely spawn: open it on first need

    entity_id: str
    journal: EventJournal
    initial_state: S
    on_event: Callable[[S, Any], S]
    on_command: Callable[[ActorContext[M], S, M], Awaitable[Behavior[M]]]
    snapshot_policy: SnapshotEvery | None = None
    replication: object | None = None
    replicator: Replicator | None = None

    async def start(self, ctx: ActorContext[M]) -> Behavior[M]:
        """Recover the state from the journal and start taking commands (a checkpoint).

        Runs again on every supervised restart, so a restarted entity re-reads its journal.
        """
        state, sequence_nr = await recover(
            self.journal, self.entity_id, self.initial_state, self.on_event
        )
        return Behaviors.receive(_Running(self, state, sequence_nr).receive)


class _Running(Generic[M, S]):
    """The live state of one incarnation of an event-sourced actor."""

    __slots__ = ("_persist_nowait", "_sequence_nr", "_spec", "_stale", "_state")

    def __init__(self, spec: EventSourcedBehavior[M, S], state: S, sequence_nr: int) -> None:
        self._spec = spec
        # A journal that stores without blocking is written to in place: no scheduling round
        # between the command and its replication (or its reply).
        # (A NonBlockingJournal; getattr is what the protocol's isinstance checks, far faster.)
        self._persist_nowait: Callable[[str, Sequence[PersistedEvent]], None] | None = getattr(
            spec.journal, "persist_nowait", None
        )
        self._state = state
        self._sequence_nr = sequence_nr
        # After a failed persist the journal may hold the batch anyway (a timeout after the
        # commit, say), and after on_event failed on a stored batch the state lags behind the
        # journal: if supervision resumes the actor, it re-reads its journal first.
        self._stale = False

    async def receive(self, ctx: ActorContext[M], message: M) -> Behavior[M]:
        if self._stale:
            spec = self._spec
            self._state, self._sequence_nr = await recover(
                spec.journal, spec.entity_id, spec.initial_state, spec.on_event
            )
            self._stale = False
        result = await self._spec.on_command(ctx, self._state, message)
        if isinstance(result, PersistedBehavior):
            return await self._persisted(ctx, result, message)
        return result

    async def _persisted(
        self, ctx: ActorContext[M], effect: PersistedBehavior[M], command: M
    ) -> Behavior[M]:
        spec = self._spec
        if effect.events:
            previous = self._sequence_nr
            now = time.time()
            batch = [
                PersistedEvent(previous + offset, event, now)
                for offset, event in enumerate(effect.events, start=1)
            ]
            try:
                if self._persist_nowait is not None:
                    self._persist_nowait(spec.entity_id, batch)
                else:
                    await spec.journal.persist(spec.entity_id, batch)
            except Exception as exc:
                self._stale = True
                await _report_failure(ctx, effect, exc)
                raise
            # The batch is stored: whatever on_event does, the next event follows it.
            self._sequence_nr = batch[-1].sequence_nr
            state = self._state
            on_event = spec.on_event
            try:
                for persisted in batch:
                    state = on_event(state, persisted.event)
            except Exception as exc:
                # The state no longer matches the journal: the actor fails, and whether it is
                # restarted or resumed, it recovers from the journal before its next command.
                self._stale = True
                await _report_failure(ctx, effect, exc)
                raise
            self._state = state
            replicated = True
            early = None
            if spec.replicator is not None:
                if effect.reply is not None:
                    early = _EarlyReply(effect.reply)
                try:
                    origin = _origin(command)
                    await spec.replicator.replicate(spec.entity_id, batch, early, origin)
                except Exception as exc:
                    replicated = False
                    ctx.log.warning(
                        "entity %s: replication of events %d..%d failed",
                        spec.entity_id,
                        batch[0].sequence_nr,
                        batch[-1].sequence_nr,
                        exc_info=exc,
                    )
                    await _report_failure(ctx, effect, exc)
            if replicated and early is not None:
                await early.finish()
            elif replicated and effect.reply is not None:
                await _call(effect.reply)
            policy = spec.snapshot_policy
            if policy is not None and policy.should_snapshot(previous, self._sequence_nr):
                await self._snapshot(ctx)
        elif effect.reply is not None:
            await _call(effect.reply)
        then = effect.then
        if then is None:
            return Behaviors.same()
        if isinstance(then, PersistedBehavior):
            raise TypeError("the then= behavior of Behaviors.persisted cannot persist again")
        return then

    async def _snapshot(self, ctx: ActorContext[M]) -> None:
        spec = self._spec
        snapshot = Snapshot(self._sequence_nr, self._state, time.time())
        try:
            await spec.journal.save_snapshot(spec.entity_id, snapshot)
        except Exception as exc:
            # The events are stored: a missing snapshot only makes the next recovery longer.
            ctx.log.warning(
                "entity %s: saving a snapshot at %d failed",
                spec.entity_id,
                snapshot.sequence_nr,
                exc_info=exc,
            )


class _EarlyReply:
    """A command's reply that the replicator may run as soon as the events are confirmed,
    from another task; the entity then finishes it (:meth:`finish`): it awaits what the reply
    returned and raises what it raised, as if it had run the reply itself."""

    __slots__ = ("_error", "_ran", "_reply", "_result")

    def __init__(self, reply: Callable[[], object]) -> None:
        self._reply = reply
        self._ran = False
        self._result: object = None
        self._error: Exception | None = None

    def __call__(self) -> None:
        if self._ran:
            return
        self._ran = True
        try:
            self._result = self._reply()
        except Exception as exc:  # re-raised in the entity's task by finish()
            self._error = exc

    async def finish(self) -> None:
        if not self._ran:
            await _call(self._reply)
            return
        error, self._error = self._error, None
        if error is not None:
            raise error
        result, self._result = self._result, None
        if inspect.isawaitable(result):
            await result


def _origin(command: object) -> NodeAddress | None:
    """The node ``command``'s answer goes to: its ``reply_to`` ref's, if it has one."""
    reply_to = getattr(command, "reply_to", None)
    return reply_to.address.node if isinstance(reply_to, ActorRef) else None


async def _call(callback: Callable[..., object], *args: Any) -> None:
    result = callback(*args)
    if inspect.isawaitable(result):
        await result


async def _report_failure(
    ctx: ActorContext[Any], effect: PersistedBehavior[Any], exc: Exception
) -> None:
    if effect.on_failure is None:
        return
    try:
        await _call(effect.on_failure, exc)
    except Exception as callback_exc:
        ctx.log.error("on_failure callback raised", exc_info=callback_exc)
