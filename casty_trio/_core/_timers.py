"""Per-actor timers: messages an actor sends itself later, owned by the actor's nursery."""

from __future__ import annotations

from collections.abc import Hashable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import trio

from ._control import _Control

if TYPE_CHECKING:
    from ._cell import Cell

__all__ = ["TimerScheduler"]

M = TypeVar("M")


class _Timer:
    __slots__ = ("deadline", "interval", "key", "message", "scope")

    def __init__(
        self, key: Hashable, message: Any, deadline: float, interval: float | None
    ) -> None:
        self.key = key
        self.message = message
        self.deadline = deadline
        self.interval = interval
        self.scope = trio.CancelScope()


class TimerScheduler(Generic[M]):
    """Schedules messages to the actor itself; obtained through ``Behaviors.with_timers``.

    Each timer has a key; starting a timer with a key in use replaces the old one. Once a timer
    is cancelled or replaced its message is never received, even if it had already fired.
    Timers are cancelled when the actor restarts or stops. None of these calls is a checkpoint.

    Examples:
        >>> def ticking(ctx, timers):
        ...     timers.start_periodic("tick", "tick", interval=1.0)
        ...     async def receive(ctx, msg):
        ...         if msg == "tick":
        ...             ctx.log.info("tick")
        ...         return Behaviors.same()
        ...     return Behaviors.receive(receive)
        >>> behavior = Behaviors.with_timers(ticking)
    """

    __slots__ = ("_cell", "_timers")

    def __init__(self, cell: Cell) -> None:
        self._cell = cell
        self._timers: dict[Hashable, _Timer] = {}

    def start_single(self, key: Hashable, message: M, delay: float) -> None:
        """Send ``message`` to the actor once, ``delay`` seconds from now."""
        self._start(key, message, delay, None)

    def start_periodic(self, key: Hashable, message: M, interval: float) -> None:
        """Send ``message`` to the actor every ``interval`` seconds, first after one interval."""
        if interval <= 0:
            raise ValueError(f"timer interval must be positive, got {interval}")
        self._start(key, message, interval, interval)

    def cancel(self, key: Hashable) -> None:
        """Cancel the timer ``key``; unknown keys are ignored."""
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.scope.cancel()

    def cancel_all(self) -> None:
        """Cancel every timer of this actor."""
        timers, self._timers = self._timers, {}
        for timer in timers.values():
            timer.scope.cancel()

    def is_active(self, key: Hashable) -> bool:
        """Whether timer ``key`` is scheduled (a single timer stays active until received)."""
        return key in self._timers

    def _start(self, key: Hashable, message: M, delay: float, interval: float | None) -> None:
        if delay < 0:
            raise ValueError(f"timer delay must not be negative, got {delay}")
        self.cancel(key)
        timer = _Timer(key, message, trio.current_time() + delay, interval)
        self._timers[key] = timer
        cell = self._cell

        async def run() -> None:
            with timer.scope:
                while True:
                    await trio.sleep_until(timer.deadline)
                    cell.post_control(_Control.TIMER, timer)
                    if timer.interval is None:
                        return
                    timer.deadline += timer.interval

        cell.start_job(run)

    def _accept(self, timer: _Timer) -> bool:
        """Called by the cell when a timer message comes up: is it still current?"""
        if self._timers.get(timer.key) is not timer:
            return False
        if timer.interval is None:
            del self._timers[timer.key]
        return True
