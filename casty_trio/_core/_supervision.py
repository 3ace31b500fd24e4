"""Supervision: what happens when a behavior raises.

Strategies are values. The per-actor bookkeeping (how many restarts in the window, how long to
back off) lives in the cell, so one strategy object can supervise any number of actors.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Callable
from typing import Protocol

import attrs

__all__ = ["Backoff", "Directive", "OneForOneStrategy", "SupervisionStrategy"]


class Directive(enum.Enum):
    """What to do with an actor whose behavior raised.

    * ``restart``: stop its children, re-run its setup, keep its mailbox (the failing message
      is dropped).
    * ``resume``: keep the current behavior and state, drop the failing message.
    * ``stop``: stop the actor.
    * ``escalate``: stop the actor and fail its parent with the same exception.
    """

    restart = "restart"
    resume = "resume"
    stop = "stop"
    escalate = "escalate"


@attrs.frozen
class Backoff:
    """Growing delays between consecutive restarts.

    Restart number ``n`` (1-based, counted within the strategy's window) waits
    ``min(max_backoff, min_backoff * multiplier ** (n - 1))`` seconds, stretched by up to
    ``random_factor`` at random, before setup runs again. Messages queue meanwhile.

    Examples:
        >>> Backoff(min_backoff=0.1, max_backoff=1.0).delay(3)
        0.4
    """

    min_backoff: float = 0.1
    max_backoff: float = 10.0
    multiplier: float = 2.0
    random_factor: float = 0.0

    def __attrs_post_init__(self) -> None:
        if self.min_backoff < 0 or self.max_backoff < self.min_backoff:
            raise ValueError("Backoff needs 0 <= min_backoff <= max_backoff")
        if self.multiplier < 1 or self.random_factor < 0:
            raise ValueError("Backoff needs multiplier >= 1 and random_factor >= 0")

    def delay(self, restart_number: int) -> float:
        """Seconds to wait before restart number ``restart_number`` (1-based)."""
        base = min(self.max_backoff, self.min_backoff * self.multiplier ** (restart_number - 1))
        if self.random_factor:
            base *= 1.0 + random.random() * self.random_factor
        return base


class SupervisionStrategy(Protocol):
    """What a supervision strategy provides to the actor cell.

    ``decide`` maps an exception to a :class:`Directive`; when it says ``restart`` the cell
    enforces ``max_restarts`` within ``within`` seconds (going over it stops the actor) and
    waits ``backoff.delay(n)`` before the n-th restart when ``backoff`` is set.
    """

    @property
    def max_restarts(self) -> int: ...

    @property
    def within(self) -> float: ...

    @property
    def backoff(self) -> Backoff | None: ...

    def decide(self, exc: Exception) -> Directive: ...


def _always_restart(exc: Exception) -> Directive:
    return Directive.restart


@attrs.frozen
class OneForOneStrategy:
    """Handle each failing actor on its own: restart it up to a limit, then stop it.

    Args:
        max_restarts: Restarts allowed within ``within`` seconds; one more stops the actor.
        within: Length of the sliding window, in seconds.
        decider: Maps the exception to a :class:`Directive`; by default always ``restart``.
        backoff: Optional :class:`Backoff` between consecutive restarts.

    Examples:
        >>> def decider(exc: Exception) -> Directive:
        ...     return Directive.resume if isinstance(exc, ValueError) else Directive.restart
        >>> strategy = OneForOneStrategy(max_restarts=5, within=30.0, decider=decider)
        >>> strategy.decide(ValueError("bad input"))
        <Directive.resume: 'resume'>
    """

    max_restarts: int = 3
    within: float = 60.0
    decider: Callable[[Exception], Directive] | None = None
    backoff: Backoff | None = None

    def __attrs_post_init__(self) -> None:
        if self.max_restarts < 0 or self.within <= 0:
            raise ValueError("OneForOneStrategy needs max_restarts >= 0 and within > 0")

    def decide(self, exc: Exception) -> Directive:
        """The directive for ``exc``, from ``decider`` (default: ``restart``)."""
        return (self.decider or _always_restart)(exc)
