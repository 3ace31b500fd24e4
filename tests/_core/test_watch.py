"""Death watch: Terminated(ref) for children, siblings, unrelated actors; unwatch."""

from __future__ import annotations

from typing import Any

import attrs
import trio.testing

from casty_trio import (
    ActorContext,
    ActorRef,
    ActorStopped,
    ActorSystem,
    Behavior,
    Behaviors,
    Terminated,
)
from casty_trio.testing import TestProbe
from tests._helpers import receive_matching


@attrs.frozen
class Watch:
    target: ActorRef[Any]
    reply_to: ActorRef[bool]


@attrs.frozen
class Unwatch:
    target: ActorRef[Any]
    reply_to: ActorRef[bool]


@attrs.frozen
class Stop:
    pass


@attrs.frozen
class Ping:
    reply_to: ActorRef[str]


def stoppable() -> Behavior[Any]:
    async def receive(ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
        match msg:
            case Stop():
                return Behaviors.stopped()
            case Ping(reply_to):
                reply_to.tell("pong")
        return Behaviors.same()

    return Behaviors.receive(receive)


def watcher(probe: TestProbe) -> Behavior[Any]:
    """Watches/unwatches on command (acking once done); forwards Terminated to ``probe``."""

    async def receive(ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
        match msg:
            case Watch(target, reply_to):
                ctx.watch(target)
                reply_to.tell(True)
            case Unwatch(target, reply_to):
                ctx.unwatch(target)
                reply_to.tell(True)
            case Terminated():
                probe.ref.tell(msg)
        return Behaviors.same()

    return Behaviors.receive(receive)


async def test_parent_watches_child(system: ActorSystem, autojump_clock: Any) -> None:
    probe = TestProbe(system)
    children: list[ActorRef[Any]] = []

    async def parent(ctx: ActorContext[Any]) -> Behavior[Any]:
        child = ctx.spawn(stoppable(), "child")
        ctx.watch(child)
        children.append(child)
        return watcher(probe)

    system.spawn(Behaviors.setup(parent), "parent")
    await trio.testing.wait_all_tasks_blocked()
    (child,) = children
    child.tell(Stop())
    await probe.expect_message(Terminated(child))
    await probe.expect_no_message()


async def test_sibling_watches_sibling(system: ActorSystem) -> None:
    probe = TestProbe(system)
    refs: dict[str, ActorRef[Any]] = {}

    async def parent(ctx: ActorContext[Any]) -> Behavior[Any]:
        refs["a"] = ctx.spawn(watcher(probe), "a")
        refs["b"] = ctx.spawn(stoppable(), "b")
        return Behaviors.ignore()

    system.spawn(Behaviors.setup(parent), "parent")
    await trio.testing.wait_all_tasks_blocked()
    assert await system.ask(refs["a"], lambda r: Watch(refs["b"], r), timeout=1.0)
    refs["b"].tell(Stop())
    terminated = await probe.expect_message(Terminated)
    assert terminated == Terminated(refs["b"])
    assert terminated.ref.path == "/parent/b"


async def test_watch_unrelated_root_actor(system: ActorSystem) -> None:
    probe = TestProbe(system)
    w = system.spawn(watcher(probe), "watcher")
    target = system.spawn(stoppable(), "target")
    assert await system.ask(w, lambda r: Watch(target, r), timeout=1.0)
    system.stop(target)
    await probe.expect_message(Terminated(target))


async def test_watch_actor_in_another_subtree(system: ActorSystem) -> None:
    probe = TestProbe(system)
    w = system.spawn(watcher(probe), "watcher")

    async def parent(ctx: ActorContext[Any]) -> Behavior[Any]:
        ctx.spawn(stoppable(), "deep")
        return Behaviors.ignore()

    system.spawn(Behaviors.setup(parent), "elsewhere")
    await trio.testing.wait_all_tasks_blocked()
    target = system.lookup("/elsewhere/deep")
    assert target is not None
    assert await system.ask(w, lambda r: Watch(target, r), timeout=1.0)
    target.tell(Stop())
    await probe.expect_message(Terminated(target))


async def test_watched_subtree_stopping_with_its_parent(system: ActorSystem) -> None:
    probe = TestProbe(system)
    w = system.spawn(watcher(probe), "watcher")

    async def parent(ctx: ActorContext[Any]) -> Behavior[Any]:
        ctx.spawn(stoppable(), "child")
        return stoppable()

    parent_ref = system.spawn(Behaviors.setup(parent), "parent")
    await trio.testing.wait_all_tasks_blocked()
    child = system.lookup("/parent/child")
    assert child is not None
    assert await system.ask(w, lambda r: Watch(child, r), timeout=1.0)
    parent_ref.tell(Stop())
    await probe.expect_message(Terminated(child))


async def test_watching_an_already_stopped_actor_terminates_immediately(
    system: ActorSystem,
) -> None:
    probe = TestProbe(system)
    w = system.spawn(watcher(probe), "watcher")
    async with system.event_stream.subscription(ActorStopped) as stopped:
        target = system.spawn(stoppable(), "short-lived")
        target.tell(Stop())
        await receive_matching(stopped, lambda e: e.ref == target)
    assert await system.ask(w, lambda r: Watch(target, r), timeout=1.0)
    await probe.expect_message(Terminated(target))


async def test_unwatch_means_no_terminated(system: ActorSystem, autojump_clock: Any) -> None:
    probe = TestProbe(system)
    w = system.spawn(watcher(probe), "watcher")
    target = system.spawn(stoppable(), "target")
    assert await system.ask(w, lambda r: Watch(target, r), timeout=1.0)
    assert await system.ask(w, lambda r: Unwatch(target, r), timeout=1.0)
    async with system.event_stream.subscription(ActorStopped) as stopped:
        target.tell(Stop())
        await receive_matching(stopped, lambda e: e.ref == target)
    await probe.expect_no_message()


async def test_watching_twice_delivers_one_terminated(
    system: ActorSystem, autojump_clock: Any
) -> None:
    # Akka semantics: watch is idempotent.
    probe = TestProbe(system)
    w = system.spawn(watcher(probe), "watcher")
    target = system.spawn(stoppable(), "target")
    assert await system.ask(w, lambda r: Watch(target, r), timeout=1.0)
    assert await system.ask(w, lambda r: Watch(target, r), timeout=1.0)
    target.tell(Stop())
    await probe.expect_message(Terminated(target))
    await probe.expect_no_message()


async def test_several_watchers_are_all_notified(system: ActorSystem) -> None:
    probes = [TestProbe(system, f"probe-{i}") for i in range(3)]
    target = system.spawn(stoppable(), "target")
    for i, probe in enumerate(probes):
        w = system.spawn(watcher(probe), f"watcher-{i}")
        assert await system.ask(w, lambda r: Watch(target, r), timeout=1.0)
    target.tell(Stop())
    for probe in probes:
        await probe.expect_message(Terminated(target))
