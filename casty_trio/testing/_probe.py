"""``TestProbe``: an actor that records what it receives, with assertions that wait for it."""

from __future__ import annotations

import itertools
import math
import types
import weakref
from collections.abc import Callable, Sequence
from typing import Any, Self, TypeVar, overload

import attrs
import trio

from .._core import (
    ActorContext,
    ActorRef,
    ActorSystem,
    Behavior,
    Behaviors,
    Mailbox,
    Terminated,
    check_running,
    spawn_system_actor,
)

__all__ = ["TestProbe"]

T = TypeVar("T")

_DEFAULT_WITHIN = 3.0
_PREVIEW = 5  # messages shown in a failure message before "... and N more"
_REPR_LIMIT = 200  # characters of one message's repr in a failure message

# Probe names are numbered per system, so a test sees the same names whatever ran before it.
_probe_numbers: weakref.WeakKeyDictionary[ActorSystem, itertools.count[int]] = (
    weakref.WeakKeyDictionary()
)


@attrs.frozen
class _Watch:
    """Asks the probe actor to watch ``ref`` (handled by the actor, never recorded)."""

    ref: ActorRef[Any]


@attrs.frozen
class _Unwatch:
    """Asks the probe actor to stop watching ``ref`` (handled by the actor, never recorded)."""

    ref: ActorRef[Any]


def _short_repr(message: Any) -> str:
    text = repr(message)
    if len(text) > _REPR_LIMIT:
        text = text[: _REPR_LIMIT - 3] + "..."
    return text


def _preview(messages: Sequence[Any]) -> str:
    shown = ", ".join(_short_repr(message) for message in messages[:_PREVIEW])
    if len(messages) > _PREVIEW:
        shown += f", ... and {len(messages) - _PREVIEW} more"
    return f"[{shown}]"


def _describe(type_or_value: object) -> str:
    """The expected message as a noun phrase: ``message of type Ping``."""
    if type_or_value is None:
        return "message"
    if isinstance(type_or_value, type):
        return f"message of type {type_or_value.__qualname__}"
    if isinstance(type_or_value, types.UnionType):
        return f"message of type {type_or_value}"
    return f"message equal to {_short_repr(type_or_value)}"


def _matches(type_or_value: object, message: Any) -> bool:
    if type_or_value is None:
        return True
    if isinstance(type_or_value, type | types.UnionType):
        return isinstance(message, type_or_value)
    return bool(message == type_or_value)


def _got(message: Any) -> str:
    return f"{_short_repr(message)} ({type(message).__qualname__})"


