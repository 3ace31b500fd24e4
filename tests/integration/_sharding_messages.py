"""Messages and the counter entity of the multi-process sharding test, importable under the
same name (``tests.integration._sharding_messages``) in every process."""

from __future__ import annotations

from typing import Any

import attrs

from casty_trio import ActorContext, ActorRef, Behavior, Behaviors


@attrs.frozen
class Add:
    """Add ``amount`` to the counter."""

    amount: int


@attrs.frozen
class Get:
    """Ask the counter for a :class:`Counted`."""

    reply_to: ActorRef[Counted]


@attrs.frozen
class Counted:
    """A counter's state, the node (``host:port``) it runs on and how often it started there."""

    entity_id: str
    value: int
    node: str
    starts: int


def counter_factory(node: str, starts: dict[str, int]) -> Any:
    """Counters that report ``node`` as where they run; ``starts`` counts starts per id."""

    def factory(entity_id: str) -> Behavior[Any]:
        starts[entity_id] = starts.get(entity_id, 0) + 1

        def counting(value: int) -> Behavior[Any]:
            async def receive(ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
                if isinstance(msg, Add):
                    return counting(value + msg.amount)
                if isinstance(msg, Get):
                    msg.reply_to.tell(Counted(entity_id, value, node, starts[entity_id]))
                return Behaviors.same()

            return Behaviors.receive(receive)

        return counting(0)

    return factory
