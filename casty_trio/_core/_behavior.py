"""Behaviors are values: what an actor does with its next message.

Every behavior is a small frozen object. The cell (``_cell.py``) interprets them; nothing here
runs on its own. :class:`Behaviors` is the public factory.
"""

from __future__ import annotations

import enum
import itertools
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeAlias, TypeVar

import attrs

if TYPE_CHECKING:
    from ._context import ActorContext
    from ._events import SpyEvent
    from ._ref import ActorRef
    from ._stash import StashBuffer
    from ._supervision import SupervisionStrategy
    from ._timers import TimerScheduler

__all__ = [
    "Behavior",
    "Behaviors",
    "ExtensionBehavior",
    "LifecycleBehavior",
    "ReceiveBehavior",
    "SetupBehavior",
    "SignalBehavior",
    "SpyBehavior",
    "StashBehavior",
    "SupervisedBehavior",
    "TimersBehavior",
]

M = TypeVar("M")
T = TypeVar("T")

Handler: TypeAlias = "Callable[[ActorContext[M], M], Awaitable[Behavior[M]]]"
Factory: TypeAlias = "Callable[[ActorContext[M]], Awaitable[Behavior[M]]]"
Hook: TypeAlias = "Callable[[ActorContext[M]], Awaitable[None]]"


class Behavior(Generic[M]):
    """Base of every behavior: a value describing how an actor handles messages of type ``M``.

    Build behaviors with :class:`Behaviors`; never subclass this yourself.
    """

    __slots__ = ()


@attrs.frozen
class ReceiveBehavior(Behavior[M]):
    """Handle each message with ``handler(ctx, msg)``, which returns the next behavior."""

    handler: Callable[[ActorContext[M], M], Awaitable[Behavior[M]]]


@attrs.frozen
class SetupBehavior(Behavior[M]):
    """Run ``factory(ctx)`` when the actor starts (and on every restart) to get the behavior;
    the factory returns it, or an awaitable of it."""

    factory: Callable[[ActorContext[M]], Behavior[M] | Awaitable[Behavior[M]]]


class Signal(enum.Enum):
    """The special behaviors a handler can return."""

    same = "same"
    stopped = "stopped"
    unhandled = "unhandled"
    restart = "restart"


@attrs.frozen
class SignalBehavior(Behavior[Any]):
    """``same``, ``stopped``, ``unhandled`` or ``restart``."""

    signal: Signal


@attrs.frozen
class SupervisedBehavior(Behavior[M]):
    """Apply ``strategy`` to failures of ``behavior``."""

    behavior: Behavior[M]
    strategy: SupervisionStrategy


@attrs.frozen
class LifecycleBehavior(Behavior[M]):
    """Run lifecycle hooks around ``behavior``."""

    behavior: Behavior[M]
    pre_start: Callable[[ActorContext[M]], Awaitable[None]] | None = None
    post_stop: Callable[[ActorContext[M]], Awaitable[None]] | None = None
    pre_restart: Callable[[ActorContext[M], Exception], Awaitable[None]] | None = None
    post_restart: Callable[[ActorContext[M]], Awaitable[None]] | None = None


@attrs.frozen
class SpyBehavior(Behavior[M]):
    """Tell a :class:`~casty_trio.SpyEvent` to ``observer`` after each handled message."""

    behavior: Behavior[M]
    observer: ActorRef[SpyEvent[M]]
    spy_children: bool = False


@attrs.frozen
class TimersBehavior(Behavior[M]):
    """Give ``factory`` the actor's :class:`~casty_trio.TimerScheduler`."""

    factory: Callable[[ActorContext[M], TimerScheduler[M]], Behavior[M] | Awaitable[Behavior[M]]]


@attrs.frozen
class StashBehavior(Behavior[M]):
    """Give ``factory`` a fresh :class:`~casty_trio.StashBuffer` of ``capacity`` messages."""

    capacity: int
    factory: Callable[[ActorContext[M], StashBuffer[M]], Behavior[M] | Awaitable[Behavior[M]]]


