"""The event stream: subscribe by type (with subclasses), unsubscribe, subscription channels."""

from __future__ import annotations

from typing import Any

import attrs
import trio
import trio.testing

from casty_trio import (
    ActorStarted,
    ActorStopped,
    ActorSystem,
    Behaviors,
)
from casty_trio.testing import TestProbe
from tests._helpers import drain_nowait, receive_matching


@attrs.frozen
class Base:
    n: int


@attrs.frozen
class Sub(Base):
    pass


@attrs.frozen
class Other:
    n: int


async def test_subscribe_receives_the_type_and_its_subclasses(
    system: ActorSystem, probe: TestProbe, autojump_clock: Any
) -> None:
    system.event_stream.subscribe(Base, probe.ref)
    for event in (Base(1), Other(2), Sub(3), Other(4), Base(5)):
        system.event_stream.publish(event)
    assert await probe.receive_messages(3) == [Base(1), Sub(3), Base(5)]
    await probe.expect_no_message()


async def test_subscribing_to_a_subclass_does_not_receive_the_base(
    system: ActorSystem, probe: TestProbe, autojump_clock: Any
) -> None:
    system.event_stream.subscribe(Sub, probe.ref)
    system.event_stream.publish(Base(1))
    system.event_stream.publish(Sub(2))
    await probe.expect_message(Sub(2))
    await probe.expect_no_message()


async def test_unsubscribe(system: ActorSystem, probe: TestProbe, autojump_clock: Any) -> None:
    system.event_stream.subscribe(Other, probe.ref)
    system.event_stream.publish(Other(1))
    await probe.expect_message(Other(1))
    system.event_stream.unsubscribe(Other, probe.ref)
    system.event_stream.publish(Other(2))
    await probe.expect_no_message()


async def test_several_subscribers_each_get_the_event(system: ActorSystem) -> None:
    probes = [TestProbe(system, f"p{i}") for i in range(3)]
    for probe in probes:
        system.event_stream.subscribe(Other, probe.ref)
    system.event_stream.publish(Other(7))
    for probe in probes:
        await probe.expect_message(Other(7))


async def test_subscribing_twice_delivers_once(
    system: ActorSystem, probe: TestProbe, autojump_clock: Any
) -> None:
    # Akka semantics: a subscription is a set membership; subscribing again is a no-op.
    system.event_stream.subscribe(Other, probe.ref)
    system.event_stream.subscribe(Other, probe.ref)
    system.event_stream.publish(Other(1))
    await probe.expect_message(Other(1))
    await probe.expect_no_message()


async def test_subscription_context_manager_yields_a_channel(system: ActorSystem) -> None:
    async with system.event_stream.subscription(Base) as rx:
        assert isinstance(rx, trio.MemoryReceiveChannel)
        system.event_stream.publish(Other(0))
        system.event_stream.publish(Base(1))
        system.event_stream.publish(Sub(2))
        with trio.fail_after(1):
            assert await rx.receive() == Base(1)
            assert await rx.receive() == Sub(2)
        assert drain_nowait(rx) == []
    # After the block the subscription is gone; publishing is still fine.
    system.event_stream.publish(Base(3))
    await trio.testing.wait_all_tasks_blocked()


async def test_two_subscriptions_are_independent(system: ActorSystem) -> None:
    async with (
        system.event_stream.subscription(Base) as bases,
        system.event_stream.subscription(Other) as others,
    ):
        system.event_stream.publish(Other(1))
        system.event_stream.publish(Base(2))
        with trio.fail_after(1):
            assert await bases.receive() == Base(2)
            assert await others.receive() == Other(1)
        assert drain_nowait(bases) == []
        assert drain_nowait(others) == []


async def test_actor_started_and_stopped_are_published(system: ActorSystem) -> None:
    async with (
        system.event_stream.subscription(ActorStarted) as started,
        system.event_stream.subscription(ActorStopped) as stopped,
    ):
        ref = system.spawn(Behaviors.ignore(), "lifecycle")
        assert await receive_matching(started, lambda e: e.ref == ref) == ActorStarted(ref)
        system.stop(ref)
        assert await receive_matching(stopped, lambda e: e.ref == ref) == ActorStopped(ref)


async def test_actor_events_for_children(system: ActorSystem) -> None:
    async def factory(ctx: Any) -> Any:
        ctx.spawn(Behaviors.ignore(), "kid")
        return Behaviors.ignore()

    async with (
        system.event_stream.subscription(ActorStarted) as started,
        system.event_stream.subscription(ActorStopped) as stopped,
    ):
        parent = system.spawn(Behaviors.setup(factory), "parent")
        kid_started = await receive_matching(started, lambda e: e.ref.path == "/parent/kid")
        system.stop(parent)
        kid_stopped = await receive_matching(stopped, lambda e: e.ref.path == "/parent/kid")
        await receive_matching(stopped, lambda e: e.ref == parent)
    assert kid_started.ref == kid_stopped.ref


async def test_publishing_to_a_stopped_subscriber_is_harmless(
    system: ActorSystem, probe: TestProbe
) -> None:
    gone = TestProbe(system, "gone")
    system.event_stream.subscribe(Other, gone.ref)
    system.event_stream.subscribe(Other, probe.ref)
    async with system.event_stream.subscription(ActorStopped) as stopped:
        system.stop(gone.ref)
        await receive_matching(stopped, lambda e: e.ref == gone.ref)
    system.event_stream.publish(Other(1))
    await probe.expect_message(Other(1))
    assert gone.messages_received == 0
