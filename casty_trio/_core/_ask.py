"""Ask: send a message carrying a one-shot reply reference and wait for the first reply.

No task and no channel per ask: the asking task parks itself and the reply slot reschedules it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import outcome
import trio

from .._errors import AskTimeoutError
from ._ref import ActorAddress, ActorRef

if TYPE_CHECKING:
    from ._event_stream import EventStream

__all__ = ["ask"]

R = TypeVar("R")

_PENDING = 0
_REPLIED = 1
_CLOSED = 2


class _ReplySlot:
    """The target behind an ask's temporary reply ref. Takes one reply; later ones are dead."""

    __slots__ = ("_state", "_stream", "_task", "_value", "_watchers", "ref")

    def __init__(self, address: ActorAddress, stream: EventStream) -> None:
        self._state = _PENDING
        self._task: trio.lowlevel.Task | None = None
        self._value: Any = None
        self._stream = stream
        self._watchers: list[Callable[[ActorRef[Any]], None]] | None = None
        self.ref: ActorRef[Any] = ActorRef(address, self)

    def deliver(self, message: Any) -> None:
        if self._state != _PENDING:
            self._stream._dead_letter(message, self.ref)
            return
        self._state = _REPLIED
        self._value = message
        task = self._task
        if task is not None:
            self._task = None
            trio.lowlevel.reschedule(task, outcome.Value(message))
        self._close()

    def _close(self) -> None:
        watchers, self._watchers = self._watchers, None
        for watcher in watchers or ():
            watcher(self.ref)

    def add_watcher(self, watcher: Callable[[ActorRef[Any]], None]) -> None:
        if self._state != _PENDING:
            watcher(self.ref)
        else:
            if self._watchers is None:
                self._watchers = []
            self._watchers.append(watcher)

    def remove_watcher(self, watcher: Callable[[ActorRef[Any]], None]) -> None:
        if self._watchers is not None and watcher in self._watchers:
            self._watchers.remove(watcher)

    def _abort(self, raise_cancel: Any) -> trio.lowlevel.Abort:
        self._task = None
        self._state = _CLOSED
        self._close()
        return trio.lowlevel.Abort.SUCCEEDED

    async def wait(self) -> Any:
        if self._state == _REPLIED:
            await trio.lowlevel.checkpoint()
            return self._value
        self._task = trio.lowlevel.current_task()
        return await trio.lowlevel.wait_task_rescheduled(self._abort)


async def ask(
    target: ActorRef[Any],
    msg_factory: Callable[[ActorRef[R]], Any],
    address: ActorAddress,
    stream: EventStream,
    timeout: float,
) -> R:
    """Tell ``msg_factory(reply_ref)`` to ``target`` and wait up to ``timeout`` for the reply."""
    slot = _ReplySlot(address, stream)
    target.tell(msg_factory(slot.ref))
    with trio.move_on_after(timeout):
        value: R = await slot.wait()
        return value
    # only our own deadline can leave the block without a value
    raise AskTimeoutError(f"no reply from {target.address} within {timeout}s")
