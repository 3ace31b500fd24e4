"""``batch_delivery``: a list of messages queued for an actor at once, one wake-up for all."""

from __future__ import annotations

from typing import Any

import trio
import trio.testing

from casty_trio import (
    ActorContext,
    ActorSystem,
    Behavior,
    Behaviors,
    DeadLetter,
    Mailbox,
    MailboxOverflowStrategy,
)
from casty_trio._core import batch_delivery
from tests._helpers import drain_nowait


def recorder(seen: list[Any]) -> Behavior[Any]:
    async def receive(ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
        seen.append(msg)
        return Behaviors.same()

    return Behaviors.receive(receive)


async def test_a_batch_arrives_whole_and_in_order_behind_earlier_tells(
    system: ActorSystem,
) -> None:
    seen: list[Any] = []
    ref = system.spawn(recorder(seen), "rec")
    ref.tell(0)
    await trio.testing.wait_all_tasks_blocked()  # parked again, its deque given back
    deliver = batch_delivery(ref)
    ref.tell(1)
    deliver([2, 3, 4])
    ref.tell(5)
    await trio.testing.wait_all_tasks_blocked()
    assert seen == [0, 1, 2, 3, 4, 5]
    deliver([])
    await trio.testing.wait_all_tasks_blocked()
    assert seen == [0, 1, 2, 3, 4, 5]


async def test_an_actor_without_a_task_yet_is_started_by_a_batch(system: ActorSystem) -> None:
    seen: list[Any] = []
    ref = system.spawn(recorder(seen), "fresh")
    batch_delivery(ref)(["a", "b"])
    await trio.testing.wait_all_tasks_blocked()
    assert seen == ["a", "b"]


async def test_a_batch_over_a_rejecting_bound_keeps_what_fits(system: ActorSystem) -> None:
    seen: list[Any] = []
    mailbox = Mailbox(capacity=2, overflow=MailboxOverflowStrategy.reject)
    ref = system.spawn(recorder(seen), "bounded", mailbox=mailbox)
    async with system.event_stream.subscription(DeadLetter) as dead_letters:
        batch_delivery(ref)([1, 2, 3, 4])  # no exception: the refused are dead letters
        await trio.testing.wait_all_tasks_blocked()
        assert drain_nowait(dead_letters) == [DeadLetter(3, ref), DeadLetter(4, ref)]
    assert seen == [1, 2]


async def test_a_batch_over_a_drop_oldest_bound_keeps_the_newest(system: ActorSystem) -> None:
    seen: list[Any] = []
    mailbox = Mailbox(capacity=2, overflow=MailboxOverflowStrategy.drop_oldest)
    ref = system.spawn(recorder(seen), "newest", mailbox=mailbox)
    async with system.event_stream.subscription(DeadLetter) as dead_letters:
        batch_delivery(ref)([1, 2, 3, 4])
        await trio.testing.wait_all_tasks_blocked()
        assert drain_nowait(dead_letters) == [DeadLetter(1, ref), DeadLetter(2, ref)]
    assert seen == [3, 4]


async def test_a_batch_that_fits_a_bound_is_taken_whole(system: ActorSystem) -> None:
    seen: list[Any] = []
    mailbox = Mailbox(capacity=3, overflow=MailboxOverflowStrategy.reject)
    ref = system.spawn(recorder(seen), "fits", mailbox=mailbox)
    async with system.event_stream.subscription(DeadLetter) as dead_letters:
        batch_delivery(ref)([1, 2, 3])
        await trio.testing.wait_all_tasks_blocked()
        assert drain_nowait(dead_letters) == []
    assert seen == [1, 2, 3]


async def test_a_batch_to_a_stopped_actor_is_dead_letters(system: ActorSystem) -> None:
    ref = system.spawn(recorder([]), "gone")
    ref.tell("start")
    await trio.testing.wait_all_tasks_blocked()
    system.stop(ref)
    await trio.testing.wait_all_tasks_blocked()
    async with system.event_stream.subscription(DeadLetter) as dead_letters:
        batch_delivery(ref)(["late", "later"])
        await trio.testing.wait_all_tasks_blocked()
        assert drain_nowait(dead_letters) == [DeadLetter("late", ref), DeadLetter("later", ref)]


async def test_a_batch_to_a_ref_that_is_no_cell_is_told_in_turn(system: ActorSystem) -> None:
    seen: list[Any] = []
    target = system.spawn(recorder(seen), "target")

    class Forwarding:
        def deliver(self, message: Any) -> None:
            target.tell(message)

    ref: Any = type(target)(target.address, Forwarding())
    batch_delivery(ref)(["x", "y"])
    await trio.testing.wait_all_tasks_blocked()
    assert seen == ["x", "y"]