class ExtensionBehavior(Behavior[M]):
    """Base for behaviors defined by upper layers (event sourcing, sharding, ...).

    The cell treats it like a setup: it awaits :meth:`start` and runs the behavior it returns.
    Subclasses are frozen values, so other components can inspect them without running them.

    ``opens_nursery`` says whether the actor should open its nursery before :meth:`start` (as
    for a setup, which usually spawns). Subclasses whose actors rarely spawn, such as entities,
    set it to False: the nursery is then opened the first time the actor needs one.

    Public as :class:`casty_trio.lowlevel.ExtensionBehavior`.

    Examples:
        >>> import attrs
        >>> @attrs.frozen
        ... class Greeting(ExtensionBehavior[str]):
        ...     text: str
        ...     async def start(self, ctx):
        ...         ctx.log.info(self.text)
        ...         return Behaviors.ignore()
        >>> Greeting("hello").text, Greeting.opens_nursery
        ('hello', True)
    """

    __slots__ = ()

    opens_nursery: ClassVar[bool] = True

    async def start(self, ctx: ActorContext[M]) -> Behavior[M]:
        """Turn this value into a running behavior for the actor behind ``ctx``.

        Runs in the actor's task when it starts and again on every supervised restart, like
        a setup's factory; what it raises goes to the actor's supervision.
        """
        raise TypeError(f"{type(self).__name__} does not define start()")


_SAME: SignalBehavior = SignalBehavior(Signal.same)
_STOPPED: SignalBehavior = SignalBehavior(Signal.stopped)
_UNHANDLED: SignalBehavior = SignalBehavior(Signal.unhandled)
_RESTART: SignalBehavior = SignalBehavior(Signal.restart)


async def _ignore_handler(ctx: ActorContext[Any], message: Any) -> Behavior[Any]:
    return _SAME


_IGNORE: ReceiveBehavior[Any] = ReceiveBehavior(_ignore_handler)


