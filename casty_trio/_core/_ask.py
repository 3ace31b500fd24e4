"""Ask: send a message carrying a one-shot reply reference and wait for the first reply.

No task, no channel and no cancel scope per ask: the asking task parks itself and the reply
slot reschedules it, with the reply or, once the ask's deadline passed, with
:class:`~casty_trio.AskTimeoutError`. The deadlines of a system's pending asks are kept by one
task of the system (:class:`AskTimers`): a Trio cancel scope per ask cost about 6 µs of a
local ask's 18 µs.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import outcome
import trio

from .._errors import ActorSystemError, AskTimeoutError
from ._ref import ActorAddress, ActorRef

if TYPE_CHECKING:
    from ._event_stream import EventStream

__all__ = ["AskTimers", "ask"]

R = TypeVar("R")

_PENDING = 0
_REPLIED = 1
_CLOSED = 2


class _ReplySlot:
    """The target behind an ask's temporary reply ref. Takes one reply; later ones are dead."""

    __slots__ = ("_entry", "_state", "_stream", "_task", "_timers", "_value", "_watchers", "ref")

    def __init__(self, address: ActorAddress, stream: EventStream, timers: AskTimers) -> None:
        self._state = _PENDING
        self._task: trio.lowlevel.Task | None = None
        self._value: Any = None
        self._stream = stream
        self._timers = timers
        self._entry: list[Any] | None = None  # its place among the timers' deadlines
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
        self._forget_deadline()
        self._close()

    def expire(self, error: BaseException) -> None:
        """No reply came in time (or the system is closing): wake the asker with ``error``."""
        self._entry = None  # the timers dropped it
        if self._state != _PENDING:
            return
        self._state = _CLOSED
        task = self._task
        if task is not None:
            self._task = None
            trio.lowlevel.reschedule(task, outcome.Error(error))
        self._close()

    def _forget_deadline(self) -> None:
        entry = self._entry
        if entry is not None:
            self._entry = None
            self._timers.discard(entry)

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
        self._forget_deadline()
        self._close()
        return trio.lowlevel.Abort.SUCCEEDED

    async def wait(self, deadline: float, target: ActorAddress, timeout: float) -> Any:
        if self._state == _REPLIED:
            await trio.lowlevel.checkpoint()
            return self._value
        self._entry = self._timers.add(deadline, self, target, timeout)
        self._task = trio.lowlevel.current_task()
        return await trio.lowlevel.wait_task_rescheduled(self._abort)


class AskTimers:
    """The deadlines of one system's pending asks, kept by one task (:meth:`run`).

    A heap of ``[deadline, order, slot, target, timeout]`` entries; an ask answered (or
    cancelled) before its deadline leaves its entry behind with no slot, and the heap is
    rebuilt without such entries once they are over half of it. Sync except :meth:`run`.
    """

    __slots__ = ("_closing", "_dead", "_heap", "_order", "_scope", "_system", "_wakeup")

    def __init__(self, system: str) -> None:
        self._system = system
        self._heap: list[list[Any]] = []
        self._dead = 0  # entries in the heap without a slot
        self._order = itertools.count()  # ties of deadlines: first come, first expired
        self._scope: trio.CancelScope | None = None  # the run task's sleep, until heap[0]
        self._wakeup: trio.Event | None = None  # set when the empty heap gets an entry
        self._closing = False

    def add(
        self, deadline: float, slot: _ReplySlot, target: ActorAddress, timeout: float
    ) -> list[Any]:
        """Wake ``slot``'s asker with :class:`AskTimeoutError` at ``deadline`` (unless the
        slot is answered first); the entry to :meth:`discard` then.

        Raises:
            ActorSystemError: The system is closing (its timer task has ended).
        """
        if self._closing:
            raise self._closed_error()
        entry = [deadline, next(self._order), slot, target, timeout]
        heap = self._heap
        heapq.heappush(heap, entry)
        if heap[0] is entry:  # the new earliest deadline
            scope = self._scope
            if scope is not None:
                scope.deadline = deadline
            wakeup = self._wakeup
            if wakeup is not None:
                self._wakeup = None
                wakeup.set()
        return entry

    def discard(self, entry: list[Any]) -> None:
        """The ask of ``entry`` is over before its deadline."""
        entry[2] = entry[3] = None
        self._dead += 1
        heap = self._heap
        if self._dead > 64 and 2 * self._dead > len(heap):
            heap[:] = [e for e in heap if e[2] is not None]
            heapq.heapify(heap)
            self._dead = 0

    async def run(self) -> None:
        """Expire asks as their deadlines pass, until cancelled (the system closing); then
        wake every ask still waiting with :class:`~casty_trio.ActorSystemError`."""
        heap = self._heap
        try:
            while True:
                if not heap:
                    self._wakeup = wakeup = trio.Event()
                    await wakeup.wait()
                    continue
                with trio.CancelScope(deadline=heap[0][0]) as scope:
                    self._scope = scope
                    await trio.sleep_forever()
                self._scope = None
                now = trio.current_time()
                while heap and heap[0][0] <= now:
                    _, _, slot, target, timeout = heapq.heappop(heap)
                    if slot is None:
                        self._dead -= 1
                    else:
                        slot.expire(AskTimeoutError(f"no reply from {target} within {timeout}s"))
        finally:
            self._closing = True
            self._scope = None
            pending = heap[:]
            heap.clear()
            self._dead = 0
            for entry in pending:
                if entry[2] is not None:
                    entry[2].expire(self._closed_error())

    def _closed_error(self) -> ActorSystemError:
        return ActorSystemError(f"actor system {self._system!r} closed before the reply came")


async def ask(
    target: ActorRef[Any],
    msg_factory: Callable[[ActorRef[R]], Any],
    address: ActorAddress,
    stream: EventStream,
    timeout: float,
    timers: AskTimers,
) -> R:
    """Tell ``msg_factory(reply_ref)`` to ``target`` and wait up to ``timeout`` for the reply.

    Raises:
        AskTimeoutError: No reply within ``timeout`` seconds.
        ActorSystemError: The system closed first.
        ValueError: ``timeout`` is negative or NaN.
    """
    if not timeout >= 0:
        raise ValueError(f"ask timeout must be a non-negative number of seconds, not {timeout!r}")
    deadline = trio.current_time() + timeout
    slot = _ReplySlot(address, stream, timers)
    target.tell(msg_factory(slot.ref))
    value: R = await slot.wait(deadline, target.address, timeout)
    return value
