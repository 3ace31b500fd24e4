"""The public ``Behaviors`` factory: the core behaviors plus those of the upper layers.

``casty_trio._core`` cannot know about persistence or sharding, so the factory users
import from :mod:`casty_trio` is this subclass, which adds their behaviors.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from ._core import ActorContext, Behavior
from ._core import Behaviors as _CoreBehaviors
from .persistence import (
    EventJournal,
    EventSourcedBehavior,
    PersistedBehavior,
    SnapshotEvery,
)
from .sharding import ReplicationConfig, ShardedBehavior, sharded

__all__ = ["Behaviors"]

M = TypeVar("M")
S = TypeVar("S")


class Behaviors(_CoreBehaviors):
    """Factories for every behavior. Behaviors are values: build them, pass them, reuse them.

    Examples:
        >>> def counter(n: int = 0) -> Behavior[int]:
        ...     async def receive(ctx: ActorContext[int], delta: int) -> Behavior[int]:
        ...         return counter(n + delta)
        ...     return Behaviors.receive(receive)
    """

    @staticmethod
    def event_sourced(
        *,
        entity_id: str,
        journal: EventJournal,
        initial_state: S,
        on_event: Callable[[S, Any], S],
        on_command: Callable[[ActorContext[M], S, M], Awaitable[Behavior[M]]],
        snapshot_policy: SnapshotEvery | None = None,
        replication: object | None = None,
    ) -> EventSourcedBehavior[M, S]:
        """An actor whose state is rebuilt from ``journal`` and changed only by events.

        When the actor starts, and again on every supervised restart, its state is recovered:
        the latest snapshot (or ``initial_state``), then every later event folded in with
        ``on_event(state, event) -> state``. Each message then goes to
        ``await on_command(ctx, state, msg)``, which returns a behavior: usually
        :meth:`persisted` to record events, or :meth:`same` / :meth:`stopped` /
        :meth:`unhandled`. Returning any other behavior makes the actor continue with it,
        leaving event sourcing behind.

        Messages that arrive while events are being persisted wait in the mailbox: commands
        are handled one at a time, each seeing the state left by the previous one.

        Args:
            entity_id: The entity's id in the journal (one writer per id at a time).
            journal: Where events and snapshots are stored.
            initial_state: The state of a new entity.
            on_event: Applies one event to the state; pure and synchronous, also used during
                recovery (and by replicas), so it must not have side effects.
            on_command: Decides what a message means, given the current state.
            snapshot_policy: Save snapshots, e.g. ``SnapshotEvery(100)``; None for none.
            replication: The cluster layer's replication settings for sharded entities;
                stored on the value and used by sharding. None on a single node.

        Returns:
            A frozen :class:`~casty_trio.persistence.EventSourcedBehavior`.

        Examples:
            >>> import attrs
            >>> @attrs.frozen
            ... class Deposited:
            ...     amount: int
            >>> async def on_command(ctx, balance: int, msg):
            ...     match msg:
            ...         case ("deposit", amount, reply_to):
            ...             return Behaviors.persisted(
            ...                 [Deposited(amount)], reply=lambda: reply_to.tell("ok"))
            ...         case ("balance", reply_to):
            ...             reply_to.tell(balance)
            ...     return Behaviors.same()
            >>> account = Behaviors.event_sourced(
            ...     entity_id="acc-1",
            ...     journal=InMemoryJournal(),
            ...     initial_state=0,
            ...     on_event=lambda balance, event: balance + event.amount,
            ...     on_command=on_command,
            ...     snapshot_policy=SnapshotEvery(100),
            ... )
        """
        return EventSourcedBehavior(
            entity_id=entity_id,
            journal=journal,
            initial_state=initial_state,
            on_event=on_event,
            on_command=on_command,
            snapshot_policy=snapshot_policy,
            replication=replication,
        )

    @staticmethod
    def persisted(
        events: Iterable[Any],
        *,
        then: Behavior[Any] | None = None,
        reply: Callable[[], object] | None = None,
        on_failure: Callable[[Exception], object] | None = None,
    ) -> PersistedBehavior[Any]:
        """Persist ``events``, apply them, then reply: the result of an event-sourced command.

        The events get the entity's next consecutive sequence numbers and are written in one
        journal call (all or none). Then, in this order: each is applied with ``on_event``;
        they are replicated if the entity is a replicated sharded entity; ``reply()`` runs;
        a snapshot is saved if the snapshot policy says so; the actor continues with ``then``
        (None keeps the event-sourced behavior). With no events, ``reply()`` and ``then``
        follow at once.

        Failures: if the journal raises, ``reply`` is not called, ``on_failure(exc)`` is (if
        given) and the actor fails with the journal's exception, so its supervision decides
        (a restart recovers the state from the journal again). If replication raises,
        ``reply`` is not called and ``on_failure(exc)`` is, but the actor keeps running (and
        continues with ``then``): the events stay persisted and applied. A failed snapshot is
        only logged.

        ``reply`` and ``on_failure`` may be plain or async callables.

        Args:
            events: The events to record, in order (msgspec Structs, attrs classes,
                dataclasses or builtins for a durable journal).
            then: The behavior for the next message; None for the same.
            reply: Called once the events are persisted, applied and replicated.
            on_failure: Called with the exception when persisting or replicating failed.

        Returns:
            A frozen :class:`~casty_trio.persistence.PersistedBehavior`, meaningful only as
            the return value of an event-sourced ``on_command``.

        Examples:
            >>> effect = Behaviors.persisted(["opened"], then=Behaviors.stopped())
            >>> effect.events
            ('opened',)
        """
        return PersistedBehavior(events, then, reply, on_failure)

    @staticmethod
    def sharded(
        entity_factory: Callable[[str], Behavior[M]],
        *,
        num_shards: int = 100,
        replication: ReplicationConfig | None = None,
        role: str | None = None,
        passivate_after: float | None = None,
    ) -> ShardedBehavior[M]:
        """Entities spread over a cluster: spawn it on a ``ClusteredActorSystem``.

        ``system.spawn(Behaviors.sharded(factory), name)`` on every node that takes part
        returns a ref taking :class:`~casty_trio.ShardEnvelope` messages: the entity with id
        ``entity_id`` runs ``entity_factory(entity_id)`` on the node that owns its shard
        (``entity_shard(entity_id, num_shards)``), is started by its first message and is
        moved, not duplicated, when shards rebalance. See the Sharding guide.

        Args:
            entity_factory: Builds the behavior of the entity with the given id.
            num_shards: Shards ids are hashed into; the same on every node.
            replication: Replica copies of event-sourced entities.
            role: Only nodes with this role host shards; the others route only.
            passivate_after: Stop entities idle this many seconds (default from
                ``[defaults.sharding] passivate_after``); the next message revives them.

        Raises:
            ValueError: ``num_shards`` below 1, ``passivate_after`` not positive, or
                ``min_acks`` above ``replicas``.

        Examples:
            >>> def account(entity_id: str) -> Behavior[int]:
            ...     return Behaviors.ignore()
            >>> Behaviors.sharded(account, num_shards=10).num_shards
            10
        """
        return sharded(
            entity_factory,
            num_shards=num_shards,
            replication=replication,
            role=role,
            passivate_after=passivate_after,
        )
