"""Behaviors are values: receive, setup, same, stopped, unhandled, ignore, restart."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import attrs
import pytest
import trio

from casty_trio import (
    ActorContext,
    ActorRef,
    ActorRestarted,
    ActorStopped,
    ActorSystem,
    Behavior,
    Behaviors,
    DeadLetter,
    Directive,
    OneForOneStrategy,
    UnhandledMessage,
)
from tests._helpers import receive_matching


@attrs.frozen
class Add:
    n: int


@attrs.frozen
class Get:
    reply_to: ActorRef[int]


@attrs.frozen
class Stop:
    pass


@attrs.frozen
class Unknown:
    pass


@attrs.frozen
class Restart:
    pass


@dataclass(frozen=True)
class Ping:
    reply_to: ActorRef[str]


def counter(total: int = 0) -> Behavior[Any]:
    async def receive(ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
        match msg:
            case Add(n):
                return counter(total + n)
            case Get(reply_to):
                reply_to.tell(total)
                return Behaviors.same()
            case Stop():
                return Behaviors.stopped()
            case Restart():
                return Behaviors.restart()
            case _:
                return Behaviors.unhandled()

    return Behaviors.receive(receive)


async def test_receive_state_lives_in_closures(system: ActorSystem) -> None:
    ref = system.spawn(counter(), "counter")
    for n in (1, 2, 3, 4):
        ref.tell(Add(n))
    assert await system.ask(ref, lambda r: Get(r), timeout=1.0) == 10
    ref.tell(Add(5))
    assert await system.ask(ref, lambda r: Get(r), timeout=1.0) == 15


async def test_returned_behavior_handles_next_message(system: ActorSystem) -> None:
    def named(label: str) -> Behavior[Any]:
        async def receive(ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
            match msg:
                case Ping(reply_to):
                    reply_to.tell(label)
                    return Behaviors.same()
                case str() as new_label:
                    return named(new_label)
            return Behaviors.unhandled()

        return Behaviors.receive(receive)

    ref = system.spawn(named("a"), "switcher")
    assert await system.ask(ref, lambda r: Ping(r), timeout=1.0) == "a"
    assert await system.ask(ref, lambda r: Ping(r), timeout=1.0) == "a"  # same() kept it
    ref.tell("b")
    assert await system.ask(ref, lambda r: Ping(r), timeout=1.0) == "b"


async def test_setup_runs_once_before_first_message(system: ActorSystem) -> None:
    setups: list[ActorRef[Any]] = []

    async def factory(ctx: ActorContext[Any]) -> Behavior[Any]:
        setups.append(ctx.self)
        return counter(100)

    ref = system.spawn(Behaviors.setup(factory), "with-setup")
    ref.tell(Add(1))
    ref.tell(Add(1))
    assert await system.ask(ref, lambda r: Get(r), timeout=1.0) == 102
    assert setups == [ref]


async def test_setup_can_return_a_setup(system: ActorSystem) -> None:
    # Akka semantics: a deferred behavior returned from a factory is started as well.
    calls: list[str] = []

    async def inner(ctx: ActorContext[Any]) -> Behavior[Any]:
        calls.append("inner")
        return counter(7)

    async def outer(ctx: ActorContext[Any]) -> Behavior[Any]:
        calls.append("outer")
        return Behaviors.setup(inner)

    ref = system.spawn(Behaviors.setup(outer), "nested-setup")
    assert await system.ask(ref, lambda r: Get(r), timeout=1.0) == 7
    assert calls == ["outer", "inner"]


async def test_stopped_stops_the_actor_after_the_message(system: ActorSystem) -> None:
    async with system.event_stream.subscription(ActorStopped) as stopped:
        ref = system.spawn(counter(), "stopper")
        ref.tell(Add(1))
        ref.tell(Stop())
        event = await receive_matching(stopped, lambda e: e.ref == ref)
        assert event == ActorStopped(ref)
    assert system.lookup("/stopper") is None


async def test_messages_after_stopped_are_not_processed(system: ActorSystem) -> None:
    processed: list[int] = []

    async def receive(ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
        if msg == "stop":
            return Behaviors.stopped()
        processed.append(msg)
        return Behaviors.same()

    async with system.event_stream.subscription(DeadLetter) as dead_letters:
        ref = system.spawn(Behaviors.receive(receive), "stop-mid-mailbox")
        for item in (1, 2, "stop", 3, 4):
            ref.tell(item)
        # Akka semantics: whatever is left in the mailbox of a stopped actor goes to dead letters.
        first = await receive_matching(dead_letters, lambda d: d.message == 3)
        second = await receive_matching(dead_letters, lambda d: d.message == 4)
    assert first.intended_ref == ref
    assert second.intended_ref == ref
    assert processed == [1, 2]


async def test_tell_after_stopped_is_a_dead_letter(system: ActorSystem) -> None:
    async with system.event_stream.subscription(ActorStopped) as stopped:
        ref = system.spawn(counter(), "gone")
        ref.tell(Stop())
        await receive_matching(stopped, lambda e: e.ref == ref)
    async with system.event_stream.subscription(DeadLetter) as dead_letters:
        ref.tell(Add(1))
        letter = await receive_matching(dead_letters, lambda d: True)
    assert letter == DeadLetter(Add(1), ref)


async def test_unhandled_publishes_unhandled_message_and_keeps_behavior(
    system: ActorSystem,
) -> None:
    async with system.event_stream.subscription(UnhandledMessage) as unhandled:
        ref = system.spawn(counter(3), "picky")
        ref.tell(Unknown())
        event = await receive_matching(unhandled, lambda e: True)
        assert event == UnhandledMessage(Unknown(), ref)
        # The behavior is kept: state survives and later messages are handled.
        ref.tell(Add(1))
        assert await system.ask(ref, lambda r: Get(r), timeout=1.0) == 4
        assert drain_count(unhandled) == 0


def drain_count(rx: trio.MemoryReceiveChannel[Any]) -> int:
    count = 0
    while True:
        try:
            rx.receive_nowait()
        except trio.WouldBlock:
            return count
        count += 1


async def test_ignore_drops_every_message(system: ActorSystem, autojump_clock: Any) -> None:
    async with system.event_stream.subscription(UnhandledMessage) as unhandled:
        ref = system.spawn(Behaviors.ignore(), "sink")
        ref.tell("anything")
        ref.tell(Add(1))
        assert await system.ask_or_none(ref, lambda r: Get(r), timeout=1.0) is None
        assert drain_count(unhandled) == 0
    assert system.lookup("/sink") == ref  # still alive


async def test_switching_to_ignore_from_a_handler(system: ActorSystem, autojump_clock: Any) -> None:
    async def receive(ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
        match msg:
            case Ping(reply_to):
                reply_to.tell("pong")
                return Behaviors.same()
            case "ignore":
                return Behaviors.ignore()
        return Behaviors.unhandled()

    ref = system.spawn(Behaviors.receive(receive), "becomes-deaf")
    assert await system.ask(ref, lambda r: Ping(r), timeout=1.0) == "pong"
    ref.tell("ignore")
    assert await system.ask_or_none(ref, lambda r: Ping(r), timeout=1.0) is None


async def test_restart_behavior_reruns_setup_and_resets_state(system: ActorSystem) -> None:
    setups: list[int] = []

    async def factory(ctx: ActorContext[Any]) -> Behavior[Any]:
        setups.append(len(setups))
        return counter()

    async with system.event_stream.subscription(ActorRestarted) as restarted:
        ref = system.spawn(Behaviors.setup(factory), "restartable")
        ref.tell(Add(5))
        ref.tell(Restart())
        ref.tell(Add(2))  # queued before the restart happens: kept in the mailbox
        assert await system.ask(ref, lambda r: Get(r), timeout=1.0) == 2
        event = await receive_matching(restarted, lambda e: e.ref == ref)
    assert event.ref == ref
    assert setups == [0, 1]


async def test_a_plain_setup_factory_runs_before_the_first_message(
    system: ActorSystem,
) -> None:
    setups: list[ActorRef[Any]] = []

    def factory(ctx: ActorContext[Any]) -> Behavior[Any]:
        setups.append(ctx.self)
        ctx.spawn(Behaviors.ignore(), "child")  # started at once, as from an async setup
        return counter(100)

    ref = system.spawn(Behaviors.setup(factory), "plain-setup")
    ref.tell(Add(1))
    assert await system.ask(ref, lambda r: Get(r), timeout=1.0) == 101
    assert setups == [ref]
    assert system.lookup("/plain-setup/child") is not None


async def test_restart_reruns_a_plain_setup_factory(system: ActorSystem) -> None:
    setups: list[int] = []

    def factory(ctx: ActorContext[Any]) -> Behavior[Any]:
        setups.append(len(setups))
        return counter()

    async with system.event_stream.subscription(ActorRestarted) as restarted:
        ref = system.spawn(Behaviors.setup(factory), "plain-restartable")
        ref.tell(Add(5))
        ref.tell(Restart())
        ref.tell(Add(2))
        assert await system.ask(ref, lambda r: Get(r), timeout=1.0) == 2
        await receive_matching(restarted, lambda e: e.ref == ref)
    assert setups == [0, 1]


async def test_a_failure_restarts_through_a_plain_setup_factory(system: ActorSystem) -> None:
    setups: list[int] = []

    def factory(ctx: ActorContext[Any]) -> Behavior[Any]:
        setups.append(len(setups))

        async def receive(ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
            if msg == "boom":
                raise RuntimeError("boom")
            if isinstance(msg, Get):
                msg.reply_to.tell(len(setups))
            return Behaviors.same()

        return Behaviors.receive(receive)

    ref = system.spawn(
        Behaviors.supervise(Behaviors.setup(factory), OneForOneStrategy()), "plain-supervised"
    )
    ref.tell("boom")
    assert await system.ask(ref, lambda r: Get(r), timeout=1.0) == 2
    assert setups == [0, 1]


async def test_a_setup_factory_may_return_any_awaitable(system: ActorSystem) -> None:
    # Told apart by what the factory returns, not by how it is defined.
    async def later(n: int) -> Behavior[Any]:
        await trio.lowlevel.checkpoint()
        return counter(n)

    ref = system.spawn(Behaviors.setup(lambda ctx: later(40)), "awaitable-setup")
    ref.tell(Add(2))
    assert await system.ask(ref, lambda r: Get(r), timeout=1.0) == 42


async def test_a_plain_setup_factory_returning_none_fails_clearly() -> None:
    def factory(ctx: ActorContext[Any]) -> Any:
        return None

    with pytest.raises(TypeError, match="a handler or setup returned None"):
        async with ActorSystem(name="none-setup") as failing:
            failing.spawn(
                Behaviors.supervise(
                    Behaviors.setup(factory),
                    OneForOneStrategy(decider=lambda exc: Directive.escalate),
                ),
                "none",
            )
            await trio.sleep_forever()


async def test_setup_returning_stopped_stops_the_actor(system: ActorSystem) -> None:
    # Akka semantics: a factory may decide the actor should not run at all.
    async def factory(ctx: ActorContext[Any]) -> Behavior[Any]:
        return Behaviors.stopped()

    async with system.event_stream.subscription(ActorStopped) as stopped:
        ref = system.spawn(Behaviors.setup(factory), "stillborn")
        await receive_matching(stopped, lambda e: e.ref == ref)
    assert system.lookup("/stillborn") is None


async def test_frozen_dataclass_messages(system: ActorSystem) -> None:
    async def receive(ctx: ActorContext[Ping], msg: Ping) -> Behavior[Ping]:
        msg.reply_to.tell(f"pong from {ctx.self.path}")
        return Behaviors.same()

    ref = system.spawn(Behaviors.receive(receive), "dc")
    assert await system.ask(ref, lambda r: Ping(r), timeout=1.0) == "pong from /dc"


async def test_handler_returning_none_fails_the_actor_with_a_clear_error(
    system: ActorSystem, caplog: Any
) -> None:
    async def forgetful(ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
        return None  # type: ignore[return-value]  # the classic mistake: no return

    async with system.event_stream.subscription(ActorStopped) as stopped:
        ref = system.spawn(Behaviors.receive(forgetful), "forgetful")
        ref.tell("hello")
        await receive_matching(stopped, lambda e: e.ref == ref)
    messages = [r.getMessage() for r in caplog.records] + [
        str(r.exc_info[1]) for r in caplog.records if r.exc_info
    ]
    assert any("returned None" in m and "Behaviors.same()" in m for m in messages)


async def test_behaviors_of_other_kinds_are_rejected_clearly(
    system: ActorSystem, caplog: Any
) -> None:
    async def wrong(ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
        return "same"  # type: ignore[return-value]

    async with system.event_stream.subscription(ActorStopped) as stopped:
        ref = system.spawn(Behaviors.receive(wrong), "wrong")
        ref.tell("hello")
        await receive_matching(stopped, lambda e: e.ref == ref)
    assert any(
        r.exc_info and "expected a Behavior, got str" in str(r.exc_info[1]) for r in caplog.records
    )
