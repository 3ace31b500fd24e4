"""``mailbox_lending``: many messages appended to an actor's mailbox, one wake-up for all."""

from __future__ import annotations

from collections import deque
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
    MailboxOverflowStrategy,
)
from casty_trio._core import mailbox_lending
from casty_trio._core._cell_lending import drop_excess
from casty_trio._core._control import _Control
from tests._helpers import drain_nowait


def recorder(seen: list[Any]) -> Behavior[Any]:
    async def receive(ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
        seen.append(msg)
        return Behaviors.same()

    return Behaviors.receive(receive)


def lend(ref: Any) -> tuple[deque[Any], Any]:
    take, give_back = mailbox_lending(ref)
    box = take()
    assert box is not None
    return box, give_back


async def test_a_parked_actor_sees_lent_messages_only_once_given_back(
    system: ActorSystem,
) -> None:
    seen: list[Any] = []
    ref = system.spawn(recorder(seen), "rec")
    ref.tell(0)
    await trio.testing.wait_all_tasks_blocked()  # parked, its deque given back
    box, give_back = lend(ref)
    box.extend([1, 2, 3])
    await trio.testing.wait_all_tasks_blocked()
    assert seen == [0]  # not woken
    give_back(box)
    await trio.testing.wait_all_tasks_blocked()
    assert seen == [0, 1, 2, 3]


async def test_a_tell_during_a_lend_wakes_the_actor_for_everything_queued(
    system: ActorSystem,
) -> None:
    seen: list[Any] = []
    ref = system.spawn(recorder(seen), "rec")
    box, give_back = lend(ref)
    box.append(1)
    ref.tell(2)  # an ordinary tell: queued behind, and it wakes the actor
    await trio.testing.wait_all_tasks_blocked()
    assert seen == [1, 2]
    box.append(3)  # the actor parked meanwhile, keeping the lent deque
    await trio.testing.wait_all_tasks_blocked()
    assert seen == [1, 2]
    give_back(box)
    await trio.testing.wait_all_tasks_blocked()
    assert seen == [1, 2, 3]


async def test_an_actor_without_a_task_yet_is_started_by_the_give_back(
    system: ActorSystem,
) -> None:
    seen: list[Any] = []
    ref = system.spawn(recorder(seen), "fresh")
    box, give_back = lend(ref)
    box.extend(["a", "b"])
    give_back(box)
    await trio.testing.wait_all_tasks_blocked()
    assert seen == ["a", "b"]


@pytest.mark.parametrize(
    ("capacity", "overflow", "sent", "dropped"),
    [
        # The newest over the bound are dead letters; nothing raises (no tell to raise from).
        (2, MailboxOverflowStrategy.reject, [1, 2, 3, 4], [3, 4]),
        (2, MailboxOverflowStrategy.drop_new, [1, 2, 3, 4], [3, 4]),
        (2, MailboxOverflowStrategy.drop_oldest, [1, 2, 3, 4], [1, 2]),
        (3, MailboxOverflowStrategy.reject, [1, 2, 3], []),  # what fits is kept whole
    ],
)
async def test_the_bound_applies_at_the_give_back(
    system: ActorSystem,
    capacity: int,
    overflow: MailboxOverflowStrategy,
    sent: list[int],
    dropped: list[int],
) -> None:
    seen: list[Any] = []
    mailbox = Mailbox(capacity=capacity, overflow=overflow)
    ref = system.spawn(recorder(seen), "bounded", mailbox=mailbox)
    async with system.event_stream.subscription(DeadLetter) as dead_letters:
        box, give_back = lend(ref)
        box.extend(sent)
        give_back(box)
        await trio.testing.wait_all_tasks_blocked()
        assert drain_nowait(dead_letters) == [DeadLetter(m, ref) for m in dropped]
    assert seen == [m for m in sent if m not in dropped]


async def test_a_stopped_actor_lends_nothing(system: ActorSystem) -> None:
    ref = system.spawn(recorder([]), "gone")
    ref.tell("start")
    await trio.testing.wait_all_tasks_blocked()
    system.stop(ref)
    await trio.testing.wait_all_tasks_blocked()
    take, _ = mailbox_lending(ref)
    assert take() is None


async def test_messages_lent_to_an_actor_that_terminated_are_dead_letters(
    system: ActorSystem,
) -> None:
    seen: list[Any] = []
    ref = system.spawn(recorder(seen), "stopping")
    ref.tell("start")
    await trio.testing.wait_all_tasks_blocked()
    box, give_back = lend(ref)
    system.stop(ref)
    await trio.testing.wait_all_tasks_blocked()  # terminated while its mailbox was lent
    async with system.event_stream.subscription(DeadLetter) as dead_letters:
        box.extend(["late", "later"])
        give_back(box)
        await trio.testing.wait_all_tasks_blocked()
        assert drain_nowait(dead_letters) == [DeadLetter("late", ref), DeadLetter("later", ref)]
    assert seen == ["start"]


async def test_a_ref_that_is_no_cell_is_told_each_message_in_turn(system: ActorSystem) -> None:
    seen: list[Any] = []
    target = system.spawn(recorder(seen), "target")

    class Forwarding:
        def deliver(self, message: Any) -> None:
            target.tell(message)

    ref: Any = type(target)(target.address, Forwarding())
    box, give_back = lend(ref)
    box.extend(["x", "y"])
    give_back(box)
    await trio.testing.wait_all_tasks_blocked()
    assert seen == ["x", "y"]


@pytest.mark.parametrize(
    ("overflow", "dropped", "kept"),
    [
        (MailboxOverflowStrategy.drop_oldest, [1, 2], ["c0", "c1", 3, "c2", 4]),
        (MailboxOverflowStrategy.drop_new, [3, 4], ["c0", 1, "c1", 2, "c2"]),
        (MailboxOverflowStrategy.reject, [3, 4], ["c0", 1, "c1", 2, "c2"]),
    ],
)
def test_control_messages_are_never_part_of_the_excess(
    overflow: MailboxOverflowStrategy, dropped: list[int], kept: list[Any]
) -> None:
    controls = {f"c{i}": _Control(_Control.TERMINATED, i) for i in range(3)}
    box: deque[Any] = deque([controls["c0"], 1, controls["c1"], 2, 3, controls["c2"], 4])
    assert drop_excess(box, 2, overflow) == dropped
    assert list(box) == [controls.get(m, m) for m in kept]  # type: ignore[call-overload]
