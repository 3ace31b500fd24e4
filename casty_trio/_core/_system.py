"""ActorSystem: the root of a tree of actors, owning every task it starts."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self, TypeVar

import trio

from .._errors import ActorSystemError
from ..config import CastyConfig, MailboxConfig, SupervisionConfig
from ._ask import ask as _ask
from ._behavior import Behavior
from ._cell import Cell
from ._event_stream import EventStream
from ._mailbox import Mailbox, MailboxOverflowStrategy
from ._ref import ActorAddress, ActorRef, NodeAddress
from ._supervision import Backoff, Directive, OneForOneStrategy, SupervisionStrategy

__all__ = ["ActorSystem"]

M = TypeVar("M")
R = TypeVar("R")

_NEW = "new"
_RUNNING = "running"
_STOPPING = "stopping"
_CLOSED = "closed"

_log = logging.getLogger("casty_trio.system")
_DEFAULT_NAME = "casty-system"

_OVERFLOW = {strategy.value: strategy for strategy in MailboxOverflowStrategy}
_DIRECTIVE = {"restart": Directive.restart, "resume": Directive.resume}


def _mailbox(config: MailboxConfig) -> Mailbox[Any] | None:
    if config.capacity is None and config.strategy == "drop_new":
        return None  # the built-in default; keeps spawning on the fast path
    return Mailbox(config.capacity, _OVERFLOW[config.strategy])


def _strategy(config: SupervisionConfig) -> SupervisionStrategy | None:
    directive = _DIRECTIVE.get(config.strategy)
    if directive is None:
        return None  # "stop": the built-in default
    backoff = None
    if config.backoff_min is not None:
        backoff = Backoff(config.backoff_min, config.backoff_max, config.backoff_multiplier)
    return OneForOneStrategy(config.max_restarts, config.within, lambda exc: directive, backoff)


def _sole_exception(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The one exception nested groups hold, or ``group`` when they hold several."""
    exc: BaseException = group
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return group if isinstance(exc, BaseExceptionGroup) else exc


class _Policies:
    """Mailboxes and fallback supervision derived from the configuration, per actor path."""

    def __init__(self, config: CastyConfig) -> None:
        self._config = config
        self.per_actor = bool(config.actors)
        self.default_mailbox = _mailbox(config.defaults.mailbox)
        self.default_strategy = _strategy(config.defaults.supervision)
        self._strategies: dict[SupervisionConfig, SupervisionStrategy | None] = {}

    def mailbox(self, path: str) -> Mailbox[Any] | None:
        actor = self._config.actor(path) if self.per_actor else None
        if actor is not None and actor.mailbox is not None:
            return _mailbox(actor.mailbox)
        return self.default_mailbox

    def strategy(self, path: str) -> SupervisionStrategy | None:
        actor = self._config.actor(path) if self.per_actor else None
        if actor is None or actor.supervision is None:
            return self.default_strategy
        if actor.supervision not in self._strategies:
            self._strategies[actor.supervision] = _strategy(actor.supervision)
        return self._strategies[actor.supervision]


class _ActorLogger(logging.Logger):
    """A logger that is not registered with :mod:`logging`, so it dies with its actor.

    It skips the level cache, which :mod:`logging` only clears for registered loggers.
    """

    def isEnabledFor(self, level: int) -> bool:
        if self.disabled or self.manager.disable >= level:
            return False
        return level >= self.getEffectiveLevel()


