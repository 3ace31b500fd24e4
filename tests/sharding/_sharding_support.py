"""Messages and entities shared by the sharding tests (module-level so the codec finds them)."""

from __future__ import annotations

from typing import Any

import attrs

from casty_trio import ActorContext, ActorRef, Behavior, Behaviors


@attrs.frozen
class Add:
    amount: int


@attrs.frozen
class Get:
    reply_to: ActorRef[Counted]


@attrs.frozen
class Counted:
    entity_id: str
    value: int
    incarnations: int
    path: str


@attrs.frozen
class Append:
    sender: str
    seq: int


@attrs.frozen
class GetLog:
    reply_to: ActorRef[Log]


@attrs.frozen
class Log:
    entries: list[tuple[str, int]]


class Registry:
    """Counts entity starts per id, to check that one incarnation serves each id."""

    def __init__(self) -> None:
        self.starts: dict[str, int] = {}
        self.live: dict[str, int] = {}
        self.max_live: dict[str, int] = {}


def counter(registry: Registry | None = None) -> Any:
    def factory(entity_id: str) -> Behavior[Any]:
        async def setup(ctx: ActorContext[Any]) -> Behavior[Any]:
            if registry is not None:
                registry.starts[entity_id] = registry.starts.get(entity_id, 0) + 1
                live = registry.live[entity_id] = registry.live.get(entity_id, 0) + 1
                registry.max_live[entity_id] = max(registry.max_live.get(entity_id, 0), live)
            return counting(0)

        def counting(value: int) -> Behavior[Any]:
            async def receive(ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
                if isinstance(msg, Add):
                    return counting(value + msg.amount)
                if isinstance(msg, Get):
                    starts = registry.starts.get(entity_id, 0) if registry else 0
                    msg.reply_to.tell(Counted(entity_id, value, starts, ctx.path))
                return Behaviors.same()

            return Behaviors.receive(receive)

        async def stopped(ctx: ActorContext[Any]) -> None:
            if registry is not None:
                registry.live[entity_id] -= 1

        return Behaviors.with_lifecycle(Behaviors.setup(setup), post_stop=stopped)

    return factory


def appender(deliveries: dict[str, list[tuple[str, int]]]) -> Any:
    """Entities that record every Append they handle in ``deliveries`` (shared by all nodes
    of a simulated cluster, so it spans incarnations and nodes)."""

    def factory(entity_id: str) -> Behavior[Any]:
        async def receive(ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
            if isinstance(msg, Append):
                deliveries.setdefault(entity_id, []).append((msg.sender, msg.seq))
            elif isinstance(msg, GetLog):
                msg.reply_to.tell(Log(list(deliveries.get(entity_id, []))))
            return Behaviors.same()

        return Behaviors.receive(receive)

    return factory


@attrs.frozen
class Deposit:
    amount: int
    reply_to: ActorRef[int]


@attrs.frozen
class Balance:
    reply_to: ActorRef[int]


@attrs.frozen
class Deposited:
    amount: int


def account(journal: Any) -> Any:
    """Event-sourced accounts keeping their history in ``journal`` (shared by every node)."""

    def factory(entity_id: str) -> Behavior[Any]:
        async def on_command(ctx: ActorContext[Any], balance: int, msg: Any) -> Behavior[Any]:
            if isinstance(msg, Deposit):
                reply_to = msg.reply_to
                return Behaviors.persisted(
                    [Deposited(msg.amount)], reply=lambda: reply_to.tell(balance + msg.amount)
                )
            if isinstance(msg, Balance):
                msg.reply_to.tell(balance)
            return Behaviors.same()

        return Behaviors.event_sourced(
            entity_id=entity_id,
            journal=journal,
            initial_state=0,
            on_event=lambda balance, event: balance + event.amount,
            on_command=on_command,
        )

    return factory
