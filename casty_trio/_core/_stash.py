"""Stash buffers: set messages aside until the actor is ready for them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, TypeVar

from .._errors import StashOverflowError

if TYPE_CHECKING:
    from ._behavior import Behavior
    from ._cell import Cell

__all__ = ["StashBuffer"]

M = TypeVar("M")


class StashBuffer(Generic[M]):
    """A bounded buffer of messages the actor will handle later; see ``Behaviors.with_stash``.

    Messages still stashed when the actor restarts or stops are published as dead letters.
    None of its methods is a checkpoint.

    Examples:
        >>> def loading(ctx, stash):
        ...     async def receive(ctx, msg):
        ...         if msg == "loaded":
        ...             return stash.unstash_all(Behaviors.ignore())
        ...         stash.stash(msg)
        ...         return Behaviors.same()
        ...     return Behaviors.receive(receive)
        >>> behavior = Behaviors.with_stash(1000, loading)
    """

    __slots__ = ("_buffer", "_capacity", "_cell")

    def __init__(self, cell: Cell, capacity: int) -> None:
        self._cell = cell
        self._capacity = capacity
        self._buffer: list[Any] = []

    @property
    def capacity(self) -> int:
        """Most messages the buffer holds."""
        return self._capacity

    @property
    def size(self) -> int:
        """Messages currently stashed."""
        return len(self._buffer)

    @property
    def is_empty(self) -> bool:
        """Whether nothing is stashed."""
        return not self._buffer

    @property
    def is_full(self) -> bool:
        """Whether the next :meth:`stash` would overflow."""
        return len(self._buffer) >= self._capacity

    def stash(self, message: M) -> None:
        """Keep ``message`` for later.

        Raises:
            StashOverflowError: The buffer already holds ``capacity`` messages.
        """
        buffer = self._buffer
        if len(buffer) >= self._capacity:
            raise StashOverflowError(
                f"stash of {self._cell.path} is full ({self._capacity} messages)"
            )
        if not buffer:
            self._cell.track_stash(self)
        buffer.append(message)

    def unstash_all(self, behavior: Behavior[M]) -> Behavior[M]:
        """Return ``behavior``; the stashed messages are handled next, in stash order.

        They come before anything already waiting in the mailbox, and the buffer is emptied.
        """
        if self._buffer:
            buffer, self._buffer = self._buffer, []
            self._cell.untrack_stash(self)
            self._cell.prepend(buffer)
        return behavior

    def clear(self) -> None:
        """Drop every stashed message (they are published as dead letters).

        The runtime does this when the actor restarts or stops with messages still stashed.
        """
        buffer, self._buffer = self._buffer, []
        self._cell.untrack_stash(self)
        for message in buffer:
            self._cell.system._dead_letter(message, self._cell.ref)
