"""Mailbox configuration: how many messages an actor may hold and what happens beyond that."""

from __future__ import annotations

import enum
from typing import Generic, TypeVar

import attrs

__all__ = ["Mailbox", "MailboxOverflowStrategy"]

M = TypeVar("M")


class MailboxOverflowStrategy(enum.Enum):
    """What a full bounded mailbox does with one more message.

    Every message dropped is published as a :class:`~casty_trio.DeadLetter`.

    * ``drop_new``: drop the incoming message.
    * ``drop_oldest``: drop the oldest queued message and accept the new one.
    * ``reject``: drop the incoming message and raise :class:`~casty_trio.MailboxFullError`
      from the ``tell`` that sent it.
    """

    drop_new = "drop_new"
    drop_oldest = "drop_oldest"
    reject = "reject"


@attrs.frozen
class Mailbox(Generic[M]):
    """Mailbox settings for one actor, passed to ``spawn(..., mailbox=...)``.

    Args:
        capacity: Most messages queued at once; ``None`` means unbounded.
        overflow: What to do when a bounded mailbox is full.

    Examples:
        >>> Mailbox(capacity=1000, overflow=MailboxOverflowStrategy.drop_oldest)
        Mailbox(capacity=1000, overflow=<MailboxOverflowStrategy.drop_oldest: 'drop_oldest'>)
    """

    capacity: int | None = None
    overflow: MailboxOverflowStrategy = MailboxOverflowStrategy.drop_new

    def __attrs_post_init__(self) -> None:
        if self.capacity is not None and self.capacity < 1:
            raise ValueError(f"mailbox capacity must be at least 1 or None, got {self.capacity}")
