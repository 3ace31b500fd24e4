"""Timers (Behaviors.with_timers), all on the virtual clock."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import attrs
import pytest
import trio

from casty_trio import (
    ActorContext,
    ActorRef,
    ActorSystem,
    Behavior,
    Behaviors,
    DeadLetter,
    OneForOneStrategy,
    TimerScheduler,
)
from casty_trio.testing import TestProbe
from tests._helpers import drain_nowait


@attrs.frozen
class Tick:
    label: str


@attrs.frozen
class StartSingle:
    key: Hashable
    msg: Any
    delay: float


@attrs.frozen
class StartPeriodic:
    key: Hashable
    msg: Any
    interval: float


@attrs.frozen
class Cancel:
    key: Hashable


@attrs.frozen
class CancelAll:
    pass


@attrs.frozen
class IsActive:
    key: Hashable
    reply_to: ActorRef[bool]


@attrs.frozen
class Block:
    seconds: float


@attrs.frozen
class Stop:
    pass


@attrs.frozen
class Boom:
    pass


def timed(probe: TestProbe, starts: list[float] | None = None) -> Behavior[Any]:
    """Drives its TimerScheduler on command; forwards every Tick to ``probe``."""

    def factory(ctx: ActorContext[Any], timers: TimerScheduler[Any]) -> Behavior[Any]:
        if starts is not None:
            starts.append(trio.current_time())

        async def receive(ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
            match msg:
                case Tick():
                    probe.ref.tell(msg)
                case StartSingle(key, tick, delay):
                    timers.start_single(key, tick, delay)
                case StartPeriodic(key, tick, interval):
                    timers.start_periodic(key, tick, interval)
                case Cancel(key):
                    timers.cancel(key)
                case CancelAll():
                    timers.cancel_all()
                case IsActive(key, reply_to):
                    reply_to.tell(timers.is_active(key))
                case Block(seconds):
                    await trio.sleep(seconds)
                case Stop():
                    return Behaviors.stopped()
                case Boom():
                    raise ValueError("boom")
            return Behaviors.same()

        return Behaviors.receive(receive)

    return Behaviors.with_timers(factory)


async def is_active(system: ActorSystem, ref: ActorRef[Any], key: Hashable) -> bool:
    return await system.ask(ref, lambda r: IsActive(key, r), timeout=1.0)


async def test_single_timer_fires_once_after_delay(
    system: ActorSystem, probe: TestProbe, autojump_clock: Any
) -> None:
    ref = system.spawn(timed(probe), "timed")
    t0 = trio.current_time()
    ref.tell(StartSingle("k", Tick("once"), 2.0))
    await probe.expect_message(Tick("once"), within=5.0)
    assert trio.current_time() - t0 == pytest.approx(2.0, abs=0.01)  # when it arrived
    await probe.expect_no_message(within=20.0)


async def test_periodic_timer_ticks_every_interval(
    system: ActorSystem, probe: TestProbe, autojump_clock: Any
) -> None:
    ref = system.spawn(timed(probe), "timed")
    t0 = trio.current_time()
    ref.tell(StartPeriodic("p", Tick("p"), 1.0))
    offsets = []
    for _ in range(10):
        await probe.expect_message(Tick("p"), within=1.5)
        offsets.append(trio.current_time() - t0)  # when it arrived
    assert offsets == pytest.approx([float(i) for i in range(1, 11)], abs=0.01)
    await trio.sleep(0.5)
    assert probe.messages_received == 10
    assert await is_active(system, ref, "p")
    ref.tell(Cancel("p"))
    await probe.expect_no_message(within=5.0)


async def test_timer_started_in_factory(
    system: ActorSystem, probe: TestProbe, autojump_clock: Any
) -> None:
    def factory(ctx: ActorContext[Any], timers: TimerScheduler[Any]) -> Behavior[Any]:
        timers.start_single("hello", "hello", 1.0)

        async def receive(ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
            probe.ref.tell(msg)
            return Behaviors.same()

        return Behaviors.receive(receive)

    async def async_factory(ctx: ActorContext[Any], timers: TimerScheduler[Any]) -> Behavior[Any]:
        return factory(ctx, timers)

    system.spawn(Behaviors.with_timers(factory), "sync-factory")
    system.spawn(Behaviors.with_timers(async_factory), "async-factory")
    assert await probe.receive_messages(2, within=2.0) == ["hello", "hello"]


async def test_cancel_prevents_the_message(
    system: ActorSystem, probe: TestProbe, autojump_clock: Any
) -> None:
    ref = system.spawn(timed(probe), "timed")
    ref.tell(StartSingle("k", Tick("never"), 2.0))
    assert await is_active(system, ref, "k")
    await trio.sleep(1.0)
    ref.tell(Cancel("k"))
    assert not await is_active(system, ref, "k")
    await probe.expect_no_message(within=10.0)


async def test_cancel_after_the_timer_fired_but_before_delivery(
    system: ActorSystem, probe: TestProbe, autojump_clock: Any
) -> None:
    ref = system.spawn(timed(probe), "timed")
    ref.tell(StartSingle("k", Tick("queued"), 1.0))
    ref.tell(Block(3.0))  # the actor is busy while the timer fires at t=1
    ref.tell(Cancel("k"))  # handled at t=3, the Tick already sits in the mailbox behind it
    await probe.expect_no_message(within=10.0)


async def test_starting_an_active_key_replaces_the_timer(
    system: ActorSystem, probe: TestProbe, autojump_clock: Any
) -> None:
    ref = system.spawn(timed(probe), "timed")
    t0 = trio.current_time()
    ref.tell(StartSingle("k", Tick("first"), 2.0))
    ref.tell(StartSingle("k", Tick("second"), 3.0))
    await probe.expect_message(Tick("second"), within=5.0)
    assert trio.current_time() - t0 == pytest.approx(3.0, abs=0.01)  # when it arrived
    await probe.expect_no_message(within=10.0)


async def test_replacing_a_periodic_timer_with_a_single_one(
    system: ActorSystem, probe: TestProbe, autojump_clock: Any
) -> None:
    ref = system.spawn(timed(probe), "timed")
    ref.tell(StartPeriodic("k", Tick("periodic"), 1.0))
    await trio.sleep(2.5)
    ref.tell(StartSingle("k", Tick("single"), 1.0))
    await trio.sleep(10.0)
    assert probe.receive_all_nowait() == [Tick("periodic"), Tick("periodic"), Tick("single")]


async def test_replacing_after_the_old_timer_fired_but_before_delivery(
    system: ActorSystem, probe: TestProbe, autojump_clock: Any
) -> None:
    ref = system.spawn(timed(probe), "timed")
    ref.tell(StartSingle("k", Tick("stale"), 1.0))
    ref.tell(Block(3.0))
    ref.tell(StartSingle("k", Tick("fresh"), 1.0))
    await probe.expect_message(Tick("fresh"), within=10.0)
    await probe.expect_no_message(within=10.0)


async def test_independent_keys(system: ActorSystem, probe: TestProbe, autojump_clock: Any) -> None:
    ref = system.spawn(timed(probe), "timed")
    ref.tell(StartSingle("a", Tick("a"), 1.0))
    ref.tell(StartSingle("b", Tick("b"), 2.0))
    ref.tell(Cancel("a"))
    await probe.expect_message(Tick("b"), within=5.0)
    await probe.expect_no_message(within=5.0)


async def test_is_active(system: ActorSystem, probe: TestProbe, autojump_clock: Any) -> None:
    ref = system.spawn(timed(probe), "timed")
    assert not await is_active(system, ref, "single")
    ref.tell(StartSingle("single", Tick("s"), 1.0))
    ref.tell(StartPeriodic("periodic", Tick("p"), 1.0))
    assert await is_active(system, ref, "single")
    assert await is_active(system, ref, "periodic")
    await probe.receive_messages(2, within=1.5)
    assert not await is_active(system, ref, "single")  # delivered: no longer active
    assert await is_active(system, ref, "periodic")
    ref.tell(Cancel("periodic"))
    assert not await is_active(system, ref, "periodic")


async def test_cancel_all(system: ActorSystem, probe: TestProbe, autojump_clock: Any) -> None:
    ref = system.spawn(timed(probe), "timed")
    ref.tell(StartSingle("a", Tick("a"), 1.0))
    ref.tell(StartPeriodic("b", Tick("b"), 1.0))
    ref.tell(CancelAll())
    assert not await is_active(system, ref, "a")
    assert not await is_active(system, ref, "b")
    await probe.expect_no_message(within=5.0)


async def test_timers_die_with_the_actor(
    system: ActorSystem, probe: TestProbe, autojump_clock: Any
) -> None:
    ref = system.spawn(timed(probe), "timed")
    ref.tell(StartPeriodic("p", Tick("p"), 1.0))
    ref.tell(StartSingle("s", Tick("s"), 5.0))
    await trio.sleep(2.5)
    async with system.event_stream.subscription(DeadLetter) as dead_letters:
        ref.tell(Stop())
        await trio.sleep(20.0)
        assert drain_nowait(dead_letters) == []  # no timer keeps firing at a dead actor
    assert probe.receive_all_nowait() == [Tick("p"), Tick("p")]


async def test_timers_are_cancelled_on_restart(
    system: ActorSystem, probe: TestProbe, autojump_clock: Any
) -> None:
    starts: list[float] = []
    ref = system.spawn(Behaviors.supervise(timed(probe, starts), OneForOneStrategy()), "timed")
    ref.tell(StartPeriodic("p", Tick("p"), 1.0))
    ref.tell(StartSingle("s", Tick("s"), 5.0))
    await trio.sleep(2.5)
    ref.tell(Boom())
    assert not await is_active(system, ref, "p")
    assert len(starts) == 2
    await trio.sleep(20.0)
    assert probe.receive_all_nowait() == [Tick("p"), Tick("p")]
