"""The system's event stream: publish values, subscribe by type."""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import trio

from .._errors import MailboxFullError
from ._events import DeadLetter
from ._ref import ActorAddress, ActorRef

__all__ = ["EventStream"]

E = TypeVar("E")

_log = logging.getLogger("casty_trio.event_stream")


class _ChannelTarget:
    """Feeds a bounded memory channel; drops (and logs) what does not fit."""

    __slots__ = ("_dropped", "_name", "_send")

    def __init__(self, send: trio.MemorySendChannel[Any], name: str) -> None:
        self._send = send
        self._name = name
        self._dropped = 0

    def deliver(self, message: Any) -> None:
        try:
            self._send.send_nowait(message)
        except trio.WouldBlock:
            self._dropped += 1
            if self._dropped == 1 or self._dropped % 1000 == 0:
                _log.warning(
                    "event subscription %s is full; %d events dropped so far",
                    self._name,
                    self._dropped,
                )
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the subscriber left its ``async with``; it no longer wants events

    def add_watcher(self, watcher: Callable[[ActorRef[Any]], None]) -> None:
        pass  # a subscription channel is never "terminated" in the actor sense

    def remove_watcher(self, watcher: Callable[[ActorRef[Any]], None]) -> None:
        pass


class EventStream:
    """Publish/subscribe by event type inside one actor system.

    Subscribing to a class also delivers its subclasses. Publishing is synchronous and cheap
    when nobody listens, and never raises into the publisher: a subscriber that cannot take an
    event (a full mailbox with the ``reject`` policy, say) loses it, which is logged and
    counted. A subscriber is never told the dead letters of messages meant for itself.

    Examples:
        >>> async def watch_dead_letters(system) -> None:    # doctest: +SKIP
        ...     async with system.event_stream.subscription(DeadLetter) as events:
        ...         async for event in events:
        ...             print("undeliverable:", event.message)
    """

    def __init__(self, system_name: str) -> None:
        self._system_name = system_name
        self._subs: dict[type, list[ActorRef[Any]]] = {}
        self._counter = 0
        self._lost = 0  # events a subscriber could not take
        # Events published while a publish is delivering (the dead letters of messages a
        # subscriber's full mailbox dropped): delivered by that outer publish, in turn.
        self._publishing = False
        self._backlog: deque[object] = deque()

    def subscribe(self, event_type: type[E], ref: ActorRef[E]) -> None:
        """Tell every published instance of ``event_type`` (or a subclass) to ``ref``.

        Subscribing the same ref twice to one type has no further effect. Not a checkpoint.
        """
        refs = self._subs.setdefault(event_type, [])
        if ref not in refs:
            refs.append(ref)

    def unsubscribe(self, event_type: type[E], ref: ActorRef[E]) -> None:
        """Stop telling ``event_type`` events to ``ref``. Unknown pairs are ignored."""
        refs = self._subs.get(event_type)
        if refs is not None and ref in refs:
            refs.remove(ref)
            if not refs:
                del self._subs[event_type]

    def unsubscribe_all(self, ref: ActorRef[Any]) -> None:
        """Remove ``ref`` from every subscription (done for actors when they stop)."""
        for event_type in [t for t, refs in self._subs.items() if ref in refs]:
            self.unsubscribe(event_type, ref)

    def has_subscribers(self) -> bool:
        """Whether anyone subscribed to anything (lets hot paths skip building events)."""
        return bool(self._subs)

    def publish(self, event: object) -> None:
        """Deliver ``event`` to the subscribers of its type and of its base classes.

        Not a checkpoint; never blocks and never raises: a subscriber that cannot take the
        event loses it (logged and counted; its mailbox policy makes a dead letter of it).
        """
        if not self._subs:
            return
        if self._publishing:
            # A delivery of the event being published dropped a message: publishing its dead
            # letter here would recurse once per full mailbox met; it waits its turn instead.
            self._backlog.append(event)
            return
        self._publishing = True
        try:
            self._deliver(event)
            backlog = self._backlog
            while backlog:
                self._deliver(backlog.popleft())
        finally:
            self._publishing = False
            self._backlog.clear()

    def _deliver(self, event: object) -> None:
        subs = self._subs
        # A dead letter is never told to the actor it was meant for: that actor is gone, or
        # its mailbox is full and would only drop another of its messages to take it.
        intended = event.intended_ref if isinstance(event, DeadLetter) else None
        for cls in type(event).__mro__:
            refs = subs.get(cls)
            if refs:
                for ref in tuple(refs):
                    if intended is not None and ref == intended:
                        continue
                    try:
                        ref.tell(event)
                    except MailboxFullError:
                        self._count_lost(ref, event, None)
                    except Exception as exc:
                        self._count_lost(ref, event, exc)

    def _count_lost(self, ref: ActorRef[Any], event: object, exc: Exception | None) -> None:
        """Log an event ``ref`` could not take: a full mailbox now and then, anything else
        (an error of the subscriber's ref itself) every time, with its traceback."""
        self._lost += 1
        if exc is not None:
            _log.error(
                "event subscriber %s could not take %r (%d events lost so far)",
                ref.address,
                event,
                self._lost,
                exc_info=exc,
            )
        elif self._lost == 1 or self._lost % 1000 == 0:
            _log.warning(
                "event subscriber %s could not take %r: its mailbox is full "
                "(%d events lost so far)",
                ref.address,
                event,
                self._lost,
            )

    @asynccontextmanager
    async def subscription(
        self, event_type: type[E], *, max_buffer_size: int | float = 1024
    ) -> AsyncIterator[trio.MemoryReceiveChannel[E]]:
        """Receive events of ``event_type`` on a memory channel for the duration of the block.

        The channel holds up to ``max_buffer_size`` events (``math.inf`` for no bound); events
        beyond that are dropped and logged. Entering and leaving are checkpoints.

        Examples:
            >>> async with system.event_stream.subscription(DeadLetter) as ch:  # doctest: +SKIP
            ...     event = await ch.receive()
        """
        if max_buffer_size != math.inf and max_buffer_size < 1:
            raise ValueError("max_buffer_size must be at least 1")
        send, receive = trio.open_memory_channel[E](max_buffer_size)
        self._counter += 1
        name = f"/$subscription/{self._counter}"
        ref: ActorRef[E] = ActorRef(
            ActorAddress(self._system_name, name), _ChannelTarget(send, name)
        )
        self.subscribe(event_type, ref)
        try:
            await trio.lowlevel.checkpoint()
            with receive:
                yield receive
        finally:
            self.unsubscribe(event_type, ref)
            send.close()

    def _dead_letter(self, message: Any, intended: ActorRef[Any]) -> None:
        if type(message) is DeadLetter:
            return  # never re-publish a dead letter that could not be delivered
        _log.debug("dead letter to %s: %r", intended.address, message)
        if self._subs:
            self.publish(DeadLetter(message, intended))
