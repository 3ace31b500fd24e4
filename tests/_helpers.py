"""Test helpers: small waiting utilities for event-stream subscriptions and task counts.

What actors receive is checked with the public :class:`casty_trio.testing.TestProbe`. Waits
here are ``trio.fail_after`` deadlines (virtual under ``autojump_clock``), never wall-clock
sleeps.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import trio


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
