"""Interpreting behavior values: peel decorations off down to a receive handler.

Setups run, lifecycle hooks and spies are collected, supervision strategies adopted, timers and
stash buffers handed to their factories. Runs in the actor's own task.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ._behavior import (
    Behavior,
    ExtensionBehavior,
    LifecycleBehavior,
    ReceiveBehavior,
    SetupBehavior,
    Signal,
    SignalBehavior,
    SpyBehavior,
    StashBehavior,
    SupervisedBehavior,
    TimersBehavior,
)
from ._stash import StashBuffer
from ._timers import TimerScheduler

if TYPE_CHECKING:
    from ._cell import Cell
    from ._context import ActorContext

__all__ = ["unwrap", "wants_nursery"]

_Handler = Callable[["ActorContext[Any]", Any], Awaitable[Behavior[Any]]]

_WRAPPERS = (SupervisedBehavior, LifecycleBehavior, SpyBehavior)
_STARTERS = (SetupBehavior, TimersBehavior, StashBehavior)


def wants_nursery(behavior: Behavior[Any]) -> bool:
    """Whether the behavior starts with code that usually spawns (setup, timers, stash)."""
    kind = type(behavior)
    while kind in _WRAPPERS:
        behavior = behavior.behavior  # type: ignore[attr-defined]
        kind = type(behavior)
    return kind in _STARTERS or (isinstance(behavior, ExtensionBehavior) and behavior.opens_nursery)


async def unwrap(
    cell: Cell, behavior: Behavior[Any], *, run_pre_start: bool, reset: bool = False
) -> _Handler | None:
    """Peel decorations off ``behavior`` down to a receive handler (None: stopped).

    Decorations met on the way (strategy, lifecycle hooks, spies) replace the current ones.
    """
    hooks: list[LifecycleBehavior[Any]] = []
    spies: list[SpyBehavior[Any]] = []
    if reset:
        cell._hooks = ()
        cell._spies = ()
        cell._strategy = None
    ctx = cell.ctx
    while True:
        if isinstance(behavior, ReceiveBehavior):
            break
        if isinstance(behavior, SupervisedBehavior):
            cell._strategy = behavior.strategy  # unwrapping goes inwards: innermost wins
            behavior = behavior.behavior
        elif isinstance(behavior, LifecycleBehavior):
            hooks.append(behavior)
            cell._hooks = tuple(hooks)
            if run_pre_start and behavior.pre_start is not None:
                await behavior.pre_start(ctx)
            behavior = behavior.behavior
        elif isinstance(behavior, SpyBehavior):
            spies.append(behavior)
            cell._spies = tuple(spies)
            behavior = behavior.behavior
        elif isinstance(behavior, SetupBehavior):
            # A plain factory returns the behavior, an async one a coroutine: an isinstance
            # check, cheaper than asking whether the result is awaitable, tells them apart.
            started = behavior.factory(ctx)
            behavior = started if isinstance(started, Behavior) else await _maybe_await(started)
        elif isinstance(behavior, TimersBehavior):
            if cell._timers is None:
                cell._timers = TimerScheduler(cell)
            behavior = await _maybe_await(behavior.factory(ctx, cell._timers))
        elif isinstance(behavior, StashBehavior):
            stash: StashBuffer[Any] = StashBuffer(cell, behavior.capacity)
            behavior = await _maybe_await(behavior.factory(ctx, stash))
        elif isinstance(behavior, SignalBehavior):
            if behavior.signal is Signal.stopped:
                cell.request_stop()
                return None
            raise TypeError(
                f"actor {cell.path}: Behaviors.{behavior.signal.value}() cannot be used as "
                "an initial behavior"
            )
        elif isinstance(behavior, ExtensionBehavior):
            behavior = await behavior.start(ctx)
        elif behavior is None:
            raise TypeError(
                f"actor {cell.path}: a handler or setup returned None; return "
                "Behaviors.same() to keep the current behavior"
            )
        else:
            raise TypeError(
                f"actor {cell.path}: expected a Behavior, got {type(behavior).__name__}"
            )
    return behavior.handler


async def _maybe_await(value: Any) -> Any:
    if inspect.isawaitable(value):
        return await value
    return value
