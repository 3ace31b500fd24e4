"""Mailboxes: bounded overflow strategies, dead letters, FIFO order."""

from __future__ import annotations

import itertools
from typing import Any

import attrs
import pytest
import trio
import trio.testing

from casty_trio import (
    ActorContext,
    ActorRef,
    ActorRestarted,
    ActorStopped,
    ActorSystem,
    Behavior,
    Behaviors,
    CastyError,
    DeadLetter,
    Directive,
    Mailbox,
    MailboxFullError,
    MailboxOverflowStrategy,
    OneForOneStrategy,
    Terminated,
)
from casty_trio._core._cell import _BATCH
from tests._helpers import drain_nowait, receive_matching


@attrs.frozen
class Block:
    pass


@attrs.frozen
class Get:
    reply_to: ActorRef[list[Any]]


@attrs.define
class Gate:
    """Lets a test hold an actor inside its handler: ``entered`` is set once it is blocked."""

    entered: trio.Event = attrs.field(factory=trio.Event)
    release: trio.Event = attrs.field(factory=trio.Event)


def gated(gate: Gate, processed: list[Any]) -> Behavior[Any]:
    async def receive(ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
        match msg:
            case Block():
                gate.entered.set()
                await gate.release.wait()
            case Get(reply_to):
                reply_to.tell(list(processed))
            case _:
                processed.append(msg)
        return Behaviors.same()

    return Behaviors.receive(receive)


async def spawn_blocked(
    system: ActorSystem, mailbox: Mailbox | None, processed: list[Any]
) -> tuple[ActorRef[Any], Gate]:
    gate = Gate()
    ref = system.spawn(gated(gate, processed), "blocked", mailbox=mailbox)
    ref.tell(Block())
    with trio.fail_after(1):
        await gate.entered.wait()
    return ref, gate


async def release_and_settle(gate: Gate) -> None:
    gate.release.set()
    await trio.testing.wait_all_tasks_blocked()


async def test_drop_new_drops_incoming_messages_when_full(system: ActorSystem) -> None:
    processed: list[Any] = []
    mailbox = Mailbox(capacity=3, overflow=MailboxOverflowStrategy.drop_new)
    async with system.event_stream.subscription(DeadLetter) as dead_letters:
        ref, gate = await spawn_blocked(system, mailbox, processed)
        for i in range(1, 6):
            ref.tell(i)  # never raises with drop_new
        letters = [await receive_matching(dead_letters, lambda d: True) for _ in range(2)]
        await release_and_settle(gate)
        assert drain_nowait(dead_letters) == []
    assert letters == [DeadLetter(4, ref), DeadLetter(5, ref)]
    assert processed == [1, 2, 3]


async def test_drop_new_is_the_default_overflow(system: ActorSystem) -> None:
    processed: list[Any] = []
    async with system.event_stream.subscription(DeadLetter) as dead_letters:
        ref, gate = await spawn_blocked(system, Mailbox(capacity=2), processed)
        for i in range(1, 4):
            ref.tell(i)
        letter = await receive_matching(dead_letters, lambda d: True)
        await release_and_settle(gate)
    assert letter == DeadLetter(3, ref)
    assert processed == [1, 2]


async def test_drop_oldest_drops_queued_messages_when_full(system: ActorSystem) -> None:
    processed: list[Any] = []
    mailbox = Mailbox(capacity=3, overflow=MailboxOverflowStrategy.drop_oldest)
    async with system.event_stream.subscription(DeadLetter) as dead_letters:
        ref, gate = await spawn_blocked(system, mailbox, processed)
        for i in range(1, 6):
            ref.tell(i)
        letters = [await receive_matching(dead_letters, lambda d: True) for _ in range(2)]
        await release_and_settle(gate)
        assert drain_nowait(dead_letters) == []
    assert letters == [DeadLetter(1, ref), DeadLetter(2, ref)]
    assert processed == [3, 4, 5]


async def test_reject_raises_mailbox_full_error(system: ActorSystem) -> None:
    processed: list[Any] = []
    mailbox = Mailbox(capacity=3, overflow=MailboxOverflowStrategy.reject)
    async with system.event_stream.subscription(DeadLetter) as dead_letters:
        ref, gate = await spawn_blocked(system, mailbox, processed)
        for i in range(1, 4):
            ref.tell(i)
        with pytest.raises(MailboxFullError):
            ref.tell(4)
        with pytest.raises(MailboxFullError):
            ref.tell(5)
        letters = [await receive_matching(dead_letters, lambda d: True) for _ in range(2)]
        await release_and_settle(gate)
        assert drain_nowait(dead_letters) == []
    assert letters == [DeadLetter(4, ref), DeadLetter(5, ref)]
    assert processed == [1, 2, 3]
    # Once drained, the mailbox accepts messages again.
    ref.tell(6)
    assert await system.ask(ref, lambda r: Get(r), timeout=1.0) == [1, 2, 3, 6]


def test_mailbox_full_error_is_a_casty_error() -> None:
    assert issubclass(MailboxFullError, CastyError)


async def test_bounded_child_mailbox(system: ActorSystem) -> None:
    processed: list[Any] = []
    gate = Gate()
    children: list[ActorRef[Any]] = []

    async def parent(ctx: ActorContext[Any]) -> Behavior[Any]:
        children.append(ctx.spawn(gated(gate, processed), "child", mailbox=Mailbox(capacity=1)))
        return Behaviors.ignore()

    async with system.event_stream.subscription(DeadLetter) as dead_letters:
        system.spawn(Behaviors.setup(parent), "parent")
        await trio.testing.wait_all_tasks_blocked()
        (child,) = children
        child.tell(Block())
        with trio.fail_after(1):
            await gate.entered.wait()
        child.tell("kept")
        child.tell("dropped")
        letter = await receive_matching(dead_letters, lambda d: True)
        await release_and_settle(gate)
    assert letter == DeadLetter("dropped", child)
    assert processed == ["kept"]


async def test_tell_to_a_stopped_actor_is_a_dead_letter(system: ActorSystem) -> None:
    async with system.event_stream.subscription(ActorStopped) as stopped:
        ref = system.spawn(Behaviors.ignore(), "gone")
        system.stop(ref)
        await receive_matching(stopped, lambda e: e.ref == ref)
    async with system.event_stream.subscription(DeadLetter) as dead_letters:
        ref.tell("hello?")
        letter = await receive_matching(dead_letters, lambda d: True)
    assert letter == DeadLetter("hello?", ref)
    assert letter.message == "hello?"
    assert letter.intended_ref == ref


async def test_fifo_order_of_ten_thousand_messages(system: ActorSystem) -> None:
    received: list[int] = []

    async def receive(ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
        match msg:
            case int():
                received.append(msg)
            case Get(reply_to):
                reply_to.tell([len(received)])
        return Behaviors.same()

    async with system.event_stream.subscription(DeadLetter) as dead_letters:
        ref = system.spawn(Behaviors.receive(receive), "fifo")
        for i in range(10_000):
            ref.tell(i)
        assert await system.ask(ref, lambda r: Get(r), timeout=5.0) == [10_000]
        assert drain_nowait(dead_letters) == []  # unbounded by default: nothing dropped
    assert received == list(range(10_000))


async def test_fifo_from_an_actor_sender(system: ActorSystem) -> None:
    received: list[int] = []

    async def sink(ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
        match msg:
            case int():
                received.append(msg)
            case Get(reply_to):
                reply_to.tell(list(received))
        return Behaviors.same()

    target = system.spawn(Behaviors.receive(sink), "sink")

    async def sender(ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
        for i in range(msg):
            target.tell(i)
        return Behaviors.same()

    src = system.spawn(Behaviors.receive(sender), "sender")
    src.tell(500)
    src.tell(500)
    await trio.testing.wait_all_tasks_blocked()
    assert await system.ask(target, lambda r: Get(r), timeout=5.0) == [*range(500), *range(500)]


async def test_a_busy_actor_lets_other_tasks_run_every_batch(system: ActorSystem) -> None:
    # An actor that keeps its own mailbox full (it tells itself the next message) never finds
    # it empty: it must still yield to the other tasks every _BATCH messages.
    handled: list[int] = []
    total = 8 * _BATCH

    async def receive(ctx: ActorContext[int], n: int) -> Behavior[int]:
        handled.append(n)
        if n < total:
            ctx.self.tell(n + 1)
        return Behaviors.same()

    seen_at: list[int] = []
    system.spawn(Behaviors.receive(receive), "busy").tell(1)
    while len(handled) < total:
        seen_at.append(len(handled))
        await trio.lowlevel.checkpoint()
    # Trio runs a round's tasks in a random order, so the actor may run twice between two
    # turns of this task, never more.
    gaps = [b - a for a, b in itertools.pairwise([0, *seen_at, total])]
    assert max(gaps) <= 2 * _BATCH, gaps


# --- internal control messages and the bound ------------------------------------------------


@attrs.frozen
class WatchIt:
    target: ActorRef[Any]


def gated_watcher(gate: Gate, processed: list[Any]) -> Behavior[Any]:
    """Like ``gated``, and watches what it is told to in a ``WatchIt``."""
    inner = gated(gate, processed)

    async def receive(ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
        if isinstance(msg, WatchIt):
            ctx.watch(msg.target)
            return Behaviors.same()
        return await inner.handler(ctx, msg)

    return Behaviors.receive(receive)


async def spawn_blocked_watcher(
    system: ActorSystem, mailbox: Mailbox[Any], processed: list[Any]
) -> tuple[ActorRef[Any], Gate]:
    """A watcher of a fresh actor that stopped while the watcher is held in its handler: the
    ``Terminated`` for it waits in the watcher's mailbox."""
    gate = Gate()
    target = system.spawn(Behaviors.ignore(), "target")
    ref = system.spawn(gated_watcher(gate, processed), "watcher", mailbox=mailbox)
    ref.tell(WatchIt(target))
    ref.tell(Block())
    with trio.fail_after(1):
        await gate.entered.wait()
    async with system.event_stream.subscription(ActorStopped) as stopped:
        system.stop(target)
        await receive_matching(stopped, lambda e: e.ref == target)
    return ref, gate


@pytest.mark.parametrize("overflow", list(MailboxOverflowStrategy))
async def test_a_queued_terminated_is_never_evicted_nor_counted(
    system: ActorSystem, overflow: MailboxOverflowStrategy
) -> None:
    processed: list[Any] = []
    mailbox = Mailbox(capacity=2, overflow=overflow)
    async with system.event_stream.subscription(DeadLetter) as dead_letters:
        ref, gate = await spawn_blocked_watcher(system, mailbox, processed)
        ref.tell(1)
        ref.tell(2)  # the queued Terminated does not count: both fit
        if overflow is MailboxOverflowStrategy.reject:
            with pytest.raises(MailboxFullError):
                ref.tell(3)
        else:
            ref.tell(3)
        await release_and_settle(gate)
        letters = drain_nowait(dead_letters)
    dropped = 1 if overflow is MailboxOverflowStrategy.drop_oldest else 3
    assert letters == [DeadLetter(dropped, ref)]
    kept = [m for m in processed if isinstance(m, int)]
    assert kept == ([2, 3] if overflow is MailboxOverflowStrategy.drop_oldest else [1, 2])
    terminated = [m for m in processed if isinstance(m, Terminated)]
    assert [t.ref.path for t in terminated] == ["/target"]


async def test_an_escalated_child_failure_is_never_evicted(system: ActorSystem) -> None:
    gate = Gate()
    started: list[str] = []
    children: list[ActorRef[Any]] = []

    async def child_receive(ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
        raise ValueError("child fails")

    async def factory(ctx: ActorContext[Any]) -> Behavior[Any]:
        started.append("parent")
        children.append(
            ctx.spawn(
                Behaviors.supervise(
                    Behaviors.receive(child_receive),
                    OneForOneStrategy(decider=lambda e: Directive.escalate),
                ),
                "child",
            )
        )
        return gated(gate, [])

    parent = Behaviors.supervise(
        Behaviors.setup(factory), OneForOneStrategy(decider=lambda e: Directive.restart)
    )
    mailbox = Mailbox(capacity=1, overflow=MailboxOverflowStrategy.drop_oldest)
    async with system.event_stream.subscription(DeadLetter) as dead_letters:
        async with system.event_stream.subscription(ActorRestarted) as restarted:
            ref = system.spawn(parent, "parent", mailbox=mailbox)
            ref.tell(Block())
            with trio.fail_after(1):
                await gate.entered.wait()
            async with system.event_stream.subscription(ActorStopped) as stopped:
                children[0].tell("fail")
                await receive_matching(stopped, lambda e: e.ref == children[0])
            ref.tell("a")
            ref.tell("b")  # evicts "a", never the queued escalation
            await release_and_settle(gate)
            event = await receive_matching(restarted, lambda e: e.ref == ref)
        letters = drain_nowait(dead_letters)
    assert str(event.exception) == "child fails"
    assert started == ["parent", "parent"]
    assert all(not type(d.message).__name__.startswith("_") for d in letters)
    assert DeadLetter("a", ref) in letters
