"""ActorSystem: lifecycle of the block, spawning, names, lookup, shutdown and task ownership."""

from __future__ import annotations

import logging
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
    ActorSystemError,
    Behavior,
    Behaviors,
    CastyError,
    DeadLetter,
)
from casty_trio.testing import TestProbe
from tests._helpers import count_tasks, drain_nowait, receive_matching


@attrs.frozen
class Get:
    reply_to: ActorRef[Any]


@attrs.frozen
class Put:
    value: Any


def cell(value: Any = None) -> Behavior[Any]:
    """Holds one value; Put replaces it, Get replies with it."""

    async def receive(ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
        match msg:
            case Put(new):
                return cell(new)
            case Get(reply_to):
                reply_to.tell(value)
        return Behaviors.same()

    return Behaviors.receive(receive)


def recording_post_stop(behavior: Behavior[Any], log: list[str]) -> Behavior[Any]:
    async def post_stop(ctx: ActorContext[Any]) -> None:
        log.append(ctx.self.path)

    return Behaviors.with_lifecycle(behavior, post_stop=post_stop)


def tree(log: list[str], depth: int) -> Behavior[Any]:
    """An actor that spawns a child ``c`` (which spawns its own child ...) ``depth`` levels deep."""

    async def factory(ctx: ActorContext[Any]) -> Behavior[Any]:
        if depth > 0:
            ctx.spawn(tree(log, depth - 1), f"c{depth}")
        return cell()

    return recording_post_stop(Behaviors.setup(factory), log)


async def test_async_with_yields_the_running_system() -> None:
    system = ActorSystem(name="bank")
    async with system as entered:
        assert entered is system
        assert system.name == "bank"
        ref = system.spawn(cell(1), "acc")
        assert await system.ask(ref, lambda r: Get(r), timeout=1.0) == 1


async def test_default_name() -> None:
    async with ActorSystem() as system:
        assert system.name == "casty-system"


async def test_spawn_is_synchronous_and_returns_a_ref_with_path(system: ActorSystem) -> None:
    ref = system.spawn(cell(), "acc-1")  # no await
    assert isinstance(ref, ActorRef)
    assert ref.path == "/acc-1"
    assert ref.address.path == "/acc-1"
    assert ref.address.node is None
    ref.tell(Put("x"))
    assert await system.ask(ref, lambda r: Get(r), timeout=1.0) == "x"


async def test_duplicate_root_name_raises_value_error(system: ActorSystem) -> None:
    system.spawn(cell(), "dup")
    with pytest.raises(ValueError):
        system.spawn(cell(), "dup")


@pytest.mark.parametrize("name", ["", "a/b", "/a", "$system"])
async def test_invalid_names_raise_value_error(system: ActorSystem, name: str) -> None:
    with pytest.raises(ValueError):
        system.spawn(cell(), name)


async def test_lookup_finds_root_and_child_actors(system: ActorSystem) -> None:
    children: list[ActorRef[Any]] = []

    async def parent(ctx: ActorContext[Any]) -> Behavior[Any]:
        children.append(ctx.spawn(cell("child"), "child"))
        return cell("parent")

    ref = system.spawn(Behaviors.setup(parent), "parent")
    assert await system.ask(ref, lambda r: Get(r), timeout=1.0) == "parent"
    assert system.lookup("/parent") == ref
    assert system.lookup("/parent/child") == children[0]
    assert children[0].path == "/parent/child"
    assert system.lookup("/nobody") is None
    assert system.lookup("/parent/nobody") is None
    found = system.lookup("/parent/child")
    assert found is not None
    assert await system.ask(found, lambda r: Get(r), timeout=1.0) == "child"


async def test_refs_are_hashable_and_equal_by_address(system: ActorSystem) -> None:
    a = system.spawn(cell(), "a")
    b = system.spawn(cell(), "b")
    looked_up = system.lookup("/a")
    assert looked_up == a
    assert hash(looked_up) == hash(a)
    assert a != b
    assert {a: 1, b: 2}[looked_up] == 1


async def test_entering_twice_raises() -> None:
    async with ActorSystem(name="once") as system:
        with pytest.raises(ActorSystemError):
            async with system:
                pass  # pragma: no cover
        # The system is still fine after the refused re-entry.
        ref = system.spawn(cell(1), "still-works")
        assert await system.ask(ref, lambda r: Get(r), timeout=1.0) == 1
    with pytest.raises(ActorSystemError):
        async with system:
            pass  # pragma: no cover


def test_actor_system_error_is_casty_and_runtime_error() -> None:
    assert issubclass(ActorSystemError, CastyError)
    assert issubclass(ActorSystemError, RuntimeError)


async def test_spawn_before_enter_raises() -> None:
    system = ActorSystem(name="not-yet")
    with pytest.raises(ActorSystemError):
        system.spawn(cell(), "early")


async def test_spawn_and_ask_after_shutdown_raise() -> None:
    async with ActorSystem(name="closed") as system:
        ref = system.spawn(cell(), "a")
    with pytest.raises(ActorSystemError):
        system.spawn(cell(), "late")
    with pytest.raises(ActorSystemError):
        await system.ask(ref, lambda r: Get(r), timeout=1.0)


async def test_shutdown_early_stops_actors_and_runs_post_stop() -> None:
    stopped: list[str] = []
    async with ActorSystem(name="early") as system:
        system.spawn(recording_post_stop(cell(), stopped), "a")
        system.spawn(recording_post_stop(cell(), stopped), "b")
        await system.shutdown()
        assert sorted(stopped) == ["/a", "/b"]
        assert system.lookup("/a") is None
        with pytest.raises(ActorSystemError):
            system.spawn(cell(), "c")
        await system.shutdown()  # idempotent
    assert sorted(stopped) == ["/a", "/b"]  # post_stop ran exactly once each


async def test_leaving_the_block_stops_children_before_parents() -> None:
    stopped: list[str] = []
    async with ActorSystem(name="order") as system:
        root = system.spawn(tree(stopped, depth=3), "root")
        other = system.spawn(tree(stopped, depth=1), "other")
        for ref in (root, other):
            assert await system.ask(ref, lambda r: Get(r), timeout=1.0) is None
        await trio.testing.wait_all_tasks_blocked()
        assert system.lookup("/root/c3/c2/c1") is not None
    assert sorted(stopped) == sorted(
        ["/root", "/root/c3", "/root/c3/c2", "/root/c3/c2/c1", "/other", "/other/c1"]
    )
    chain = ["/root/c3/c2/c1", "/root/c3/c2", "/root/c3", "/root"]
    assert [p for p in stopped if p in chain] == chain
    assert stopped.index("/other/c1") < stopped.index("/other")


async def test_system_stop_stops_a_root_actor(system: ActorSystem) -> None:
    stopped: list[str] = []
    async with system.event_stream.subscription(ActorStopped) as events:
        ref = system.spawn(tree(stopped, depth=1), "victim")
        assert await system.ask(ref, lambda r: Get(r), timeout=1.0) is None  # started
        system.stop(ref)
        await receive_matching(events, lambda e: e.ref == ref)
    await trio.testing.wait_all_tasks_blocked()
    assert stopped == ["/victim/c1", "/victim"]
    assert system.lookup("/victim") is None
    # The name is free again once the actor has stopped.
    again = system.spawn(cell(2), "victim")
    assert await system.ask(again, lambda r: Get(r), timeout=1.0) == 2


async def test_stop_right_after_spawn_is_clean(
    system: ActorSystem, caplog: pytest.LogCaptureFixture
) -> None:
    # Akka semantics: a stop request does not make the pending setup fail; spawning children in
    # setup is legal, the actor (and those children) then simply stop. No error is logged.
    stopped: list[str] = []
    async with system.event_stream.subscription(ActorStopped) as events:
        ref = system.spawn(tree(stopped, depth=1), "hasty")
        system.stop(ref)
        await receive_matching(events, lambda e: e.ref == ref)
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert stopped[-1] == "/hasty"


async def test_body_exception_propagates_unwrapped_and_actors_stop() -> None:
    stopped: list[str] = []
    with pytest.raises(KeyError, match="from the body"):
        async with ActorSystem(name="body-fails") as system:
            system.spawn(recording_post_stop(cell(), stopped), "a")
            await trio.testing.wait_all_tasks_blocked()
            raise KeyError("from the body")
    assert stopped == ["/a"]


async def test_body_cancellation_is_not_swallowed() -> None:
    with trio.move_on_after(0) as scope:
        async with ActorSystem(name="cancelled") as system:
            system.spawn(cell(), "a")
            await trio.sleep_forever()
    assert scope.cancelled_caught


async def test_two_systems_in_one_run_do_not_interfere() -> None:
    async with ActorSystem(name="one") as one, ActorSystem(name="two") as two:
        a1 = one.spawn(cell("one"), "same-name")
        a2 = two.spawn(cell("two"), "same-name")  # no ValueError: different systems
        assert a1 != a2
        assert await one.ask(a1, lambda r: Get(r), timeout=1.0) == "one"
        assert await two.ask(a2, lambda r: Get(r), timeout=1.0) == "two"
        only_in_one = one.spawn(cell(), "only-in-one")
        assert one.lookup("/only-in-one") == only_in_one
        assert two.lookup("/only-in-one") is None
        assert one.lookup("/same-name") == a1
        assert two.lookup("/same-name") == a2

        async with two.event_stream.subscription(DeadLetter) as two_dead:
            async with one.event_stream.subscription(DeadLetter) as one_dead:
                one.stop(only_in_one)
                await trio.testing.wait_all_tasks_blocked()
                only_in_one.tell("lost")
                letter = await receive_matching(one_dead, lambda d: True)
                assert letter.message == "lost"
            await trio.testing.wait_all_tasks_blocked()
            with pytest.raises(trio.WouldBlock):
                two_dead.receive_nowait()

        await one.shutdown()
        # `two` keeps working after `one` is gone.
        assert await two.ask(a2, lambda r: Get(r), timeout=1.0) == "two"


async def test_no_task_outlives_the_system(autojump_clock: Any) -> None:
    @attrs.frozen
    class Tick:
        pass

    job_cancelled = trio.Event()

    async def forever() -> None:
        try:
            await trio.sleep_forever()
        except trio.Cancelled:
            job_cancelled.set()
            raise

    def busy(depth: int) -> Behavior[Any]:
        def with_timers(ctx: ActorContext[Any], timers: Any) -> Behavior[Any]:
            timers.start_periodic("tick", Tick(), 1.0)
            ctx.pipe_to_self(forever)
            if depth > 0:
                ctx.spawn(busy(depth - 1), "child")
            return Behaviors.ignore()

        return Behaviors.with_timers(with_timers)

    before = count_tasks()
    async with ActorSystem(name="owner") as system:
        for i in range(3):
            system.spawn(busy(2), f"busy-{i}")
        probe = TestProbe(system)
        probe.ref.tell("hello")
        await probe.expect_message("hello")
        await trio.sleep(3.5)
        assert count_tasks() > before
    assert count_tasks() == before
    assert job_cancelled.is_set()


async def test_leaving_the_block_cancels_a_handler_that_never_returns(
    autojump_clock: Any,
) -> None:
    entered = trio.Event()
    stopped: list[str] = []

    async def receive(ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
        entered.set()
        await trio.sleep_forever()
        return Behaviors.same()  # pragma: no cover

    # SPEC §1: leaving the block "cancels every task it owns"; a generous (virtual) grace period
    # is allowed, but shutdown must not wait forever for a handler that never returns.
    with trio.fail_after(60):
        async with ActorSystem(name="stuck") as system:
            ref = system.spawn(recording_post_stop(Behaviors.receive(receive), stopped), "stuck")
            ref.tell("go")
            await entered.wait()
    assert stopped == ["/stuck"]


# --- lazily started actors (no task until the first message) -------------------------------


async def test_plain_receive_actors_get_a_task_only_when_messaged() -> None:
    async with ActorSystem(name="lazy") as system:
        await trio.testing.wait_all_tasks_blocked()
        before = count_tasks()
        refs = [system.spawn(Behaviors.ignore(), f"idle-{i}") for i in range(50)]
        await trio.testing.wait_all_tasks_blocked()
        assert count_tasks() == before  # spawned, alive, addressable, but no task yet
        assert system.lookup("/idle-7") == refs[7]
        for ref in refs[:10]:
            ref.tell("wake up")
        await trio.testing.wait_all_tasks_blocked()
        assert count_tasks() == before + 10


async def test_forced_shutdown_terminates_children_that_never_had_a_task(
    autojump_clock: Any,
) -> None:
    async def stuck(ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
        await trio.sleep_forever()
        return Behaviors.same()  # pragma: no cover

    async def parent_setup(ctx: ActorContext[Any]) -> Behavior[Any]:
        ctx.spawn(Behaviors.ignore(), "lazy-child")  # never messaged: never gets a task
        return Behaviors.receive(stuck)

    async with (
        ActorSystem(name="forced") as system,
        system.event_stream.subscription(ActorStopped) as stopped,
    ):
        parent = system.spawn(Behaviors.setup(parent_setup), "parent")
        await trio.testing.wait_all_tasks_blocked()
        assert system.lookup("/parent/lazy-child") is not None
        parent.tell("block")  # the parent never reaches its stop sequence
        await trio.testing.wait_all_tasks_blocked()
        await system.shutdown(timeout=5)
        assert system.lookup("/parent/lazy-child") is None
        paths = [event.ref.path for event in drain_nowait(stopped)]
    assert paths == ["/parent/lazy-child", "/parent"]  # children first, even when forced
