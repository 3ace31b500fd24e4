"""How a cell applies supervision: decide on a failure, restart (with backoff), or stop.

Functions of a :class:`~casty_trio._core._cell.Cell`, kept apart because they are one concept:
the strategy's directive, the restart window, backoff and the lifecycle hooks around a restart.
They run in the actor's own task, on failure paths only.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

import trio

from ._cell_stopping import stop_children
from ._events import ActorRestarted
from ._supervision import Directive, SupervisionStrategy

if TYPE_CHECKING:
    from ._cell import Cell

__all__ = ["decide", "effective_strategy", "failed", "restart"]


async def failed(cell: Cell, exc: Exception) -> None:
    """A handler, interceptor, pipe job or child failed with ``exc``: apply supervision."""
    directive = decide(cell, exc)
    if directive is Directive.restart:
        await restart(cell, exc)
    elif directive is not Directive.resume:
        cell.request_stop()


def effective_strategy(cell: Cell) -> SupervisionStrategy | None:
    """The behavior's own strategy, else the configured default for this actor."""
    return cell._strategy or cell.system._policies.strategy(cell.path)


def decide(cell: Cell, exc: Exception) -> Directive:
    """Ask the strategy, enforce the restart window, log, and note escalations."""
    strategy = effective_strategy(cell)
    if strategy is None:
        cell.log.error("actor %s failed; stopping it", cell.path, exc_info=exc)
        return Directive.stop
    try:
        directive = strategy.decide(exc)
    except Exception as decide_exc:
        cell.log.error("supervision decider of %s raised", cell.path, exc_info=decide_exc)
        directive = Directive.stop
    if directive is Directive.restart:
        now = trio.current_time()
        times = cell._restart_times
        if times is None:
            times = cell._restart_times = deque()
        while times and times[0] <= now - strategy.within:
            times.popleft()
        if len(times) >= strategy.max_restarts:
            cell.log.error(
                "actor %s failed; %d restarts within %ss exceeded, stopping it",
                cell.path,
                strategy.max_restarts,
                strategy.within,
                exc_info=exc,
            )
            return Directive.stop
        times.append(now)
        cell.log.warning("actor %s failed; restarting it", cell.path, exc_info=exc)
    elif directive is Directive.resume:
        cell.log.warning("actor %s failed; resuming", cell.path, exc_info=exc)
    elif directive is Directive.escalate:
        cell.log.warning("actor %s failed; escalating to its parent", cell.path, exc_info=exc)
        cell._escalation = exc
    else:
        cell.log.error("actor %s failed; stopping it", cell.path, exc_info=exc)
    return directive


async def restart(cell: Cell, exc: Exception | None) -> None:
    """Restart until a setup succeeds, the strategy gives up, or a stop is requested.

    ``exc`` is None for a ``Behaviors.restart()`` asked for by the behavior itself.
    """
    ctx = cell.ctx
    while True:
        try:
            if exc is not None:
                for hook in cell._hooks:
                    if hook.pre_restart is not None:
                        await hook.pre_restart(ctx, exc)
        except Exception as hook_exc:
            cell.log.error("pre_restart hook of %s raised", cell.path, exc_info=hook_exc)
            cell.request_stop()
            return
        await stop_children(cell)
        if cell._timers is not None:
            cell._timers.cancel_all()
        cell._interceptors = None
        cell._handler = None
        strategy = effective_strategy(cell)
        if exc is not None and strategy is not None and strategy.backoff is not None:
            restarts = len(cell._restart_times or ()) or 1
            with trio.CancelScope() as scope:
                cell._wait_scope = scope
                await trio.sleep(strategy.backoff.delay(restarts))
            cell._wait_scope = None
        if cell._stop_requested:
            return
        if cell.system.event_stream.has_subscribers():
            cell.system.event_stream.publish(ActorRestarted(cell.ref, exc))
        hooks_before = cell._hooks
        try:
            handler = await cell._unwrap(cell._initial, run_pre_start=False, reset=True)
        except Exception as setup_exc:
            if decide(cell, setup_exc) is Directive.restart:
                exc = setup_exc
                continue
            cell.request_stop()
            return
        if handler is None:
            cell.request_stop()
            return
        cell._handler = handler
        for hook in cell._hooks or hooks_before:
            if hook.post_restart is not None:
                try:
                    await hook.post_restart(ctx)
                except Exception as hook_exc:
                    cell.log.error("post_restart hook of %s raised", cell.path, exc_info=hook_exc)
                    cell.request_stop()
                    return
        return