class Behaviors:
    """Factories for every behavior. Behaviors are values: build them, pass them, reuse them.

    Examples:
        >>> def counter(n: int = 0) -> Behavior[int]:
        ...     async def receive(ctx: ActorContext[int], delta: int) -> Behavior[int]:
        ...         return counter(n + delta)
        ...     return Behaviors.receive(receive)
    """

    @staticmethod
    def receive(handler: Callable[[ActorContext[M], M], Awaitable[Behavior[M]]]) -> Behavior[M]:
        """Handle each message with ``await handler(ctx, msg)``.

        The handler returns the behavior for the next message: :meth:`same`, a new behavior
        (state lives in closures), :meth:`stopped`, :meth:`unhandled` or :meth:`restart`.

        Examples:
            >>> async def echo(ctx, msg):
            ...     ctx.log.info("got %r", msg)
            ...     return Behaviors.same()
            >>> behavior = Behaviors.receive(echo)
        """
        return ReceiveBehavior(handler)

    @staticmethod
    def setup(
        factory: Callable[[ActorContext[M]], Behavior[M] | Awaitable[Behavior[M]]],
    ) -> Behavior[M]:
        """Build the behavior with ``factory(ctx)`` when the actor starts.

        ``factory`` may be a plain or an async function: what it returns is awaited when it
        is not a behavior itself. It runs in the actor's task, before the first message, and
        again on every restart, so it is the place for per-incarnation state, children and
        timers. Children spawned here start at once. What it raises goes to the actor's
        supervision, like a failure of a handler.

        Examples:
            >>> async def init(ctx):
            ...     worker = ctx.spawn(Behaviors.ignore(), "worker")
            ...     return Behaviors.ignore()
            >>> behavior = Behaviors.setup(init)
            >>> def counting(ctx):  # a plain function works too
            ...     seen = []
            ...     async def receive(ctx, msg):
            ...         seen.append(msg)
            ...         return Behaviors.same()
            ...     return Behaviors.receive(receive)
            >>> behavior = Behaviors.setup(counting)
        """
        return SetupBehavior(factory)

    if TYPE_CHECKING:

        @staticmethod
        def same() -> Behavior[Any]:
            """Keep the current behavior for the next message.

            Examples:
                >>> Behaviors.same() is Behaviors.same()
                True
            """

    else:
        # A C-level callable returning the one ``same`` value, as a plain class attribute (a
        # builtin does not bind, so no ``staticmethod`` wrapper stands between the lookup and
        # the call): nearly every message ends with this call, so it must be cheap.
        same = itertools.repeat(_SAME).__next__

    @staticmethod
    def stopped() -> Behavior[Any]:
        """Stop the actor after this message (children first, then ``post_stop``)."""
        return _STOPPED

    @staticmethod
    def unhandled() -> Behavior[Any]:
        """Keep the behavior and publish an :class:`~casty_trio.UnhandledMessage` event."""
        return _UNHANDLED

    @staticmethod
    def ignore() -> Behavior[Any]:
        """A behavior that drops every message it receives."""
        return _IGNORE

    @staticmethod
    def restart() -> Behavior[Any]:
        """Restart the actor: stop its children, re-run its setup, keep its mailbox."""
        return _RESTART

    @staticmethod
    def supervise(behavior: Behavior[M], strategy: SupervisionStrategy) -> Behavior[M]:
        """Apply ``strategy`` when ``behavior`` (its setup or a handler) raises an exception.

        Without supervision a failure is logged and stops the actor.

        Examples:
            >>> behavior = Behaviors.supervise(
            ...     Behaviors.ignore(), OneForOneStrategy(max_restarts=5, within=10.0))
        """
        return SupervisedBehavior(behavior, strategy)

    @staticmethod
    def with_lifecycle(
        behavior: Behavior[M],
        *,
        pre_start: Callable[[ActorContext[M]], Awaitable[None]] | None = None,
        post_stop: Callable[[ActorContext[M]], Awaitable[None]] | None = None,
        pre_restart: Callable[[ActorContext[M], Exception], Awaitable[None]] | None = None,
        post_restart: Callable[[ActorContext[M]], Awaitable[None]] | None = None,
    ) -> Behavior[M]:
        """Run async hooks at lifecycle points of the actor.

        ``pre_start(ctx)`` runs once before the wrapped behavior's setup. On a supervised restart
        ``pre_restart(ctx, exc)`` runs, children are stopped, setup runs again, then
        ``post_restart(ctx)``. ``post_stop(ctx)`` runs once when the actor stops, after all its
        children have stopped.

        Examples:
            >>> async def bye(ctx):
            ...     ctx.log.info("stopped")
            >>> behavior = Behaviors.with_lifecycle(Behaviors.ignore(), post_stop=bye)
        """
        return LifecycleBehavior(behavior, pre_start, post_stop, pre_restart, post_restart)

    @staticmethod
    def spy(
        behavior: Behavior[M],
        observer: ActorRef[SpyEvent[M]],
        *,
        spy_children: bool = False,
    ) -> Behavior[M]:
        """Tell ``SpyEvent(actor_path, event, timestamp)`` to ``observer`` after each message.

        With ``spy_children=True`` every child (and grandchild) this actor spawns is spied on by
        the same observer.
        """
        return SpyBehavior(behavior, observer, spy_children)

    @staticmethod
    def with_timers(
        factory: Callable[
            [ActorContext[M], TimerScheduler[M]], Behavior[M] | Awaitable[Behavior[M]]
        ],
    ) -> Behavior[M]:
        """Give ``factory(ctx, timers)`` the actor's timer scheduler.

        Timers send messages to the actor itself; they are cancelled on restart and when the
        actor stops. ``factory`` may be a plain or an async function.

        Examples:
            >>> def ticking(ctx, timers):
            ...     timers.start_periodic("tick", "tick", 1.0)
            ...     return Behaviors.ignore()
            >>> behavior = Behaviors.with_timers(ticking)
        """
        return TimersBehavior(factory)

    @staticmethod
    def with_stash(
        capacity: int,
        factory: Callable[[ActorContext[M], StashBuffer[M]], Behavior[M] | Awaitable[Behavior[M]]],
    ) -> Behavior[M]:
        """Give ``factory(ctx, stash)`` a buffer to set messages aside until the actor is ready.

        Examples:
            >>> def waiting(ctx, stash):
            ...     async def receive(ctx, msg):
            ...         if msg == "ready":
            ...             return stash.unstash_all(Behaviors.ignore())
            ...         stash.stash(msg)
            ...         return Behaviors.same()
            ...     return Behaviors.receive(receive)
            >>> behavior = Behaviors.with_stash(100, waiting)
        """
        if capacity < 1:
            raise ValueError(f"stash capacity must be at least 1, got {capacity}")
        return StashBehavior(capacity, factory)
