"""Test helpers: a probe actor that records what it receives, and small waiting utilities.

Everything here waits with ``trio.fail_after`` (a virtual deadline under ``autojump_clock``) or
``trio.testing.wait_all_tasks_blocked`` — never with wall-clock sleeps.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import trio
import trio.testing

from casty_trio import ActorContext, ActorRef, ActorSystem, Behavior, Behaviors


@attrs.define(eq=False)
class Probe:
    """A recording actor: every message it receives is appended to ``messages``.

    ``times[i]`` is ``trio.current_time()`` when ``messages[i]`` was handled.
    ``receive``/``expect_message`` consume messages in order through a cursor.
    """

    ref: ActorRef[Any] = attrs.field(init=False)
    messages: list[Any] = attrs.field(factory=list)
    times: list[float] = attrs.field(factory=list)
    _cursor: int = 0
    _changed: trio.Event = attrs.field(factory=trio.Event)

    def _record(self, msg: Any) -> None:
        self.messages.append(msg)
        self.times.append(trio.current_time())
        self._changed.set()
        self._changed = trio.Event()

    def behavior(self) -> Behavior[Any]:
        async def receive(ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
            self._record(msg)
            return Behaviors.same()

        return Behaviors.receive(receive)

    async def wait_for_count(self, n: int, within: float = 1.0) -> list[Any]:
        """Wait until at least ``n`` messages were received in total; return all of them.

        The first ``n`` messages count as consumed (``receive`` continues after them).
        """
        with trio.fail_after(within):
            while len(self.messages) < n:
                await self._changed.wait()
        self._cursor = max(self._cursor, n)
        return list(self.messages)

    async def receive(self, within: float = 1.0) -> Any:
        """Return the next message not yet consumed, waiting up to ``within`` seconds."""
        index = self._cursor
        await self.wait_for_count(index + 1, within)
        return self.messages[index]

    async def expect_message(self, cls: type[Any], within: float = 1.0) -> Any:
        msg = await self.receive(within)
        assert isinstance(msg, cls), f"expected a {cls.__name__}, got {msg!r}"
        return msg

    async def receive_matching(self, predicate: Callable[[Any], bool], within: float = 1.0) -> Any:
        """Skip messages until one matches ``predicate``; return it."""
        with trio.fail_after(within):
            while True:
                msg = await self.receive(within=float("inf"))
                if predicate(msg):
                    return msg

    async def expect_no_message(self, within: float | None = None) -> None:
        """Assert that nothing new arrives.

        With ``within``, first sleep that long (only use it under ``autojump_clock``); then wait
        until every task is blocked.
        """
        if within is not None:
            await trio.sleep(within)
        await trio.testing.wait_all_tasks_blocked()
        unexpected = self.messages[self._cursor :]
        assert not unexpected, f"expected no message, got {unexpected!r}"


def spawn_probe(spawner: ActorSystem | ActorContext[Any], name: str = "probe") -> Probe:
    """Spawn a probe actor (as a root actor or as a child of ``ctx``)."""
    probe = Probe()
    probe.ref = spawner.spawn(probe.behavior(), name)
    return probe


async def expect(probe: Probe, n: int, within: float = 1.0) -> list[Any]:
    """Wait until ``probe`` has received ``n`` messages in total; return them all."""
    return await probe.wait_for_count(n, within)


async def receive_matching(
    rx: trio.MemoryReceiveChannel[Any],
    predicate: Callable[[Any], bool],
    within: float = 1.0,
) -> Any:
    """Receive from an event-stream subscription until an item matches ``predicate``."""
    with trio.fail_after(within):
        while True:
            item = await rx.receive()
            if predicate(item):
                return item


def drain_nowait(rx: trio.MemoryReceiveChannel[Any]) -> list[Any]:
    """Everything currently buffered in ``rx``, without waiting."""
    items: list[Any] = []
    while True:
        try:
            items.append(rx.receive_nowait())
        except trio.WouldBlock:
            return items


def count_tasks() -> int:
    """Number of tasks currently alive in this ``trio.run``."""

    def walk(task: trio.lowlevel.Task) -> int:
        return 1 + sum(
            walk(child) for nursery in task.child_nurseries for child in nursery.child_tasks
        )

    return walk(trio.lowlevel.current_root_task())
