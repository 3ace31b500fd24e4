"""The actor cell: one actor's mailbox, run loop, children and death watch.

Hot path: ``deliver`` is a length check, a deque append and, when the actor is parked, one
``reschedule``. The run loop drains the mailbox in batches with one coroutine call per message and
a checkpoint every ``_BATCH`` messages for fairness.

Ownership: an actor runs as one task. Its children, timers and ``pipe_to_self`` jobs run in the
actor's own nursery, which is opened lazily the first time the actor needs one (up front when the
behavior starts with a setup, since setups usually spawn). Stopping an actor stops its children
first, runs ``post_stop``, then cancels whatever is left in its nursery.

Supervision is the cell's too: it catches ``Exception`` from the behavior, asks
:func:`._cell_supervision.decide` (a pure function of the strategy, the failure and the
restart history) for a directive, and applies it here. Behavior values are interpreted by
:func:`._unwrap.unwrap`; what lies over the bound when a lent mailbox comes back is picked by
:func:`._cell_lending.drop_excess`.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast

import trio

from .._errors import ActorSystemError, MailboxFullError
from ._behavior import (
    _SAME,
    Behavior,
    LifecycleBehavior,
    ReceiveBehavior,
    Signal,
    SignalBehavior,
    SpyBehavior,
)
from ._cell_lending import drop_excess
from ._cell_supervision import decide
from ._context import ActorContext
from ._control import _Control
from ._events import (
    ActorRestarted,
    ActorStarted,
    ActorStopped,
    SpyEvent,
    Terminated,
    UnhandledMessage,
)
from ._mailbox import Mailbox, MailboxOverflowStrategy
from ._ref import ActorAddress, ActorRef
from ._supervision import Directive, SupervisionStrategy
from ._timers import TimerScheduler, _Timer
from ._unwrap import unwrap, wants_nursery

if TYPE_CHECKING:
    from ._system import ActorSystem

__all__ = ["Cell", "stop_after_queued"]

_BATCH = 512  # messages handled between two fairness checkpoints
_BUDGET = range(_BATCH)
_LAUNCH: Any = object()  # in ``_parked``: the actor has no task yet; the next wake-up starts one
_FINAL_GRACE = 1.0  # seconds post_stop hooks get, shielded, after a forced cancellation
_UNBOUNDED = 1 << 62

# Cell states. Anything but _ALIVE refuses user messages (they become dead letters).
_ALIVE = 0
_STOPPING = 1
_TERMINATED = 2

_Handler = Callable[[ActorContext[Any], Any], Awaitable[Behavior[Any]]]
_Watcher = Callable[[ActorRef[Any]], None]


class Cell:
    """Runtime state of one actor. Internal: user code sees :class:`ActorContext` and refs."""

    # Rarely used state lives in class-level defaults: an instance only stores what differs,
    # which keeps spawning cheap (no per-actor writes for features the actor never uses).
    system: ActorSystem
    parent: Cell | None
    name: str
    path: str
    ref: ActorRef[Any]
    ctx: ActorContext[Any]
    _mailbox: deque[Any] | tuple[()] = ()  # no deque is held while the actor is idle
    _capacity: int = _UNBOUNDED
    # ``len(_mailbox) >= _limit`` sends a tell down the slow path: 0 while no deque is held,
    # the capacity while one is, -1 once the actor stops taking messages.
    _limit: int = 0
    _overflow: MailboxOverflowStrategy = MailboxOverflowStrategy.drop_new
    _lent: bool = False  # the deque is lent (see lend_mailbox): kept while idle
    _state: int = _ALIVE
    # The parked task to wake on a new message; _LAUNCH when the actor has no task yet.
    _parked: trio.lowlevel.Task | None = None
    _attention: bool = False
    _stop_requested: bool = False
    _handler: _Handler | None = None
    _nursery: trio.Nursery | None = None
    _pending: list[Callable[[], Awaitable[None]]] | None = None
    _children: dict[str, Cell] | None = None
    _children_gone: trio.Event | None = None
    _terminated_event: trio.Event | None = None
    _watchers: list[_Watcher] | None = None
    _watching: set[ActorRef[Any]] | None = None
    _strategy: SupervisionStrategy | None = None
    _restart_times: deque[float] | None = None
    _hooks: tuple[LifecycleBehavior[Any], ...] = ()
    _spies: tuple[SpyBehavior[Any], ...] = ()
    _inherited_spies: tuple[ActorRef[Any], ...] = ()
    _interceptors: list[Callable[[Any], bool]] | None = None
    _timers: TimerScheduler[Any] | None = None
    _escalation: Exception | None = None
    _wait_scope: trio.CancelScope | None = None
    _log: logging.Logger | None = None

    def __init__(
        self,
        system: ActorSystem,
        parent: Cell | None,
        name: str,
        behavior: Behavior[Any],
        mailbox: Mailbox[Any] | None,
        inherited_spies: tuple[ActorRef[Any], ...] = (),
    ) -> None:
        self.system = system
        self.parent = parent
        self.name = name
        self.path = path = f"{parent.path}/{name}" if parent is not None else f"/{name}"
        self.ref = ActorRef(ActorAddress(system._name, path, system._node), self)
        self.ctx = ActorContext(self)
        self._initial = behavior
        if mailbox is None:
            policies = system._policies
            mailbox = policies.mailbox(path) if policies.per_actor else policies.default_mailbox
        if mailbox is not None:
            if mailbox.capacity is not None:
                self._capacity = mailbox.capacity
            self._overflow = mailbox.overflow
        if inherited_spies:
            self._inherited_spies = inherited_spies

    # ------------------------------------------------------------------ delivery (sync)

    def deliver(self, message: Any) -> None:
        """Append a message (the body of ``ActorRef.tell``).

        The hot path is one comparison, one append and one wake-up check; everything unusual
        (no deque yet, a full bounded mailbox, a stopped actor) takes ``_deliver_slow``.
        """
        mailbox = self._mailbox
        if len(mailbox) >= self._limit:
            self._deliver_slow(message)
            return
        mailbox.append(message)  # type: ignore[union-attr]
        task = self._parked
        if task is not None:
            self._parked = None
            if task is _LAUNCH:
                self._launch()
            else:
                trio.lowlevel.reschedule(task)

    def _deliver_slow(self, message: Any) -> None:
        if self._state:
            self.system._dead_letter(message, self.ref)
            return
        mailbox = self._mailbox
        if not isinstance(mailbox, deque):
            self._open_mailbox().append(message)
            self._wake()
            return
        overflow = self._overflow
        if overflow is MailboxOverflowStrategy.drop_oldest:
            self.system._dead_letter(mailbox.popleft(), self.ref)
            mailbox.append(message)
            return
        self.system._dead_letter(message, self.ref)
        if overflow is MailboxOverflowStrategy.reject:
            raise MailboxFullError(
                f"mailbox of {self.path} is full ({self._capacity} messages); message rejected"
            )

    def lend_mailbox(self) -> deque[Any] | None:
        """The mailbox itself, for a caller that appends many messages to it without waking
        the actor or checking its bound, until :meth:`return_mailbox` (see
        :func:`~._cell_lending.mailbox_lending`). None once the actor takes no more messages."""
        if self._state:
            return None
        self._lent = True
        return self._open_mailbox()

    def return_mailbox(self, box: deque[Any]) -> None:
        """End a lend: the bound and overflow policy apply to what ``box`` holds now (the
        newest messages are the ones over it), then the actor is woken once for all of it."""
        self._lent = False
        if box is not self._mailbox:
            # Terminated meanwhile (its mailbox dead-lettered): what came later is too.
            for message in box:
                self.system._dead_letter(message, self.ref)
            box.clear()
            return
        excess = len(box) - self._capacity
        if excess > 0 and not self._state:
            for message in drop_excess(box, excess, self._overflow):
                self.system._dead_letter(message, self.ref)
            self.log.debug("mailbox full: %d messages dropped (%s)", excess, self._overflow.value)
        self._wake()

    def _open_mailbox(self) -> deque[Any]:
        mailbox = self._mailbox
        if isinstance(mailbox, deque):
            return mailbox
        mailbox = self._mailbox = deque()
        if not self._state:
            self._limit = self._capacity
        return mailbox

    def post_control(self, kind: int, payload: Any) -> None:
        """Queue an internal message; bypasses the capacity limit, dropped once terminated."""
        if self._state == _TERMINATED:
            return
        self._open_mailbox().append(_Control(kind, payload))
        self._wake()

    def _wake(self) -> None:
        task = self._parked
        if task is not None:
            self._parked = None
            if task is _LAUNCH:
                self._launch()
            else:
                trio.lowlevel.reschedule(task)

    def start(self) -> None:
        """Bring a new actor to life (sync; called right after it is registered).

        An actor whose behavior is a plain ``receive`` needs no setup: it takes messages at once
        but gets its task only when the first message (or a stop request) arrives, so actors
        that are spawned and left idle cost neither a task nor its memory.
        """
        initial = self._initial
        if type(initial) is ReceiveBehavior:
            self._started(initial.handler)
            self._parked = _LAUNCH
        else:
            self._launch()

    def _launch(self) -> None:
        parent = self.parent
        if parent is None:
            self.system._actors.start_soon(self.run)  # type: ignore[union-attr]
        else:
            parent.start_job(self.run)

    def prepend(self, messages: list[Any]) -> None:
        """Put messages at the front of the mailbox, in order (used by unstash)."""
        self._open_mailbox().extendleft(reversed(messages))
        self._wake()

    # ------------------------------------------------------------------ RefTarget: watch

    def add_watcher(self, watcher: _Watcher) -> None:
        if self._state == _TERMINATED:
            watcher(self.ref)
            return
        if self._watchers is None:
            self._watchers = []
        self._watchers.append(watcher)

    def remove_watcher(self, watcher: _Watcher) -> None:
        if self._watchers is not None and watcher in self._watchers:
            self._watchers.remove(watcher)

    def watch(self, ref: ActorRef[Any]) -> None:
        if ref == self.ref:
            return
        if self._watching is None:
            self._watching = set()
        if ref in self._watching:
            return
        self._watching.add(ref)
        ref._target.add_watcher(self._on_watched_terminated)

    def unwatch(self, ref: ActorRef[Any]) -> None:
        if self._watching is not None and ref in self._watching:
            self._watching.discard(ref)
            ref._target.remove_watcher(self._on_watched_terminated)

    def _on_watched_terminated(self, ref: ActorRef[Any]) -> None:
        self.post_control(_Control.TERMINATED, ref)

    # ------------------------------------------------------------------ tasks and children

    def start_job(self, job: Callable[[], Awaitable[None]]) -> None:
        """Run ``job`` in this actor's nursery (opened on demand)."""
        if self._state == _TERMINATED:
            raise ActorSystemError(f"actor {self.path} has stopped; it cannot start tasks")
        if self._nursery is not None:
            self._nursery.start_soon(job)
            return
        if self._pending is None:
            self._pending = []
        self._pending.append(job)
        self._attention = True
        self._wake()

    def spawn_child(
        self, behavior: Behavior[Any], name: str, mailbox: Mailbox[Any] | None
    ) -> ActorRef[Any]:
        if self._state == _TERMINATED:
            raise ActorSystemError(f"actor {self.path} has stopped; it cannot spawn {name!r}")
        self.system._check_name(name)
        if self._children is None:
            self._children = {}
        elif name in self._children:
            raise ValueError(f"actor {self.path} already has a child named {name!r}")
        spies = self._inherited_spies + tuple(s.observer for s in self._spies if s.spy_children)
        child = Cell(self.system, self, name, behavior, mailbox, spies)
        self._children[name] = child
        self.system._register(child)
        child.start()
        if self._stop_requested:
            child.request_stop()  # spawned by a stopping actor (e.g. in its setup): stop it too
        return child.ref

    def children(self) -> tuple[ActorRef[Any], ...]:
        if not self._children:
            return ()
        return tuple(c.ref for c in self._children.values())

    def child(self, name: str) -> Cell | None:
        return self._children.get(name) if self._children else None

    def request_stop(self) -> None:
        """Ask the actor to stop after the message it is handling (sync, idempotent)."""
        if self._stop_requested:
            return
        self._stop_requested = True
        self._attention = True
        if self._state == _ALIVE:
            self._state = _STOPPING
            self._limit = -1
        if self._wait_scope is not None:
            self._wait_scope.cancel()  # cut a restart backoff short
        self._wake()

    @property
    def log(self) -> logging.Logger:
        if self._log is None:
            self._log = self.system._actor_logger(self.path)
        return self._log

    # ------------------------------------------------------------------ the task

    async def run(self) -> None:
        """Body of the actor's task."""
        try:
            if self._handler is None and wants_nursery(self._initial):
                await self._run_in_nursery(started=False)
            else:
                # A plain receive behavior was started by ``start`` already.
                started = self._handler is not None or await self._start()
                if started:
                    await self._serve()
                if self._pending:
                    # a child, timer or job needs a nursery: step into one and carry on there
                    await self._run_in_nursery(started=True)
                else:
                    await self._stop_sequence()
        except BaseException:
            # Cancelled from outside (the system's shutdown grace ran out) or an internal bug.
            # Children are done (they were in our nursery); post_stop still gets a short,
            # shielded chance, then watchers and the parent learn that this actor is gone.
            with trio.CancelScope(shield=True, deadline=trio.current_time() + _FINAL_GRACE):
                await self._run_post_stop()
            self._terminate()
            raise
        self._terminate()

    async def _run_in_nursery(self, *, started: bool) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            pending, self._pending = self._pending, None
            for job in pending or ():
                nursery.start_soon(job)
            if started or await self._start():
                await self._serve()  # in a nursery it only returns once a stop is requested
            await self._stop_sequence()
            nursery.cancel_scope.cancel()
        self._nursery = None

    def _abort_park(self, raise_cancel: Any) -> trio.lowlevel.Abort:
        self._parked = None
        return trio.lowlevel.Abort.SUCCEEDED

    async def _serve(self) -> bool:
        """Handle messages until a stop is requested (True) or a nursery is needed (False).

        The hot loop keeps the handler and the "anything special?" flag in locals; whatever
        changes them (become, restart, interceptors, spies) goes through a slow path that
        refreshes them, or sets ``_attention``. An idle actor holds no deque.
        """
        ctx = self.ctx
        task = trio.lowlevel.current_task()
        while True:
            if self._attention:
                if self._stop_requested:
                    return True
                if self._pending is not None and self._nursery is None:
                    self._attention = False
                    return False
                self._attention = False
            mailbox = self._mailbox
            if not mailbox:
                if isinstance(mailbox, deque) and not self._lent:
                    self._mailbox = ()  # give the deque back while idle
                    self._limit = 0
                del mailbox
                self._parked = task
                await trio.lowlevel.wait_task_rescheduled(self._abort_park)
                continue
            assert isinstance(mailbox, deque)
            await self._drain(mailbox, ctx)

    async def _drain(self, mailbox: deque[Any], ctx: ActorContext[Any]) -> None:
        """Handle queued messages until the mailbox is empty or something needs attention."""
        popleft = mailbox.popleft
        handler = self._handler
        assert handler is not None
        plain = not (self._interceptors or self._spies or self._inherited_spies)
        same = _SAME
        control = _Control
        receive_behavior = ReceiveBehavior
        for _ in _BUDGET:  # the budget counted by the loop itself: no decrement per message
            if not mailbox:
                return
            message = popleft()
            if plain and type(message) is not control:
                try:
                    behavior = await handler(ctx, message)
                except Exception as exc:
                    await self._failed(exc)
                    return
                if behavior is not same:
                    if type(behavior) is receive_behavior:
                        handler = self._handler = behavior.handler
                    else:
                        await self._become(behavior, message)
                        return
            else:
                await self._handle_special(message)
                return
            if self._attention:
                return
        await trio.lowlevel.checkpoint()  # the budget is spent: let other tasks run

    async def _handle_special(self, message: Any) -> None:
        if type(message) is _Control:
            kind = message.kind
            if kind == _Control.TIMER:
                timer = cast(_Timer, message.payload)
                if self._timers is None or not self._timers._accept(timer):
                    return  # cancelled or replaced after it fired
                message = timer.message
            elif kind == _Control.TERMINATED:
                if self._watching is None or message.payload not in self._watching:
                    return  # unwatched meanwhile
                self._watching.discard(message.payload)
                message = Terminated(message.payload)
            elif kind == _Control.STOP:
                self.request_stop()
                return
            else:  # PIPE_FAILED, CHILD_FAILED: this actor fails with that exception
                await self._failed(message.payload)
                return
        if self._interceptors:
            for intercept in tuple(self._interceptors):
                try:
                    consumed = intercept(message)
                except Exception as exc:
                    await self._failed(exc)
                    return
                if consumed:
                    return
        try:
            handler = self._handler
            assert handler is not None
            behavior = await handler(self.ctx, message)
        except Exception as exc:
            await self._failed(exc)
            return
        if behavior is not _SAME:
            await self._become(behavior, message)
        if self._spies or self._inherited_spies:
            self._spy(message)

    def _spy(self, message: Any) -> None:
        event = SpyEvent(self.path, message, trio.current_time())
        for spy in self._spies:
            spy.observer.tell(event)
        for observer in self._inherited_spies:
            observer.tell(event)

    async def _become(self, behavior: Behavior[Any], message: Any) -> None:
        if type(behavior) is ReceiveBehavior:
            self._handler = behavior.handler
            return
        if type(behavior) is SignalBehavior:
            signal = behavior.signal
            if signal is Signal.stopped:
                self.request_stop()
            elif signal is Signal.unhandled:
                self.system.event_stream.publish(UnhandledMessage(message, self.ref))
            elif signal is Signal.restart:
                await self._restart(None)
            return
        try:
            handler = await unwrap(self, behavior, run_pre_start=True)
        except Exception as exc:
            await self._failed(exc)
            return
        if handler is not None:
            self._handler = handler

    # ------------------------------------------------------------------ start

    async def _start(self) -> bool:
        """Run the initial behavior's setup; True once the actor can take messages.

        False means the actor is stopping (setup returned ``stopped`` or failed for good).
        """
        try:
            handler = await unwrap(self, self._initial, run_pre_start=True, reset=True)
        except Exception as exc:
            if self._decide(exc) is Directive.restart:
                await self._restart(exc)
            else:
                self.request_stop()  # resuming a failed setup leaves nothing to resume
            return not self._stop_requested
        if handler is None or self._stop_requested:
            self.request_stop()
            return False
        return self._started(handler)

    def _started(self, handler: _Handler) -> bool:
        self._handler = handler
        stream = self.system.event_stream
        if stream.has_subscribers():
            stream.publish(ActorStarted(self.ref))
        return True

    # ------------------------------------------------------------------ failure handling

    async def _failed(self, exc: Exception) -> None:
        """A handler, interceptor, pipe job or child failed with ``exc``: apply supervision."""
        directive = self._decide(exc)
        if directive is Directive.restart:
            await self._restart(exc)
        elif directive is not Directive.resume:
            self.request_stop()

    def _strategy_in_force(self) -> SupervisionStrategy | None:
        """The behavior's own strategy, else the configured default for this actor."""
        return self._strategy or self.system._policies.strategy(self.path)

    def _decide(self, exc: Exception) -> Directive:
        """The directive for ``exc`` (logged); an escalation is kept for ``_terminate``."""
        times = self._restart_times
        if times is None:
            times = self._restart_times = deque()
        strategy = self._strategy_in_force()
        directive = decide(strategy, exc, times, trio.current_time(), self.log, self.path)
        if directive is Directive.escalate:
            self._escalation = exc
        return directive

    async def _restart(self, exc: Exception | None) -> None:
        """Restart until a setup succeeds, the strategy gives up, or a stop is requested.

        The ``pre_restart`` hooks run, the children stop, timers and interceptors go, the
        strategy's backoff is waited out (a stop request cuts it short), then the initial
        behavior's setup runs again and the ``post_restart`` hooks follow. ``exc`` is None for
        a ``Behaviors.restart()`` asked for by the behavior itself: no ``pre_restart`` hooks
        and no backoff then.
        """
        ctx = self.ctx
        while True:
            try:
                if exc is not None:
                    for hook in self._hooks:
                        if hook.pre_restart is not None:
                            await hook.pre_restart(ctx, exc)
            except Exception as hook_exc:
                self.log.error("pre_restart hook of %s raised", self.path, exc_info=hook_exc)
                self.request_stop()
                return
            await self._stop_children()
            if self._timers is not None:
                self._timers.cancel_all()
            self._interceptors = None
            self._handler = None
            strategy = self._strategy_in_force()
            if exc is not None and strategy is not None and strategy.backoff is not None:
                restarts = len(self._restart_times or ()) or 1
                with trio.CancelScope() as scope:
                    self._wait_scope = scope
                    await trio.sleep(strategy.backoff.delay(restarts))
                self._wait_scope = None
            if self._stop_requested:
                return
            stream = self.system.event_stream
            if stream.has_subscribers():
                stream.publish(ActorRestarted(self.ref, exc))
            hooks_before = self._hooks
            try:
                handler = await unwrap(self, self._initial, run_pre_start=False, reset=True)
            except Exception as setup_exc:
                if self._decide(setup_exc) is Directive.restart:
                    exc = setup_exc
                    continue
                self.request_stop()
                return
            if handler is None:
                self.request_stop()
                return
            self._handler = handler
            for hook in self._hooks or hooks_before:
                if hook.post_restart is not None:
                    try:
                        await hook.post_restart(ctx)
                    except Exception as hook_exc:
                        self.log.error(
                            "post_restart hook of %s raised", self.path, exc_info=hook_exc
                        )
                        self.request_stop()
                        return
            return

    # ------------------------------------------------------------------ stopping

    async def _stop_children(self) -> None:
        """Ask every child to stop and wait until all of them are gone."""
        children = self._children
        if not children:
            return
        for child in tuple(children.values()):
            child.request_stop()
        if children:
            self._children_gone = trio.Event()
            await self._children_gone.wait()
            self._children_gone = None

    async def _stop_sequence(self) -> None:
        """The end of the actor's life: its children stop, then its ``post_stop`` hooks run."""
        self.request_stop()
        await self._stop_children()
        await self._run_post_stop()

    async def _run_post_stop(self) -> None:
        if self._timers is not None:
            self._timers.cancel_all()
        hooks, self._hooks = self._hooks, ()  # at most once, even if cancelled midway
        for hook in hooks:
            if hook.post_stop is not None:
                try:
                    await hook.post_stop(self.ctx)
                except Exception as exc:
                    self.log.error("post_stop hook of %s raised", self.path, exc_info=exc)

    def _terminate(self) -> None:
        """Final bookkeeping once the task is done (also after a hard cancel).

        The mailbox becomes dead letters, the cell's watches are dropped, its watchers, its
        parent and the event stream learn that it is gone, and a failure it stopped on is
        escalated to the parent (to the system, for a root actor).
        """
        if self._state == _TERMINATED:
            return
        self._state = _TERMINATED
        self._limit = -1
        self._stop_requested = True
        system = self.system
        mailbox, self._mailbox = self._mailbox, ()
        for message in mailbox:
            if type(message) is _Control:
                if message.kind in (_Control.PIPE_FAILED, _Control.CHILD_FAILED):
                    self.log.error(
                        "actor %s stopped before handling a failure",
                        self.path,
                        exc_info=message.payload,
                    )
            else:
                system._dead_letter(message, self.ref)
        if self._watching:
            for ref in self._watching:
                ref._target.remove_watcher(self._on_watched_terminated)
            self._watching = None
        for child in tuple(self._children.values()) if self._children else ():
            child._terminate()  # only after a forced cancel: children that never had a task
        parent = self.parent
        siblings = parent._children if parent is not None else None
        if siblings is not None and siblings.get(self.name) is self:
            del siblings[self.name]
            if not siblings and parent is not None and parent._children_gone is not None:
                parent._children_gone.set()
        system._unregister(self)
        watchers, self._watchers = self._watchers, None
        for watcher in watchers or ():
            watcher(self.ref)
        stream = system.event_stream
        if stream.has_subscribers():
            stream.unsubscribe_all(self.ref)
            stream.publish(ActorStopped(self.ref))
        if self._terminated_event is not None:
            self._terminated_event.set()
        escalation = self._escalation
        if escalation is not None:
            if parent is not None:
                parent.post_control(_Control.CHILD_FAILED, escalation)
            else:
                system._root_failed(escalation)


def stop_after_queued(ref: ActorRef[Any]) -> bool:
    """Stop the local actor behind ``ref`` once it handled every message queued before now.

    Unlike :meth:`ActorContext.stop`, which stops an actor after the message it is handling,
    this travels through the mailbox like a poison pill: what was told earlier is handled
    first. Messages told afterwards become dead letters. Sync, not a checkpoint. Public as
    :func:`casty_trio.lowlevel.stop_after_queued`.

    Returns:
        ``False`` when ``ref`` is not a local actor (nothing was done).

    Examples:
        >>> ref.tell("last job")  # doctest: +SKIP
        >>> stop_after_queued(ref)  # doctest: +SKIP
        True
    """
    target = ref._target
    if type(target) is not Cell:
        return False
    target.post_control(_Control.STOP, None)
    return True
