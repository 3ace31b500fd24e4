"""Mailbox lending: many messages appended to an actor's mailbox, one wake-up for all of them.

A caller that hands an actor a stream of messages (a shard region taking a peer's runs of
deliveries) borrows the actor's mailbox deque, appends to it without waking the actor or
checking the bound, and gives it back: only then do the bound and the overflow policy apply,
and the actor is woken once. The cell side is ``Cell.lend_mailbox`` and
``Cell.return_mailbox``; which messages lie over the bound at give-back is decided here,
off the per-message path.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._mailbox import MailboxOverflowStrategy

if TYPE_CHECKING:
    from ._ref import ActorRef

__all__ = ["drop_excess", "mailbox_lending"]


def mailbox_lending(
    ref: ActorRef[Any],
) -> tuple[Callable[[], deque[Any] | None], Callable[[deque[Any]], None]]:
    """``(lend, give_back)`` for the local actor behind ``ref``, to hand it many messages at
    the cost of a deque append each and wake it once for all of them. Sync, not checkpoints.

    ``lend()`` returns the actor's mailbox (None once the actor takes no more messages); the
    caller appends messages to it, in order, without waking the actor, which still takes
    what it finds there if it is running, and then calls ``give_back(box)``, soon: only then
    do the mailbox's bound and overflow policy apply (the newest messages are the ones over
    the bound; ``reject`` and ``drop_new`` both make them dead letters, nothing raises) and
    is the actor woken. Messages appended after the actor terminated become dead letters at
    ``give_back``. Only one lend at a time.

    For a ref that is not a local actor, ``lend()`` gives a new deque and ``give_back`` tells
    each message in turn. Public as :func:`casty_trio.lowlevel.mailbox_lending`.

    Examples:
        >>> lend, give_back = mailbox_lending(ref)  # doctest: +SKIP
        >>> box = lend()  # doctest: +SKIP
        >>> box.extend(messages)  # doctest: +SKIP
        >>> give_back(box)  # doctest: +SKIP
    """
    target = ref._target
    lend = getattr(target, "lend_mailbox", None)
    if lend is not None:  # a local actor's cell
        return lend, target.return_mailbox  # type: ignore[attr-defined]

    def give_back(box: deque[Any]) -> None:
        for message in box:
            ref.tell(message)
        box.clear()

    return deque, give_back


def drop_excess(box: deque[Any], excess: int, overflow: MailboxOverflowStrategy) -> list[Any]:
    """Take ``excess`` messages out of a given-back ``box`` by the ``overflow`` policy: the
    oldest for ``drop_oldest``, else the newest. Returns them in the order they were queued,
    for the cell to make dead letters of."""
    if overflow is MailboxOverflowStrategy.drop_oldest:
        return [box.popleft() for _ in range(excess)]
    dropped = [box.pop() for _ in range(excess)]
    dropped.reverse()
    return dropped
