"""ActorContext: identity, children, stop, pipe_to_self, interceptors, log, spy."""

from __future__ import annotations

import logging
from collections.abc import Callable
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
    DeadLetter,
    OneForOneStrategy,
    SpyEvent,
    Terminated,
)
from casty_trio.testing import TestProbe
from tests._helpers import drain_nowait, receive_matching


@attrs.frozen
class Run:
    """Run ``fn(ctx)`` inside the actor and reply with its result (or the exception it raised)."""

    fn: Callable[[ActorContext[Any]], Any]
    reply_to: ActorRef[Any]


@attrs.frozen
class Raised:
    exc: Exception


def runner(
    setup: Callable[[ActorContext[Any]], Any] | None = None,
    on_other: Callable[[ActorContext[Any], Any], Any] | None = None,
) -> Behavior[Any]:
    """An actor that runs test code in its own context on request.

    ``setup(ctx)`` runs in its setup; ``on_other(ctx, msg)`` sees every message that is not a Run.
    """

    async def factory(ctx: ActorContext[Any]) -> Behavior[Any]:
        if setup is not None:
            setup(ctx)

        async def receive(ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
            match msg:
                case Run(fn, reply_to):
                    try:
                        reply_to.tell(fn(ctx))
                    except Exception as exc:
                        reply_to.tell(Raised(exc))
                case _ if on_other is not None:
                    on_other(ctx, msg)
            return Behaviors.same()

        return Behaviors.receive(receive)

    return Behaviors.setup(factory)


async def run_in(system: ActorSystem, ref: ActorRef[Any], fn: Callable[..., Any]) -> Any:
    return await system.ask(ref, lambda r: Run(fn, r), timeout=1.0)


def spawn_children(*names: str) -> Callable[[ActorContext[Any]], None]:
    def setup(ctx: ActorContext[Any]) -> None:
        for name in names:
            ctx.spawn(runner(), name)

    return setup


# --- identity ------------------------------------------------------------------------------


async def test_context_identity(system: ActorSystem) -> None:
    parent = system.spawn(runner(spawn_children("kid")), "parent")
    assert await run_in(system, parent, lambda ctx: ctx.self) == parent
    assert await run_in(system, parent, lambda ctx: ctx.system is system)
    assert await run_in(system, parent, lambda ctx: (ctx.name, ctx.path)) == ("parent", "/parent")
    assert await run_in(system, parent, lambda ctx: ctx.parent) is None

    kid = await run_in(system, parent, lambda ctx: ctx.child("kid"))
    assert kid is not None
    assert kid.path == "/parent/kid"
    assert await run_in(system, kid, lambda ctx: ctx.parent) == parent
    assert await run_in(system, kid, lambda ctx: (ctx.name, ctx.path)) == ("kid", "/parent/kid")


async def test_log_is_a_logger_named_after_the_path(
    system: ActorSystem, caplog: pytest.LogCaptureFixture
) -> None:
    parent = system.spawn(runner(spawn_children("kid")), "parent")
    kid = await run_in(system, parent, lambda ctx: ctx.child("kid"))
    logger = await run_in(system, kid, lambda ctx: ctx.log)
    assert isinstance(logger, logging.Logger)
    assert "/parent/kid" in logger.name

    with caplog.at_level(logging.INFO):
        await run_in(system, kid, lambda ctx: ctx.log.info("hello from the kid"))
    records = [r for r in caplog.records if r.getMessage() == "hello from the kid"]
    assert records
    assert "/parent/kid" in records[0].name


# --- children ------------------------------------------------------------------------------


async def test_children_and_child_by_name(system: ActorSystem) -> None:
    parent = system.spawn(runner(spawn_children("a", "b")), "parent")
    children = await run_in(system, parent, lambda ctx: ctx.children)
    assert isinstance(children, tuple)
    assert sorted(c.path for c in children) == ["/parent/a", "/parent/b"]
    a = await run_in(system, parent, lambda ctx: ctx.child("a"))
    assert a in children
    assert a == system.lookup("/parent/a")
    assert await run_in(system, parent, lambda ctx: ctx.child("nope")) is None
    assert await run_in(system, a, lambda ctx: ctx.children) == ()


async def test_duplicate_child_name_raises_value_error(system: ActorSystem) -> None:
    parent = system.spawn(runner(spawn_children("a")), "parent")
    result = await run_in(system, parent, lambda ctx: ctx.spawn(runner(), "a"))
    assert isinstance(result, Raised)
    assert isinstance(result.exc, ValueError)


@pytest.mark.parametrize("name", ["", "x/y", "$tmp"])
async def test_invalid_child_name_raises_value_error(system: ActorSystem, name: str) -> None:
    parent = system.spawn(runner(), "parent")
    result = await run_in(system, parent, lambda ctx: ctx.spawn(runner(), name))
    assert isinstance(result, Raised)
    assert isinstance(result.exc, ValueError)


async def test_child_spawned_in_a_handler_gets_messages_told_at_once(
    system: ActorSystem, probe: TestProbe
) -> None:
    def spawn_and_tell(ctx: ActorContext[Any]) -> ActorRef[Any]:
        child = ctx.spawn(probe_forwarder(probe), "late-child")
        child.tell("first")
        child.tell("second")
        return child

    parent = system.spawn(runner(), "parent")
    child = await run_in(system, parent, spawn_and_tell)
    assert child.path == "/parent/late-child"
    assert await probe.receive_messages(2) == ["first", "second"]


def probe_forwarder(probe: TestProbe) -> Behavior[Any]:
    async def receive(ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
        probe.ref.tell(msg)
        return Behaviors.same()

    return Behaviors.receive(receive)


# --- stop ----------------------------------------------------------------------------------


async def test_stop_child(system: ActorSystem, probe: TestProbe) -> None:
    def setup(ctx: ActorContext[Any]) -> None:
        ctx.watch(ctx.spawn(runner(), "a"))
        ctx.spawn(runner(), "b")

    def forward_terminated(ctx: ActorContext[Any], msg: Any) -> None:
        if isinstance(msg, Terminated):
            probe.ref.tell((msg, tuple(c.path for c in ctx.children)))

    parent = system.spawn(runner(setup, forward_terminated), "parent")
    a = await run_in(system, parent, lambda ctx: ctx.child("a"))
    assert await run_in(system, parent, lambda ctx: ctx.stop(a)) is None
    terminated, children_then = await probe.expect_message()
    assert terminated == Terminated(a)
    assert children_then == ("/parent/b",)  # gone from children by the time Terminated arrives
    assert await run_in(system, parent, lambda ctx: ctx.child("a")) is None


async def test_stop_self(system: ActorSystem) -> None:
    async with system.event_stream.subscription(ActorStopped) as stopped:
        ref = system.spawn(runner(), "quitter")
        ref.tell(Run(lambda ctx: ctx.stop(ctx.self), system.spawn(Behaviors.ignore(), "void")))
        await receive_matching(stopped, lambda e: e.ref == ref)
    assert system.lookup("/quitter") is None


async def test_stop_non_child_raises_value_error(system: ActorSystem) -> None:
    parent = system.spawn(runner(spawn_children("a", "b")), "parent")
    other_root = system.spawn(runner(), "other")
    a = await run_in(system, parent, lambda ctx: ctx.child("a"))
    b = await run_in(system, parent, lambda ctx: ctx.child("b"))
    await run_in(system, a, lambda ctx: ctx.spawn(runner(), "grandchild"))
    grandchild = system.lookup("/parent/a/grandchild")
    assert grandchild is not None

    for target, stopper in [(other_root, parent), (b, a), (parent, a), (grandchild, parent)]:
        result = await run_in(system, stopper, lambda ctx, t=target: ctx.stop(t))
        assert isinstance(result, Raised), f"{stopper.path} stopping {target.path}"
        assert isinstance(result.exc, ValueError)
    # Nobody was stopped.
    for ref in (other_root, a, b, parent, grandchild):
        assert await run_in(system, ref, lambda ctx: ctx.path) == ref.path


# --- pipe_to_self --------------------------------------------------------------------------


@attrs.frozen
class Loaded:
    value: Any


@attrs.frozen
class LoadFailed:
    reason: str


def piping(probe: TestProbe, start: Callable[[ActorContext[Any]], None]) -> Behavior[Any]:
    """Starts a pipe in setup; forwards every message it gets to ``probe``."""

    async def factory(ctx: ActorContext[Any]) -> Behavior[Any]:
        start(ctx)
        return probe_forwarder(probe)

    return Behaviors.setup(factory)


async def answer() -> int:
    await trio.lowlevel.checkpoint()
    return 42


async def broken() -> int:
    await trio.lowlevel.checkpoint()
    raise ValueError("backend down")


async def test_pipe_to_self_result_arrives_as_message(
    system: ActorSystem, probe: TestProbe
) -> None:
    system.spawn(piping(probe, lambda ctx: ctx.pipe_to_self(answer)), "raw")
    await probe.expect_message(42)


async def test_pipe_to_self_map_ok(system: ActorSystem, probe: TestProbe) -> None:
    system.spawn(piping(probe, lambda ctx: ctx.pipe_to_self(answer, map_ok=Loaded)), "mapped")
    await probe.expect_message(Loaded(42))


async def test_pipe_to_self_map_err(system: ActorSystem, probe: TestProbe) -> None:
    def start(ctx: ActorContext[Any]) -> None:
        ctx.pipe_to_self(broken, map_ok=Loaded, map_err=lambda exc: LoadFailed(str(exc)))

    ref = system.spawn(piping(probe, start), "failing-call")
    await probe.expect_message(LoadFailed("backend down"))
    assert system.lookup("/failing-call") == ref  # the actor itself did not fail


async def test_pipe_to_self_without_map_err_fails_the_actor(
    system: ActorSystem, probe: TestProbe
) -> None:
    starts: list[int] = []

    def start(ctx: ActorContext[Any]) -> None:
        starts.append(1)
        if len(starts) == 1:
            ctx.pipe_to_self(broken, map_ok=Loaded)

    async with system.event_stream.subscription(ActorRestarted) as restarted:
        ref = system.spawn(Behaviors.supervise(piping(probe, start), OneForOneStrategy()), "p")
        event = await receive_matching(restarted, lambda e: e.ref == ref)
    assert isinstance(event.exception, ValueError)
    assert str(event.exception) == "backend down"
    assert len(starts) == 2


async def test_pipe_to_self_without_map_err_unsupervised_stops(system: ActorSystem) -> None:
    async with system.event_stream.subscription(ActorStopped) as stopped:
        ref = system.spawn(
            piping(TestProbe(system), lambda ctx: ctx.pipe_to_self(broken)), "unsupervised"
        )
        await receive_matching(stopped, lambda e: e.ref == ref)


async def test_pipe_job_is_cancelled_when_the_actor_stops(
    system: ActorSystem, probe: TestProbe, autojump_clock: Any
) -> None:
    cancelled = trio.Event()

    async def slow() -> str:
        try:
            await trio.sleep(100.0)
        except trio.Cancelled:
            cancelled.set()
            raise
        return "too late"  # pragma: no cover

    async with system.event_stream.subscription(DeadLetter) as dead_letters:
        ref = system.spawn(piping(probe, lambda ctx: ctx.pipe_to_self(slow)), "slow")
        await trio.sleep(1.0)
        start = trio.current_time()
        system.stop(ref)
        with trio.fail_after(1.0):
            await cancelled.wait()
        assert trio.current_time() - start < 1.0
        await trio.sleep(200.0)
        assert drain_nowait(dead_letters) == []
    assert probe.messages_received == 0


# --- interceptors --------------------------------------------------------------------------


@attrs.frozen
class Secret:
    text: str


async def test_register_interceptor_consumes_matching_messages(
    system: ActorSystem, probe: TestProbe, autojump_clock: Any
) -> None:
    intercepted: list[Any] = []

    def intercept(msg: Any) -> bool:
        if isinstance(msg, Secret):
            intercepted.append(msg)
            return True
        return False

    async def factory(ctx: ActorContext[Any]) -> Behavior[Any]:
        ctx.register_interceptor(intercept)
        return probe_forwarder(probe)

    ref = system.spawn(Behaviors.setup(factory), "guarded")
    for msg in ("a", Secret("x"), "b", Secret("y"), "c"):
        ref.tell(msg)
    assert await probe.receive_messages(3) == ["a", "b", "c"]
    await probe.expect_no_message()
    assert intercepted == [Secret("x"), Secret("y")]


async def test_register_interceptor_from_a_handler(system: ActorSystem, probe: TestProbe) -> None:
    async def receive(ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
        if msg == "arm":
            ctx.register_interceptor(lambda m: isinstance(m, Secret))
        else:
            probe.ref.tell(msg)
        return Behaviors.same()

    ref = system.spawn(Behaviors.receive(receive), "late-guard")
    for msg in (Secret("before"), "arm", Secret("after"), "done"):
        ref.tell(msg)
    assert await probe.receive_messages(2) == [Secret("before"), "done"]


# --- spy -----------------------------------------------------------------------------------


async def test_spy_reports_each_handled_message(
    system: ActorSystem, probe: TestProbe, autojump_clock: Any
) -> None:
    ref = system.spawn(Behaviors.spy(Behaviors.ignore(), probe.ref), "spied")
    t0 = trio.current_time()
    ref.tell("one")
    first = await probe.expect_message(SpyEvent)
    await trio.sleep(5.0)
    ref.tell("two")
    second = await probe.expect_message(SpyEvent)
    assert (first.actor_path, first.event) == ("/spied", "one")
    assert (second.actor_path, second.event) == ("/spied", "two")
    assert first.timestamp == pytest.approx(t0, abs=0.01)
    assert second.timestamp == pytest.approx(t0 + 5.0, abs=0.01)


async def test_spy_observes_after_handling(system: ActorSystem, probe: TestProbe) -> None:
    handled: list[Any] = []

    async def receive(ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
        handled.append(msg)
        return Behaviors.same()

    def observer_behavior() -> Behavior[Any]:
        async def observe(ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
            probe.ref.tell((msg.event, list(handled)))
            return Behaviors.same()

        return Behaviors.receive(observe)

    observer = system.spawn(observer_behavior(), "observer")
    ref = system.spawn(Behaviors.spy(Behaviors.receive(receive), observer), "spied")
    ref.tell("x")
    await probe.expect_message(("x", ["x"]))


async def test_spy_children(system: ActorSystem, probe: TestProbe) -> None:
    async def factory(ctx: ActorContext[Any]) -> Behavior[Any]:
        ctx.spawn(Behaviors.ignore(), "kid")
        return Behaviors.ignore()

    system.spawn(Behaviors.spy(Behaviors.setup(factory), probe.ref, spy_children=True), "spied")
    await trio.testing.wait_all_tasks_blocked()
    kid = system.lookup("/spied/kid")
    assert kid is not None
    kid.tell("to the kid")
    event = await probe.expect_message(SpyEvent)
    assert (event.actor_path, event.event) == ("/spied/kid", "to the kid")


async def test_spy_does_not_follow_children_by_default(
    system: ActorSystem, probe: TestProbe, autojump_clock: Any
) -> None:
    async def factory(ctx: ActorContext[Any]) -> Behavior[Any]:
        ctx.spawn(Behaviors.ignore(), "kid")
        return Behaviors.ignore()

    parent = system.spawn(Behaviors.spy(Behaviors.setup(factory), probe.ref), "spied")
    await trio.testing.wait_all_tasks_blocked()
    kid = system.lookup("/spied/kid")
    assert kid is not None
    kid.tell("to the kid")
    parent.tell("to the parent")
    event = await probe.expect_message(SpyEvent)
    assert (event.actor_path, event.event) == ("/spied", "to the parent")
    await probe.expect_no_message()


async def test_pipe_to_self_from_a_handler_delivers_in_completion_order(
    system: ActorSystem, probe: TestProbe, autojump_clock: Any
) -> None:
    def job(delay: float) -> Callable[[], Any]:
        async def sleep_then_answer() -> float:
            await trio.sleep(delay)
            return delay

        return sleep_then_answer

    async def receive(ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
        match msg:
            case float(delay):
                ctx.pipe_to_self(job(delay), map_ok=Loaded)
            case Loaded():
                probe.ref.tell((msg, trio.current_time()))
        return Behaviors.same()

    ref = system.spawn(Behaviors.receive(receive), "jobs")
    t0 = trio.current_time()
    for delay in (3.0, 1.0, 2.0):
        ref.tell(delay)
    results = await probe.receive_messages(3, within=5.0)
    assert [msg for msg, _ in results] == [Loaded(1.0), Loaded(2.0), Loaded(3.0)]
    assert [at - t0 for _, at in results] == pytest.approx([1.0, 2.0, 3.0], abs=0.01)