class TestProbe:
    """A recording actor for tests, in the style of Akka's ``TestProbe``, built on Trio.

    Creating a probe spawns a root actor in ``system`` that records every message it receives,
    in order. Hand :attr:`ref` to the code under test (as a ``reply_to``, a subscriber, a spy
    observer, ...) and assert on what arrives with :meth:`expect_message`,
    :meth:`expect_no_message`, :meth:`receive_messages` and :meth:`fish_for_message`, or take
    everything recorded so far with :meth:`receive_all_nowait`. Each message is consumed by the
    first call that receives it. :meth:`watch` and :meth:`expect_terminated` check that an
    actor stops.

    Without ``name`` the probe is spawned under a reserved name, ``$probe-1``, ``$probe-2``, ...
    (numbered per system), at the path ``/$probe-N``; names starting with ``$`` are reserved,
    so they never collide with your own actors. With ``name`` it is an ordinary root actor at
    ``/<name>``, and the usual naming rules apply. The probe's mailbox is unbounded whatever the
    system's configuration says, so it never drops a message.

    Every waiting method takes ``within``, in seconds: a Trio deadline, never a polling loop.
    Under pytest-trio's ``autojump_clock`` it is virtual time and costs nothing; with the real
    clock it is real time. On the virtual clock, ``trio.current_time()`` just after a waiting
    method returned a message it had to wait for is the moment that message arrived.
    A failed expectation raises ``AssertionError`` naming what was expected and what arrived
    (or that nothing did), like a failed ``assert``. The waiting methods are checkpoints; the
    constructor, :meth:`receive_all_nowait`, :meth:`watch`, :meth:`unwatch` and :meth:`stop`
    are synchronous and are not.

    Use it as a context manager (``with TestProbe(system) as probe:``) to stop it at the end of
    the block, or call :meth:`stop`; either way it stops with its system.

    Args:
        system: A running actor system (a :class:`~casty_trio.remote.RemoteActorSystem` too).
        name: The probe actor's name; by default a reserved ``$probe-N`` name.

    Raises:
        ActorSystemError: ``system`` is not running.
        ValueError: ``name`` is invalid or already taken.

    Examples:
        >>> import trio
        >>> from casty_trio import ActorSystem
        >>> from casty_trio.testing import TestProbe
        >>> async def main() -> str:
        ...     async with ActorSystem(name="demo") as system:
        ...         with TestProbe(system) as probe:
        ...             probe.ref.tell("hello")
        ...             return await probe.expect_message(str)
        >>> trio.run(main)
        'hello'
    """

    __test__ = False  # not a pytest test class, despite its name

    def __init__(self, system: ActorSystem, name: str | None = None) -> None:
        send, receive = trio.open_memory_channel[Any](math.inf)
        self._system = system
        self._send = send
        self._receive = receive
        self._received = 0
        self._watched: set[ActorRef[Any]] = set()
        behavior = Behaviors.with_lifecycle(
            Behaviors.receive(self._on_message), post_stop=self._on_stop
        )
        if name is None:
            check_running(system)
            numbers = _probe_numbers.setdefault(system, itertools.count(1))
            self._ref = spawn_system_actor(system, behavior, f"$probe-{next(numbers)}", Mailbox())
        else:
            self._ref = system.spawn(behavior, name, mailbox=Mailbox())

    # ------------------------------------------------------------------ the actor

    async def _on_message(self, ctx: ActorContext[Any], message: Any) -> Behavior[Any]:
        kind = type(message)
        if kind is _Watch:
            ctx.watch(message.ref)
        elif kind is _Unwatch:
            ctx.unwatch(message.ref)
        else:
            self._received += 1
            self._send.send_nowait(message)
        return Behaviors.same()

    async def _on_stop(self, ctx: ActorContext[Any]) -> None:
        self._send.close()  # receivers drain what was recorded, then see the end

    # ------------------------------------------------------------------ handle

    @property
    def ref(self) -> ActorRef[Any]:
        """The probe actor's reference: give it to the code under test."""
        return self._ref

    @property
    def messages_received(self) -> int:
        """How many messages the probe actor has received so far, consumed or not.

        ``Terminated`` messages from :meth:`watch` count; the probe's own watch requests do not.
        """
        return self._received

    def __repr__(self) -> str:
        return f"TestProbe({self._ref.path})"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop the probe actor, as :meth:`ActorSystem.stop <casty_trio.ActorSystem.stop>` does.

        Not a checkpoint; the actor stops asynchronously. Messages still in its mailbox, and
        those told to it afterwards, become dead letters. Messages it already recorded can
        still be consumed; once they are, the waiting methods fail at once instead of waiting
        out ``within`` (:meth:`expect_no_message` still waits out its window). Calling it
        again, or after the system has shut down, does nothing.
        """
        self._system.stop(self._ref)

    def watch(self, ref: ActorRef[Any]) -> None:
        """Watch ``ref``: the probe receives ``Terminated(ref)`` once that actor stops.

        Not a checkpoint. The probe actor starts watching when it handles the request, which
        is queued behind the messages already told to it; an actor that has stopped by then is
        reported at once, so no stop is missed. Check it with :meth:`expect_terminated`.

        Examples:
            >>> probe.watch(worker)                              # doctest: +SKIP
            >>> system.stop(worker)                              # doctest: +SKIP
            >>> await probe.expect_terminated(worker)            # doctest: +SKIP
        """
        self._watched.add(ref)
        self._ref.tell(_Watch(ref))

    def unwatch(self, ref: ActorRef[Any]) -> None:
        """Stop watching ``ref``.

        Not a checkpoint. Like :meth:`watch`, it takes effect when the probe actor handles the
        request: a ``Terminated(ref)`` that reached the probe before that is still recorded.
        """
        self._watched.discard(ref)
        self._ref.tell(_Unwatch(ref))

    # ------------------------------------------------------------------ expectations

    def _failure(self, text: str, hint: str = "") -> AssertionError:
        return AssertionError(f"{text} (probe {self._ref.path}){hint}")

    async def _next(self, what: str, within: float, hint: str = "") -> Any:
        """The next recorded message; ``what`` describes the expected one for failures."""
        __tracebackhide__ = True
        with trio.move_on_after(within):
            try:
                return await self._receive.receive()
            except trio.EndOfChannel:
                await trio.lowlevel.cancel_shielded_checkpoint()
                raise self._failure(f"no {what}: the probe has stopped", hint) from None
        raise self._failure(f"no {what} within {within} s", hint)

    @overload
    async def expect_message(self, type_or_value: type[T], *, within: float = ...) -> T: ...

    @overload
    async def expect_message(self, type_or_value: object = ..., *, within: float = ...) -> Any: ...

    async def expect_message(
        self, type_or_value: object = None, *, within: float = _DEFAULT_WITHIN
    ) -> Any:
        """Wait for the next message, check it and return it.

        A checkpoint. With a type (a class, or a union like ``int | str``), the message must be
        an instance of it; with any other value, the message must equal it; with ``None``, any
        message will do. The message is consumed whether or not it matches.

        Args:
            type_or_value: What the next message must be.
            within: Seconds to wait for it.

        Returns:
            The message.

        Raises:
            AssertionError: No message arrived within ``within`` seconds, or the next message
                does not match.

        Examples:
            >>> pong = await probe.expect_message(Pong)          # doctest: +SKIP
            >>> await probe.expect_message("done", within=1.0)   # doctest: +SKIP
            'done'
        """
        __tracebackhide__ = True
        what = _describe(type_or_value)
        message = await self._next(what, within)
        if not _matches(type_or_value, message):
            raise self._failure(f"expected a {what}, got {_got(message)}")
        return message

    async def expect_no_message(self, within: float = 0.1) -> None:
        """Assert that no message arrives for ``within`` seconds.

        A checkpoint that always lasts ``within`` seconds unless a message arrives (with
        ``autojump_clock``, virtual seconds). A message already recorded and not consumed
        fails it at once.

        Raises:
            AssertionError: A message arrived; it is named in the error (and consumed).

        Examples:
            >>> await probe.expect_no_message(within=0.5)        # doctest: +SKIP
        """
        __tracebackhide__ = True
        with trio.move_on_after(within):
            try:
                message = await self._receive.receive()
            except trio.EndOfChannel:
                await trio.sleep_forever()  # stopped: nothing can arrive; wait out the window
            raise self._failure(f"expected no message within {within} s, got {_got(message)}")

    async def receive_messages(self, n: int, *, within: float = _DEFAULT_WITHIN) -> list[Any]:
        """Wait for the next ``n`` messages, whatever they are, and return them in order.

        A checkpoint (even for ``n == 0``). ``within`` bounds the wait for all of them.

        Raises:
            AssertionError: Fewer than ``n`` messages arrived within ``within`` seconds; the
                error lists those that did (they are consumed).
            ValueError: ``n`` is negative.

        Examples:
            >>> first, second = await probe.receive_messages(2)  # doctest: +SKIP
        """
        __tracebackhide__ = True
        if n < 0:
            raise ValueError(f"n must be non-negative, not {n}")
        messages: list[Any] = []
        stopped = False
        with trio.move_on_after(within):
            if n == 0:
                await trio.lowlevel.checkpoint()
            try:
                while len(messages) < n:
                    messages.append(await self._receive.receive())
            except trio.EndOfChannel:
                await trio.lowlevel.cancel_shielded_checkpoint()
                stopped = True
        if len(messages) < n:
            if stopped:
                text = f"expected {n} messages, got {len(messages)} before the probe stopped"
            else:
                text = f"expected {n} messages within {within} s, got {len(messages)}"
            raise self._failure(f"{text}: {_preview(messages)}")
        return messages

    def receive_all_nowait(self) -> list[Any]:
        """Return every message recorded and not yet consumed, in order, without waiting.

        Not a checkpoint. The messages are consumed; the list is empty when there are none,
        also once the probe has stopped. Only what the probe actor has already handled counts:
        a message still queued in its mailbox is not there yet, so let the system settle first
        (under ``autojump_clock``, a ``trio.sleep`` does it). Use it to look at everything that
        arrived by some moment when how many is what the test is about.

        Examples:
            >>> await trio.sleep(10.0)                           # doctest: +SKIP
            >>> probe.receive_all_nowait()                       # doctest: +SKIP
            [Tick(), Tick()]
        """
        messages: list[Any] = []
        while True:
            try:
                messages.append(self._receive.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel):
                return messages

    async def fish_for_message(
        self, predicate: Callable[[Any], bool], *, within: float = _DEFAULT_WITHIN
    ) -> Any:
        """Skip messages until one satisfies ``predicate``, and return that one.

        A checkpoint. The skipped messages are consumed; ``within`` bounds the whole search.
        An exception raised by ``predicate`` propagates.

        Raises:
            AssertionError: No message satisfied ``predicate`` within ``within`` seconds; the
                error lists the skipped ones.

        Examples:
            >>> done = await probe.fish_for_message(lambda m: isinstance(m, Done))  # doctest: +SKIP
        """
        __tracebackhide__ = True
        skipped: list[Any] = []
        what = f"message matching {getattr(predicate, '__qualname__', repr(predicate))}"
        with trio.move_on_after(within):
            while True:
                try:
                    message = await self._receive.receive()
                except trio.EndOfChannel:
                    await trio.lowlevel.cancel_shielded_checkpoint()
                    raise self._failure(
                        f"no {what}: the probe has stopped; skipped {_preview(skipped)}"
                    ) from None
                if predicate(message):
                    return message
                skipped.append(message)
        raise self._failure(f"no {what} within {within} s; skipped {_preview(skipped)}")

    async def expect_terminated(
        self, ref: ActorRef[Any], *, within: float = _DEFAULT_WITHIN
    ) -> Terminated:
        """Expect the next message to be ``Terminated(ref)``, after :meth:`watch` of ``ref``.

        A checkpoint. Like :meth:`expect_message`, it checks the *next* message: use
        :meth:`fish_for_message` to skip others first.

        Returns:
            The ``Terminated`` message.

        Raises:
            AssertionError: Nothing arrived within ``within`` seconds, or the next message is
                something else.

        Examples:
            >>> probe.watch(worker)                              # doctest: +SKIP
            >>> worker.tell(Shutdown())                          # doctest: +SKIP
            >>> await probe.expect_terminated(worker)            # doctest: +SKIP
        """
        __tracebackhide__ = True
        what = f"Terminated({ref.path})"
        hint = "" if ref in self._watched else "; the probe does not watch it: call watch() first"
        message = await self._next(what, within, hint)
        if not (isinstance(message, Terminated) and message.ref == ref):
            raise self._failure(f"expected {what}, got {_got(message)}", hint)
        return message
