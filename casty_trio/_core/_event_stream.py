"""The system's event stream: publish values, subscribe by type."""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import trio

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
    when nobody listens.

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

        Not a checkpoint; never blocks.
        """
        subs = self._subs
        if not subs:
            return
        for cls in type(event).__mro__:
            refs = subs.get(cls)
            if refs:
                for ref in tuple(refs):
                    ref.tell(event)

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
