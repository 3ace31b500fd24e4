"""Values published on the event stream, and the death-watch message."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import attrs

from ._ref import ActorRef

__all__ = [
    "ActorRestarted",
    "ActorStarted",
    "ActorStopped",
    "DeadLetter",
    "SpyEvent",
    "Terminated",
    "UnhandledMessage",
]

M = TypeVar("M")


@attrs.frozen
class Terminated:
    """Sent to every watcher of ``ref`` once that actor has stopped.

    Examples:
        >>> async def receive(ctx, msg):                    # doctest: +SKIP
        ...     match msg:
        ...         case Terminated(ref):
        ...             ctx.log.info("%s is gone", ref.path)
        ...     return Behaviors.same()
    """

    ref: ActorRef[Any]


@attrs.frozen
class ActorStarted:
    """An actor finished its setup and is ready for messages."""

    ref: ActorRef[Any]


@attrs.frozen
class ActorStopped:
    """An actor stopped: its children are gone and its ``post_stop`` hook ran."""

    ref: ActorRef[Any]


@attrs.frozen
class ActorRestarted:
    """An actor was restarted; ``exception`` is what made it restart."""

    ref: ActorRef[Any]
    exception: BaseException | None


@attrs.frozen
class DeadLetter:
    """A message that could not be delivered: receiver stopped, mailbox full, or a late reply."""

    message: Any
    intended_ref: ActorRef[Any]


@attrs.frozen
class UnhandledMessage:
    """A behavior returned ``Behaviors.unhandled()`` for ``message``."""

    message: Any
    ref: ActorRef[Any]


@attrs.frozen
class SpyEvent(Generic[M]):
    """Told to a spy's observer after an actor handled ``event`` (the message)."""

    actor_path: str
    event: M
    timestamp: float