class ActorSystem:
    """A tree of actors inside one ``trio.run``; use it as ``async with``.

    Entering the block starts the system's nursery; every actor, timer and job lives inside it.
    Leaving the block (or :meth:`shutdown`) stops every actor gracefully, children before
    parents, running their ``post_stop`` hooks, and leaves no task behind. A failure that
    escalates out of a root actor cancels the block's body and is raised from the ``async with``
    as is. Several systems can run side by side in one ``trio.run``: nothing is global.

    Args:
        name: The system's name; it appears in every actor address. When left at its default
            and a ``config`` is given, ``config.system.name`` is used.
        config: A :class:`~casty_trio.config.CastyConfig` (see :func:`~casty_trio.load_config`):
            default mailboxes and supervision, per-actor overrides, shutdown grace period.

    Examples:
        >>> async def main() -> None:                           # doctest: +SKIP
        ...     async with ActorSystem(name="bank") as system:
        ...         ref = system.spawn(account(), "acc-1")
        ...         ref.tell(Deposit(10))
        ...         print(await system.ask(ref, GetBalance, timeout=1.0))
        >>> trio.run(main)                                      # doctest: +SKIP
    """

    def __init__(self, name: str = "casty-system", *, config: CastyConfig | None = None) -> None:
        if config is not None and name == _DEFAULT_NAME:
            name = config.system.name
        if not isinstance(name, str) or not name or "/" in name or any(c.isspace() for c in name):
            raise ValueError(f"invalid actor system name {name!r}: use a non-empty word")
        self._name = name
        self._config = config if config is not None else CastyConfig()
        self._policies = _Policies(self._config)
        self._node: NodeAddress | None = None
        self._event_stream = EventStream(name)
        self._cells: dict[str, Cell] = {}
        self._roots: dict[str, Cell] = {}
        self._roots_gone: trio.Event | None = None
        self._state = _NEW
        self._nursery: trio.Nursery | None = None
        self._nursery_manager: Any = None
        self._actors: trio.Nursery | None = None
        self._body_scope: trio.CancelScope | None = None
        self._failure: BaseException | None = None
        self._ask_ids = itertools.count(1)
        self._actors_logger = logging.getLogger(f"casty_trio.actor.{name}")

    # ------------------------------------------------------------------ properties

    @property
    def name(self) -> str:
        """The system's name."""
        return self._name

    @property
    def config(self) -> CastyConfig:
        """The configuration this system runs with (defaults when none was given)."""
        return self._config

    @property
    def event_stream(self) -> EventStream:
        """The system's :class:`EventStream`."""
        return self._event_stream

    def __repr__(self) -> str:
        return f"ActorSystem(name={self._name!r}, state={self._state})"

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Self:
        if self._state != _NEW:
            raise ActorSystemError(
                f"actor system {self._name!r} was already entered; create a new one instead"
            )
        self._state = _RUNNING
        self._nursery_manager = trio.open_nursery()
        self._nursery = await self._nursery_manager.__aenter__()
        try:
            self._actors = await self._nursery.start(self._serve_actors)
            await self._start_services(self._nursery)
        except BaseException:
            self._state = _STOPPING
            self._nursery.cancel_scope.cancel()
            await self._close_nursery()
            raise
        self._body_scope = trio.CancelScope()
        self._body_scope.__enter__()
        return self

    async def _serve_actors(
        self, *, task_status: trio.TaskStatus[trio.Nursery] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Own the nursery root actors run in, so a forced stop cancels actors, not the body."""
        async with trio.open_nursery() as actors:
            task_status.started(actors)
            await trio.sleep_forever()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        assert self._body_scope is not None and self._nursery is not None
        # The body scope absorbs the cancellation we caused for a failed root actor.
        swallowed = bool(self._body_scope.__exit__(exc_type, exc, tb))
        self._body_scope = None
        try:
            await self.shutdown()
            await self._stop_services()
        except BaseException as shutdown_exc:  # cancelled from outside while stopping
            self._nursery.cancel_scope.cancel()
            await self._close_nursery()
            raise shutdown_exc from None
        await self._close_nursery()
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise failure
        return swallowed

    async def _start_services(self, nursery: trio.Nursery) -> None:
        """Hook for layers above: start long-running services in the system's nursery.

        Runs while entering, before the block's body; the base system has none. If it raises,
        entering fails and everything started so far is cancelled.
        """
        await trio.lowlevel.checkpoint()

    async def _stop_services(self) -> None:
        """Hook for layers above: runs after every actor stopped, before the nursery closes.

        The base system has no services; remoting flushes and closes its links here.
        """
        await trio.lowlevel.checkpoint()

    async def _close_nursery(self) -> None:
        nursery, manager = self._nursery, self._nursery_manager
        assert nursery is not None
        nursery.cancel_scope.cancel()
        self._nursery = self._nursery_manager = self._actors = None
        self._state = _CLOSED
        try:
            await manager.__aexit__(None, None, None)
        except BaseExceptionGroup as group:
            # An actor's task raised past its cell (a BaseException such as KeyboardInterrupt:
            # cells catch Exception only): it leaves the block as itself, not wrapped in the
            # groups of the system's internal nurseries.
            sole = _sole_exception(group)
            if sole is group:
                raise
            raise sole from None

    async def shutdown(self, *, timeout: float | None = None) -> None:
        """Stop every actor and refuse new work.

        Every actor is asked to stop: children stop before their parents and ``post_stop``
        hooks run. Actors still running after ``timeout`` seconds (say, a handler that never
        returns) are cancelled; their ``post_stop`` hooks then get one more shielded second.
        Idempotent. A checkpoint.

        Awaited by an actor of this system (in a handler, a hook, a timer or a
        ``pipe_to_self`` job), it asks every actor to stop and returns without waiting: that
        actor cannot stop while it waits. Leaving the ``async with`` block then waits for
        the stop, with the grace period.

        Args:
            timeout: Grace period for the graceful stop, in seconds; by default
                ``config.system.shutdown_timeout`` (10 s).
        """
        if timeout is None:
            timeout = self._config.system.shutdown_timeout
        if self._state in (_NEW, _CLOSED):
            await trio.lowlevel.checkpoint()
            return
        self._state = _STOPPING
        for cell in tuple(self._roots.values()):
            cell.request_stop()
        if not self._roots or self._inside_actors():
            await trio.lowlevel.checkpoint()
            return
        if self._roots_gone is None:
            self._roots_gone = trio.Event()
        with trio.move_on_after(timeout) as scope:
            await self._roots_gone.wait()
        if scope.cancelled_caught and self._actors is not None:
            _log.warning(
                "actor system %s: %d actors still running %ss after shutdown began; cancelling",
                self._name,
                len(self._cells),
                timeout,
            )
            self._actors.cancel_scope.cancel()
            await self._roots_gone.wait()

    def _inside_actors(self) -> bool:
        """Whether the current task is one of this system's actors (or runs in one's nursery)."""
        actors = self._actors
        task = trio.lowlevel.current_task()
        while actors is not None:
            nursery = task.parent_nursery
            if nursery is None:
                return False
            if nursery is actors:
                return True
            task = nursery.parent_task
        return False

    def _root_failed(self, exc: Exception) -> None:
        if self._failure is None:
            self._failure = exc
        _log.error("actor system %s fails: a root actor escalated %r", self._name, exc)
        if self._body_scope is not None:
            self._body_scope.cancel()

    # ------------------------------------------------------------------ actors

    def spawn(
        self, behavior: Behavior[M], name: str, *, mailbox: Mailbox[M] | None = None
    ) -> ActorRef[M]:
        """Start a root actor at ``/<name>`` and return its reference.

        Synchronous and not a checkpoint: the actor's task starts at the next scheduling point,
        and messages told before that wait in its mailbox.

        Raises:
            ValueError: ``name`` is empty, contains ``/``, starts with ``$`` or is taken.
            ActorSystemError: The system is not running.

        Examples:
            >>> ref = system.spawn(Behaviors.ignore(), "sink")   # doctest: +SKIP
        """
        if self._state is not _RUNNING:
            self._check_running()
        if not name or "/" in name or name[0] == "$" or name in self._roots:
            self._check_name(name)
            raise ValueError(f"a root actor named {name!r} already exists")
        return self._spawn_root(behavior, name, mailbox)

    def _spawn_root(
        self, behavior: Behavior[Any], name: str, mailbox: Mailbox[Any] | None
    ) -> ActorRef[Any]:
        """Spawn a root actor without checking the name (layers above use reserved names)."""
        cell = Cell(self, None, name, behavior, mailbox)
        self._roots[name] = self._cells[cell.path] = cell
        cell.start()
        return cell.ref

    def stop(self, ref: ActorRef[Any]) -> None:
        """Ask the local actor behind ``ref`` to stop; unknown or stopped actors are ignored.

        Not a checkpoint. The actor stops asynchronously (children first, then ``post_stop``).
        """
        cell = self._cells.get(ref.path)
        if cell is not None and cell.ref == ref:
            cell.request_stop()

    def lookup(self, path: str) -> ActorRef[Any] | None:
        """The reference of the live local actor at ``path`` (like ``"/a/b"``), or ``None``."""
        if not path.startswith("/"):
            path = "/" + path
        cell = self._cells.get(path.rstrip("/"))
        return cell.ref if cell is not None else None

    async def ask(
        self,
        ref: ActorRef[M],
        msg_factory: Callable[[ActorRef[R]], M],
        *,
        timeout: float,
    ) -> R:
        """Send ``msg_factory(reply_ref)`` to ``ref`` and return the first reply.

        A checkpoint. Costs no task: the caller parks until the reply slot wakes it. Replies
        after the first one, or after the timeout, are published as dead letters.

        Raises:
            AskTimeoutError: No reply within ``timeout`` seconds (also a ``TimeoutError``).
            ActorSystemError: The system is not running.

        Examples:
            >>> await system.ask(ref, lambda r: GetBalance(r), timeout=1.0)  # doctest: +SKIP
            42
        """
        self._check_running()
        address = ActorAddress(self._name, f"/$ask/{next(self._ask_ids)}", self._node)
        return await _ask(ref, msg_factory, address, self._event_stream, timeout)

    async def ask_or_none(
        self,
        ref: ActorRef[M],
        msg_factory: Callable[[ActorRef[R]], M],
        *,
        timeout: float,
    ) -> R | None:
        """Like :meth:`ask`, but returns ``None`` when no reply arrives in time."""
        try:
            return await self.ask(ref, msg_factory, timeout=timeout)
        except TimeoutError:
            return None

    # ------------------------------------------------------------------ internals for cells

    def _check_running(self) -> None:
        if self._state != _RUNNING:
            state = {_NEW: "has not been entered yet", _STOPPING: "is shutting down"}.get(
                self._state, "has shut down"
            )
            raise ActorSystemError(f"actor system {self._name!r} {state}")

    @staticmethod
    def _check_name(name: str) -> None:
        if not isinstance(name, str) or not name or "/" in name or name.startswith("$"):
            raise ValueError(
                f"invalid actor name {name!r}: it must be non-empty, without '/', "
                "and not start with '$'"
            )

    def _register(self, cell: Cell) -> None:
        self._cells[cell.path] = cell

    def _unregister(self, cell: Cell) -> None:
        if self._cells.get(cell.path) is cell:
            del self._cells[cell.path]
        if cell.parent is None and self._roots.get(cell.name) is cell:
            del self._roots[cell.name]
            if not self._roots and self._roots_gone is not None:
                self._roots_gone.set()

    def _dead_letter(self, message: Any, intended: ActorRef[Any]) -> None:
        self._event_stream._dead_letter(message, intended)

    def _actor_logger(self, path: str) -> logging.Logger:
        logger = _ActorLogger(f"{self._actors_logger.name}{path}")
        logger.parent = self._actors_logger
        return logger
