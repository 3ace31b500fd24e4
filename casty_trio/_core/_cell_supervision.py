"""Supervision decisions: the directive a strategy gives for one failure of one actor.

A pure function of what the decision needs (the strategy, the failure, the actor's restart
history and the time), apart from the cell because it is one concept: the strategy's answer
with its restart window enforced. Acting on the directive (restarting with backoff, stopping,
escalating) is the cell's own business. Runs on failure paths only.
"""

from __future__ import annotations

import logging
from collections import deque

from ._supervision import Directive, SupervisionStrategy

__all__ = ["decide"]


def decide(
    strategy: SupervisionStrategy | None,
    exc: Exception,
    restart_times: deque[float],
    now: float,
    log: logging.Logger,
    path: str,
) -> Directive:
    """The directive for an actor that failed with ``exc``, logged with the failure.

    The strategy's answer, except that a restart over ``max_restarts`` within the strategy's
    window is a stop, as is any failure without a strategy or whose decider raises.

    Args:
        strategy: The actor's strategy in force; None stops the actor.
        exc: The failure.
        restart_times: When the actor restarted, oldest first, on Trio's clock. Updated in
            place: times that left the window are dropped and a restart allowed is added.
        now: The current time on Trio's clock.
        log: The actor's logger; every decision is logged, with ``exc``.
        path: The actor's path, for the log.

    Returns:
        The directive to apply.

    Examples:
        >>> import logging
        >>> from collections import deque
        >>> from casty_trio import OneForOneStrategy
        >>> log = logging.getLogger("doctest")
        >>> log.disabled = True
        >>> times: deque[float] = deque()
        >>> once = OneForOneStrategy(max_restarts=1, within=10.0)
        >>> decide(once, ValueError(), times, 0.0, log, "/a")
        <Directive.restart: 'restart'>
        >>> decide(once, ValueError(), times, 5.0, log, "/a")
        <Directive.stop: 'stop'>
        >>> decide(once, ValueError(), times, 10.0, log, "/a")
        <Directive.restart: 'restart'>
    """
    if strategy is None:
        log.error("actor %s failed; stopping it", path, exc_info=exc)
        return Directive.stop
    try:
        directive = strategy.decide(exc)
    except Exception as decide_exc:
        log.error("supervision decider of %s raised", path, exc_info=decide_exc)
        directive = Directive.stop
    if directive is Directive.restart:
        while restart_times and restart_times[0] <= now - strategy.within:
            restart_times.popleft()
        if len(restart_times) >= strategy.max_restarts:
            log.error(
                "actor %s failed; %d restarts within %ss exceeded, stopping it",
                path,
                strategy.max_restarts,
                strategy.within,
                exc_info=exc,
            )
            return Directive.stop
        restart_times.append(now)
        log.warning("actor %s failed; restarting it", path, exc_info=exc)
    elif directive is Directive.resume:
        log.warning("actor %s failed; resuming", path, exc_info=exc)
    elif directive is Directive.escalate:
        log.warning("actor %s failed; escalating to its parent", path, exc_info=exc)
    else:
        log.error("actor %s failed; stopping it", path, exc_info=exc)
    return directive
