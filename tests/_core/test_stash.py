"""Behaviors.with_stash: stash while initializing, unstash in order, bounded capacity."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
import trio.testing

from casty_trio import (
    ActorContext,
    ActorRef,
    ActorSystem,
    Behavior,
    Behaviors,
    CastyError,
    DeadLetter,
    OneForOneStrategy,
    StashBuffer,
    StashOverflowError,
)
from tests._helpers import drain_nowait


@attrs.frozen
class Ready:
    prefix: str


@attrs.frozen
class Work:
    n: int


@attrs.frozen
class Done:
    reply_to: ActorRef[list[str]]


@attrs.frozen
class StashInfo:
    size: int
    capacity: int
    is_empty: bool
    is_full: bool


@attrs.frozen
class GetInfo:
    reply_to: ActorRef[StashInfo]


def active(prefix: str, log: list[str]) -> Behavior[Any]:
    async def receive(ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
        match msg:
            case Work(n):
                log.append(f"{prefix}{n}")
            case Done(reply_to):
                reply_to.tell(list(log))
        return Behaviors.same()

    return Behaviors.receive(receive)


def initializing(
    stash: StashBuffer[Any], log: list[str], overflows: list[Any] | None = None
) -> Behavior[Any]:
    """Stashes everything until Ready arrives, then unstashes into ``active``."""

    async def receive(ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
        match msg:
            case Ready(prefix):
                return stash.unstash_all(active(prefix, log))
            case GetInfo(reply_to):
                reply_to.tell(StashInfo(stash.size, stash.capacity, stash.is_empty, stash.is_full))
            case _:
                if overflows is None:
                    stash.stash(msg)
                else:
                    try:
                        stash.stash(msg)
                    except StashOverflowError as exc:
                        overflows.append((msg, exc))
        return Behaviors.same()

    return Behaviors.receive(receive)


@pytest.mark.parametrize("factory_kind", ["sync", "async"])
async def test_stash_until_ready_then_unstash_in_order(
    system: ActorSystem, factory_kind: str
) -> None:
    log: list[str] = []

    def sync_factory(ctx: ActorContext[Any], stash: StashBuffer[Any]) -> Behavior[Any]:
        return initializing(stash, log)

    async def async_factory(ctx: ActorContext[Any], stash: StashBuffer[Any]) -> Behavior[Any]:
        return initializing(stash, log)

    factory = sync_factory if factory_kind == "sync" else async_factory
    ref = system.spawn(Behaviors.with_stash(10, factory), "stasher")
    for n in (1, 2, 3):
        ref.tell(Work(n))
    ref.tell(Ready("w"))
    # Already queued behind Ready when it is handled: must come after the stashed messages.
    ref.tell(Work(4))
    ref.tell(Work(5))
    assert await system.ask(ref, lambda r: Done(r), timeout=1.0) == ["w1", "w2", "w3", "w4", "w5"]


async def test_stash_buffer_properties(system: ActorSystem) -> None:
    log: list[str] = []
    ref = system.spawn(Behaviors.with_stash(3, lambda ctx, stash: initializing(stash, log)), "s")
    assert await system.ask(ref, lambda r: GetInfo(r), timeout=1.0) == StashInfo(0, 3, True, False)
    ref.tell(Work(1))
    assert await system.ask(ref, lambda r: GetInfo(r), timeout=1.0) == StashInfo(1, 3, False, False)
    ref.tell(Work(2))
    ref.tell(Work(3))
    assert await system.ask(ref, lambda r: GetInfo(r), timeout=1.0) == StashInfo(3, 3, False, True)


async def test_stash_overflow_raises(system: ActorSystem) -> None:
    log: list[str] = []
    overflows: list[Any] = []
    ref = system.spawn(
        Behaviors.with_stash(2, lambda ctx, stash: initializing(stash, log, overflows)), "small"
    )
    for n in range(1, 5):
        ref.tell(Work(n))
    ref.tell(Ready("w"))
    assert await system.ask(ref, lambda r: Done(r), timeout=1.0) == ["w1", "w2"]
    assert [msg for msg, _ in overflows] == [Work(3), Work(4)]
    assert all(isinstance(exc, StashOverflowError) for _, exc in overflows)
    assert issubclass(StashOverflowError, CastyError)


async def test_uncaught_stash_overflow_fails_the_actor(system: ActorSystem) -> None:
    log: list[str] = []
    ref = system.spawn(Behaviors.with_stash(1, lambda ctx, stash: initializing(stash, log)), "tiny")
    ref.tell(Work(1))
    ref.tell(Work(2))  # overflows: unsupervised, the actor stops
    await trio.testing.wait_all_tasks_blocked()
    assert system.lookup("/tiny") is None


async def test_clear_drops_stashed_messages(system: ActorSystem) -> None:
    log: list[str] = []

    def factory(ctx: ActorContext[Any], stash: StashBuffer[Any]) -> Behavior[Any]:
        async def receive(ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
            match msg:
                case "clear":
                    stash.clear()
                case Ready(prefix):
                    return stash.unstash_all(active(prefix, log))
                case _:
                    stash.stash(msg)
            return Behaviors.same()

        return Behaviors.receive(receive)

    ref = system.spawn(Behaviors.with_stash(10, factory), "clearing")
    ref.tell(Work(1))
    ref.tell(Work(2))
    ref.tell("clear")
    ref.tell(Work(3))
    ref.tell(Ready("w"))
    assert await system.ask(ref, lambda r: Done(r), timeout=1.0) == ["w3"]


async def test_stash_can_be_reused_after_unstash(system: ActorSystem) -> None:
    log: list[str] = []

    def factory(ctx: ActorContext[Any], stash: StashBuffer[Any]) -> Behavior[Any]:
        def waiting(round_: int) -> Behavior[Any]:
            async def receive(ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
                match msg:
                    case Ready():
                        return stash.unstash_all(working(round_))
                    case _:
                        stash.stash(msg)
                return Behaviors.same()

            return Behaviors.receive(receive)

        def working(round_: int) -> Behavior[Any]:
            async def receive(ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
                match msg:
                    case Work(n):
                        log.append(f"r{round_}:{n}")
                    case "pause":
                        return waiting(round_ + 1)
                    case Done(reply_to):
                        reply_to.tell(list(log))
                return Behaviors.same()

            return Behaviors.receive(receive)

        return waiting(1)

    ref = system.spawn(Behaviors.with_stash(10, factory), "twice")
    for msg in (Work(1), Ready("-"), Work(2), "pause", Work(3), Work(4), Ready("-")):
        ref.tell(msg)
    assert await system.ask(ref, lambda r: Done(r), timeout=1.0) == ["r1:1", "r1:2", "r2:3", "r2:4"]


def stashing_until_boom(log: list[str]) -> Behavior[Any]:
    """Stashes Work; "boom" raises, "stop" stops, Ready unstashes."""

    def factory(ctx: ActorContext[Any], stash: StashBuffer[Any]) -> Behavior[Any]:
        async def receive(ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
            match msg:
                case "boom":
                    raise ValueError("boom")
                case "stop":
                    return Behaviors.stopped()
                case Ready(prefix):
                    return stash.unstash_all(active(prefix, log))
                case _:
                    stash.stash(msg)
            return Behaviors.same()

        return Behaviors.receive(receive)

    return Behaviors.with_stash(10, factory)


@pytest.mark.parametrize("end", ["restart", "stop", "failure", "shutdown"])
async def test_stashed_messages_left_behind_are_dead_letters(end: str) -> None:
    log: list[str] = []
    behavior = stashing_until_boom(log)
    if end == "restart":
        behavior = Behaviors.supervise(behavior, OneForOneStrategy())
    async with ActorSystem(name="stash") as system:
        async with system.event_stream.subscription(DeadLetter) as dead_letters:
            ref = system.spawn(behavior, "s")
            ref.tell(Work(1))
            ref.tell(Work(2))
            await trio.testing.wait_all_tasks_blocked()
            if end == "shutdown":
                await system.shutdown()
            else:
                ref.tell("stop" if end == "stop" else "boom")
                await trio.testing.wait_all_tasks_blocked()
            letters = [(d.message, d.intended_ref) for d in drain_nowait(dead_letters)]
        assert letters == [(Work(1), ref), (Work(2), ref)]
        if end == "restart":
            # The new incarnation starts with an empty stash.
            ref.tell(Work(3))
            ref.tell(Ready("w"))
            assert await system.ask(ref, lambda r: Done(r), timeout=1.0) == ["w3"]
