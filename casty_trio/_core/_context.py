"""What a behavior sees of its actor: :class:`ActorContext`."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from .._errors import MailboxFullError
from ._control import _Control

if TYPE_CHECKING:
    from ._behavior import Behavior
    from ._cell import Cell
    from ._mailbox import Mailbox
    from ._ref import ActorRef
    from ._system import ActorSystem

__all__ = ["ActorContext"]

M = TypeVar("M")
C = TypeVar("C")
T = TypeVar("T")


class ActorContext(Generic[M]):
    """The running actor, as seen from its behavior.

    A context is handed to every handler and setup factory. Use it from the actor's own task
    (its handlers, setup and hooks); none of its methods is a checkpoint.

    Examples:
        >>> async def parent(ctx: ActorContext[str]) -> Behavior[str]:
        ...     worker = ctx.spawn(Behaviors.ignore(), "worker")
        ...     ctx.watch(worker)
        ...     ctx.log.info("started %s", worker.path)
        ...     return Behaviors.ignore()
    """

    __slots__ = ("_cell",)

    def __init__(self, cell: Cell) -> None:
        self._cell = cell

    @property
    def self(self) -> ActorRef[M]:
        """This actor's own reference."""
        return self._cell.ref

    @property
    def system(self) -> ActorSystem:
        """The actor system this actor lives in."""
        return self._cell.system

    @property
    def name(self) -> str:
        """The last segment of this actor's path."""
        return self._cell.name

    @property
    def path(self) -> str:
        """This actor's path, such as ``"/parent/child"``."""
        return self._cell.path

    @property
    def parent(self) -> ActorRef[Any] | None:
        """The parent's reference, or ``None`` for a root actor."""
        parent = self._cell.parent
        return parent.ref if parent is not None else None

    @property
    def log(self) -> logging.Logger:
        """A :class:`logging.Logger` named after the system and this actor's path.

        Its parent is the ``casty_trio.actor`` logger, so configuring that one (or
        ``casty_trio``) configures every actor's logger.
        """
        return self._cell.log

    @property
    def children(self) -> tuple[ActorRef[Any], ...]:
        """References of the children that are currently alive."""
        return self._cell.children()

    def child(self, name: str) -> ActorRef[Any] | None:
        """The child called ``name``, or ``None``."""
        cell = self._cell.child(name)
        return cell.ref if cell is not None else None

    def spawn(
        self, behavior: Behavior[C], name: str, *, mailbox: Mailbox[C] | None = None
    ) -> ActorRef[C]:
        """Create a child actor at ``<this path>/<name>`` and return its reference.

        The child runs in this actor's nursery. Spawned from a setup, it starts at once;
        spawned from a ``receive`` handler of an actor without a setup, it starts when the
        handler returns (messages told to it meanwhile wait in its mailbox).

        Raises:
            ValueError: ``name`` is empty, contains ``/``, starts with ``$`` or is taken.
            ActorSystemError: This actor is stopping.
        """
        return self._cell.spawn_child(behavior, name, mailbox)

    def stop(self, ref: ActorRef[Any]) -> None:
        """Stop a child (or this actor itself) after the message being handled.

        The stop is asynchronous: the child's children stop first, then its ``post_stop`` runs,
        then watchers receive :class:`~casty_trio.Terminated`.

        Raises:
            ValueError: ``ref`` is neither a child of this actor nor this actor.
        """
        cell = self._cell
        if ref == cell.ref:
            cell.request_stop()
            return
        child = cell.child(ref.address.path.rsplit("/", 1)[-1])
        if child is None or child.ref != ref:
            raise ValueError(
                f"{ref.path} is not a child of {cell.path}; only children can be stopped"
            )
        child.request_stop()

    def watch(self, ref: ActorRef[Any]) -> None:
        """Receive ``Terminated(ref)`` once the actor behind ``ref`` stops.

        Works for any reference; if that actor is already gone, ``Terminated`` arrives at once.
        """
        self._cell.watch(ref)

    def unwatch(self, ref: ActorRef[Any]) -> None:
        """Stop watching ``ref``; no ``Terminated`` for it arrives afterwards."""
        self._cell.unwatch(ref)

    def pipe_to_self(
        self,
        async_fn: Callable[[], Awaitable[T]],
        map_ok: Callable[[T], M] | None = None,
        map_err: Callable[[Exception], M] | None = None,
    ) -> None:
        """Run ``await async_fn()`` in this actor's nursery and send the outcome to this actor.

        The result arrives as a message (``map_ok(result)`` when given). An exception is turned
        into a message by ``map_err``; without ``map_err`` it fails this actor, and supervision
        decides. The job is cancelled when the actor stops.

        Examples:
            >>> async def fetch() -> int:                  # doctest: +SKIP
            ...     await trio.sleep(1)
            ...     return 42
            >>> ctx.pipe_to_self(fetch, Loaded, LoadFailed)  # doctest: +SKIP
        """
        cell = self._cell

        async def job() -> None:
            try:
                result = await async_fn()
                message: Any = map_ok(result) if map_ok is not None else result
            except Exception as exc:
                if map_err is None:
                    cell.post_control(_Control.PIPE_FAILED, exc)
                    return
                try:
                    message = map_err(exc)
                except Exception as map_exc:
                    cell.post_control(_Control.PIPE_FAILED, map_exc)
                    return
            try:
                cell.deliver(message)
            except MailboxFullError:  # already published as a dead letter
                cell.log.warning("pipe_to_self result for %s was rejected", cell.path)

        cell.start_job(job)

    def register_interceptor(self, predicate: Callable[[Any], bool]) -> None:
        """Offer every incoming message to ``predicate`` first; ``True`` consumes it.

        Interceptors are cleared when the actor restarts.
        """
        cell = self._cell
        if cell._interceptors is None:
            cell._interceptors = []
        cell._interceptors.append(predicate)
        cell._attention = True  # makes the run loop leave its fast path

    def __repr__(self) -> str:
        return f"ActorContext({self._cell.path})"
