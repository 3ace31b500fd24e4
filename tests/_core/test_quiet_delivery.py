"""``quiet_delivery``: many messages queued for an actor, one wake-up for all of them."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

from casty_trio import (
    ActorContext,
    ActorSystem,
    Behavior,
    Behaviors,
    DeadLetter,
    Mailbox,
    MailboxFullError,
    MailboxOverflowStrategy,
)
from casty_trio._core import quiet_delivery
from tests._helpers import drain_nowait, receive_matching


def recorder(seen: list[Any]) -> Behavior[Any]:
    async def receive(ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
        seen.append(msg)
        return Behaviors.same()

    return Behaviors.receive(receive)


async def test_a_parked_actor_sees_quiet_messages_only_once_woken(system: ActorSystem) -> None:
    seen: list[Any] = []
    ref = system.spawn(recorder(seen), "rec")
    ref.tell(0)
    await trio.testing.wait_all_tasks_blocked()
    deliver, wake = quiet_delivery(ref)
    assert [deliver(i) for i in (1, 2, 3)] == [True, True, True]  # parked: a wake is owed
    await trio.testing.wait_all_tasks_blocked()
    assert seen == [0]
    ref.tell(4)  # an ordinary tell wakes it: everything queued, in order
    await trio.testing.wait_all_tasks_blocked()
    assert seen == [0, 1, 2, 3, 4]
    assert deliver(5)
    wake()
    wake()  # an extra wake-up is harmless
    await trio.testing.wait_all_tasks_blocked()
    assert seen == [0, 1, 2, 3, 4, 5]


async def test_an_actor_without_a_task_yet_is_started_by_the_wake(system: ActorSystem) -> None:
    seen: list[Any] = []
    ref = system.spawn(recorder(seen), "fresh")
    deliver, wake = quiet_delivery(ref)
    assert deliver("a") and deliver("b")
    await trio.testing.wait_all_tasks_blocked()
    assert seen == []
    wake()
    await trio.testing.wait_all_tasks_blocked()
    assert seen == ["a", "b"]


async def test_quiet_delivery_keeps_the_overflow_policy(system: ActorSystem) -> None:
    seen: list[Any] = []
    mailbox = Mailbox(capacity=2, overflow=MailboxOverflowStrategy.reject)
    ref = system.spawn(recorder(seen), "bounded", mailbox=mailbox)
    deliver, wake = quiet_delivery(ref)
    async with system.event_stream.subscription(DeadLetter) as dead_letters:
        deliver(1)
        deliver(2)
        with pytest.raises(MailboxFullError):
            deliver(3)
        letter = await receive_matching(dead_letters, lambda d: True)
        wake()
        await trio.testing.wait_all_tasks_blocked()
        assert drain_nowait(dead_letters) == []
    assert letter == DeadLetter(3, ref)
    assert seen == [1, 2]


async def test_quiet_delivery_to_a_stopped_actor_is_a_dead_letter(system: ActorSystem) -> None:
    ref = system.spawn(recorder([]), "gone")
    ref.tell("start")
    await trio.testing.wait_all_tasks_blocked()
    system.stop(ref)
    await trio.testing.wait_all_tasks_blocked()
    deliver, wake = quiet_delivery(ref)
    async with system.event_stream.subscription(DeadLetter) as dead_letters:
        assert not deliver("late")
        wake()
        assert await receive_matching(dead_letters, lambda d: True) == DeadLetter("late", ref)


async def test_quiet_delivery_to_a_ref_that_is_no_cell_is_a_tell(system: ActorSystem) -> None:
    seen: list[Any] = []
    target = system.spawn(recorder(seen), "target")

    class Forwarding:
        def deliver(self, message: Any) -> None:
            target.tell(message)

    ref: Any = type(target)(target.address, Forwarding())
    deliver, wake = quiet_delivery(ref)
    assert not deliver("x")  # told at once: nothing is owed
    wake()
    await trio.testing.wait_all_tasks_blocked()
    assert seen == ["x"]
