"""system.ask / ask_or_none: replies, timeouts, late replies, concurrency."""

from __future__ import annotations

from functools import partial
from typing import Any

import attrs
import pytest
import trio
import trio.testing

from casty_trio import (
    ActorContext,
    ActorRef,
    ActorStopped,
    ActorSystem,
    AskTimeoutError,
    Behavior,
    Behaviors,
    CastyError,
    DeadLetter,
)
from tests._helpers import count_tasks, receive_matching


@attrs.frozen
class Double:
    n: int
    reply_to: ActorRef[int]


@attrs.frozen
class Hold:
    reply_to: ActorRef[Any]


@attrs.frozen
class Flush:
    value: Any


@attrs.frozen
class Twice:
    reply_to: ActorRef[str]


def doubler() -> Behavior[Double]:
    async def receive(ctx: ActorContext[Double], msg: Double) -> Behavior[Double]:
        msg.reply_to.tell(msg.n * 2)
        return Behaviors.same()

    return Behaviors.receive(receive)


def holder(held: list[ActorRef[Any]]) -> Behavior[Any]:
    """Keeps reply refs without answering; Flush(value) answers every held ref."""

    async def receive(ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
        match msg:
            case Hold(reply_to):
                held.append(reply_to)
            case Flush(value):
                for ref in held:
                    ref.tell(value)
                held.clear()
        return Behaviors.same()

    return Behaviors.receive(receive)


async def test_ask_returns_the_reply(system: ActorSystem) -> None:
    ref = system.spawn(doubler(), "doubler")
    assert await system.ask(ref, lambda r: Double(21, r), timeout=1.0) == 42


async def test_ask_timeout_raises_ask_timeout_error(
    system: ActorSystem, autojump_clock: Any
) -> None:
    ref = system.spawn(holder([]), "silent")
    start = trio.current_time()
    with pytest.raises(AskTimeoutError) as info:
        await system.ask(ref, lambda r: Hold(r), timeout=2.5)
    elapsed = trio.current_time() - start
    assert isinstance(info.value, CastyError)
    assert isinstance(info.value, TimeoutError)
    assert elapsed == pytest.approx(2.5, abs=0.01)


async def test_ask_timeout_is_catchable_as_builtin_timeout_error(
    system: ActorSystem, autojump_clock: Any
) -> None:
    ref = system.spawn(holder([]), "silent")
    with pytest.raises(TimeoutError):
        await system.ask(ref, lambda r: Hold(r), timeout=0.5)


async def test_ask_or_none(system: ActorSystem, autojump_clock: Any) -> None:
    silent = system.spawn(holder([]), "silent")
    doubling = system.spawn(doubler(), "doubler")
    start = trio.current_time()
    assert await system.ask_or_none(silent, lambda r: Hold(r), timeout=1.0) is None
    assert trio.current_time() - start == pytest.approx(1.0, abs=0.01)
    assert await system.ask_or_none(doubling, lambda r: Double(4, r), timeout=1.0) == 8


async def test_late_reply_goes_to_dead_letters(system: ActorSystem, autojump_clock: Any) -> None:
    held: list[ActorRef[Any]] = []
    ref = system.spawn(holder(held), "slow")
    assert await system.ask_or_none(ref, lambda r: Hold(r), timeout=1.0) is None
    assert len(held) == 1
    reply_ref = held[0]
    async with system.event_stream.subscription(DeadLetter) as dead_letters:
        ref.tell(Flush("too late"))
        letter = await receive_matching(dead_letters, lambda d: True)
    assert letter == DeadLetter("too late", reply_ref)


async def test_first_reply_wins_and_second_is_a_dead_letter(system: ActorSystem) -> None:
    # Akka semantics: the temporary reply ref accepts one reply; anything after is a dead letter.
    async def receive(ctx: ActorContext[Twice], msg: Twice) -> Behavior[Twice]:
        msg.reply_to.tell("first")
        msg.reply_to.tell("second")
        return Behaviors.same()

    ref = system.spawn(Behaviors.receive(receive), "twice")
    async with system.event_stream.subscription(DeadLetter) as dead_letters:
        assert await system.ask(ref, lambda r: Twice(r), timeout=1.0) == "first"
        letter = await receive_matching(dead_letters, lambda d: True)
    assert letter.message == "second"


async def test_many_concurrent_asks(system: ActorSystem) -> None:
    refs = [system.spawn(doubler(), f"doubler-{i}") for i in range(4)]
    results: dict[int, int] = {}

    async def one(n: int) -> None:
        results[n] = await system.ask(refs[n % 4], lambda r: Double(n, r), timeout=5.0)

    async with trio.open_nursery() as nursery:
        for n in range(1000):
            nursery.start_soon(one, n)
    assert results == {n: 2 * n for n in range(1000)}


async def test_concurrent_asks_to_one_actor_get_their_own_replies(
    system: ActorSystem,
) -> None:
    held: list[ActorRef[Any]] = []
    ref = system.spawn(holder(held), "holder")
    results: list[Any] = []

    async def one() -> None:
        results.append(await system.ask(ref, lambda r: Hold(r), timeout=5.0))

    async with trio.open_nursery() as nursery:
        for _ in range(50):
            nursery.start_soon(one)
        await trio.testing.wait_all_tasks_blocked()
        assert len(held) == 50
        assert len(set(held)) == 50  # a distinct reply ref per ask
        ref.tell(Flush("done"))
    assert results == ["done"] * 50


async def test_ask_from_inside_an_actor(system: ActorSystem) -> None:
    doubling = system.spawn(doubler(), "doubler")

    @attrs.frozen
    class Quadruple:
        n: int
        reply_to: ActorRef[int]

    async def receive(ctx: ActorContext[Quadruple], msg: Quadruple) -> Behavior[Quadruple]:
        twice = await ctx.system.ask(doubling, lambda r: Double(msg.n, r), timeout=1.0)
        msg.reply_to.tell(await ctx.system.ask(doubling, lambda r: Double(twice, r), timeout=1.0))
        return Behaviors.same()

    ref = system.spawn(Behaviors.receive(receive), "quadrupler")
    assert await system.ask(ref, lambda r: Quadruple(5, r), timeout=1.0) == 20


async def test_ask_to_a_stopped_actor_times_out(system: ActorSystem, autojump_clock: Any) -> None:
    async with system.event_stream.subscription(ActorStopped) as stopped:
        ref = system.spawn(doubler(), "gone")
        system.stop(ref)
        await receive_matching(stopped, lambda e: e.ref == ref)
    async with system.event_stream.subscription(DeadLetter) as dead_letters:
        with pytest.raises(AskTimeoutError):
            await system.ask(ref, lambda r: Double(1, r), timeout=1.0)
        letter = await receive_matching(dead_letters, lambda d: True)
    assert isinstance(letter.message, Double)
    assert letter.intended_ref == ref


async def test_ask_does_not_spawn_a_task(system: ActorSystem) -> None:
    held: list[ActorRef[Any]] = []
    ref = system.spawn(holder(held), "holder")
    ref.tell(Flush(None))  # let the actor start and settle
    await trio.testing.wait_all_tasks_blocked()

    async with trio.open_nursery() as nursery:
        before = count_tasks()
        for _ in range(10):
            nursery.start_soon(partial(system.ask, ref, Hold, timeout=5.0))
        await trio.testing.wait_all_tasks_blocked()
        assert len(held) == 10
        # Only the 10 tasks started right here: the asks themselves cost no extra task.
        assert count_tasks() == before + 10
        nursery.cancel_scope.cancel()
