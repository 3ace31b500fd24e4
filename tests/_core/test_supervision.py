"""Supervision: restart / resume / stop / escalate, limits, backoff, lifecycle hooks."""

from __future__ import annotations

import doctest
import logging
from collections import deque
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
    Backoff,
    Behavior,
    Behaviors,
    DeadLetter,
    Directive,
    OneForOneStrategy,
    Terminated,
)
from casty_trio._core._cell_supervision import decide
from casty_trio.testing import TestProbe
from tests._helpers import drain_nowait, receive_matching


@attrs.frozen
class Inc:
    pass


@attrs.frozen
class Boom:
    exc: Exception = attrs.field(factory=lambda: ValueError("boom"), eq=False)


@attrs.frozen
class State:
    count: int
    starts: int


@attrs.frozen
class Get:
    reply_to: ActorRef[State]


@attrs.frozen
class Watch:
    target: ActorRef[Any]
    reply_to: ActorRef[bool]


@attrs.frozen
class GetChild:
    reply_to: ActorRef[ActorRef[Any] | None]


def worker(starts: list[float], *, child: Behavior[Any] | None = None) -> Behavior[Any]:
    """Counts Inc messages; raises on Boom; records the (virtual) time of every setup run.

    With ``child``, setup spawns it as ``child`` (stopped and re-created on restart).
    """

    async def factory(ctx: ActorContext[Any]) -> Behavior[Any]:
        starts.append(trio.current_time())
        if child is not None:
            ctx.spawn(child, "child")
        return counting(ctx, 0)

    def counting(ctx: ActorContext[Any], count: int) -> Behavior[Any]:
        async def receive(ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
            match msg:
                case Inc():
                    return counting(ctx, count + 1)
                case Get(reply_to):
                    reply_to.tell(State(count, len(starts)))
                case Boom(exc):
                    raise exc
                case GetChild(reply_to):
                    reply_to.tell(ctx.child("child"))
            return Behaviors.same()

        return Behaviors.receive(receive)

    return Behaviors.setup(factory)


def watcher(probe: TestProbe) -> Behavior[Any]:
    """Watches whatever it is told to; forwards Terminated to the probe."""

    async def receive(ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
        match msg:
            case Watch(target, reply_to):
                ctx.watch(target)
                reply_to.tell(True)
            case Terminated():
                probe.ref.tell(msg)
        return Behaviors.same()

    return Behaviors.receive(receive)


def deciding(directive: Directive, **kwargs: Any) -> OneForOneStrategy:
    return OneForOneStrategy(decider=lambda exc: directive, **kwargs)


async def get(system: ActorSystem, ref: ActorRef[Any]) -> State:
    return await system.ask(ref, lambda r: Get(r), timeout=5.0)


async def watch(system: ActorSystem, probe: TestProbe, target: ActorRef[Any]) -> None:
    w = system.spawn(watcher(probe), f"watcher-{target.path.strip('/').replace('/', '-')}")
    assert await system.ask(w, lambda r: Watch(target, r), timeout=1.0)


# --- restart -------------------------------------------------------------------------------


async def test_restart_reruns_setup_and_resets_state(system: ActorSystem) -> None:
    starts: list[float] = []
    error = ValueError("kaboom")
    async with system.event_stream.subscription(ActorRestarted) as restarted:
        ref = system.spawn(Behaviors.supervise(worker(starts), OneForOneStrategy()), "w")
        for _ in range(3):
            ref.tell(Inc())
        assert await get(system, ref) == State(count=3, starts=1)
        ref.tell(Boom(error))
        assert await get(system, ref) == State(count=0, starts=2)
        event = await receive_matching(restarted, lambda e: e.ref == ref)
    assert event.exception is error


async def test_restart_keeps_the_mailbox_and_drops_the_failing_message(
    system: ActorSystem,
) -> None:
    starts: list[float] = []
    async with system.event_stream.subscription(ActorRestarted) as restarted:
        ref = system.spawn(Behaviors.supervise(worker(starts), OneForOneStrategy()), "w")
        # All queued before the actor even handles Boom, so before the restart completes.
        ref.tell(Inc())
        ref.tell(Boom())
        ref.tell(Inc())
        ref.tell(Inc())
        assert await get(system, ref) == State(count=2, starts=2)
        await receive_matching(restarted, lambda e: e.ref == ref)
        await trio.testing.wait_all_tasks_blocked()
        # Boom was not re-delivered after the restart: exactly one restart happened.
        with pytest.raises(trio.WouldBlock):
            restarted.receive_nowait()
    assert len(starts) == 2


async def test_restart_stops_children(system: ActorSystem) -> None:
    starts: list[float] = []
    child_starts: list[float] = []
    ref = system.spawn(
        Behaviors.supervise(worker(starts, child=worker(child_starts)), OneForOneStrategy()),
        "parent",
    )
    first_child = await system.ask(ref, lambda r: GetChild(r), timeout=1.0)
    assert first_child is not None
    first_child.tell(Inc())
    assert await get(system, first_child) == State(count=1, starts=1)
    async with system.event_stream.subscription(ActorStopped) as stopped:
        ref.tell(Boom())
        await receive_matching(stopped, lambda e: e.ref == first_child)
    second_child = await system.ask(ref, lambda r: GetChild(r), timeout=1.0)
    assert second_child is not None
    # A fresh child incarnation (same path), with fresh state.
    assert await get(system, second_child) == State(count=0, starts=2)


async def test_more_than_max_restarts_within_window_stops(system: ActorSystem) -> None:
    starts: list[float] = []
    probe = TestProbe(system)
    strategy = OneForOneStrategy(max_restarts=2, within=10.0)
    async with system.event_stream.subscription(ActorRestarted) as restarted:
        ref = system.spawn(Behaviors.supervise(worker(starts), strategy), "fragile")
        await watch(system, probe, ref)
        for _ in range(3):
            ref.tell(Boom())
        await probe.expect_message(Terminated(ref))
        events = [await receive_matching(restarted, lambda e: e.ref == ref) for _ in range(2)]
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(trio.WouldBlock):
            restarted.receive_nowait()
    assert len(events) == 2
    assert len(starts) == 3  # the first start and 2 restarts
    assert system.lookup("/fragile") is None


async def test_max_restarts_zero_stops_on_first_failure(system: ActorSystem) -> None:
    starts: list[float] = []
    probe = TestProbe(system)
    ref = system.spawn(
        Behaviors.supervise(worker(starts), OneForOneStrategy(max_restarts=0)), "no-second-chance"
    )
    await watch(system, probe, ref)
    ref.tell(Boom())
    await probe.expect_message(Terminated(ref))
    assert len(starts) == 1


async def test_restarts_spread_beyond_the_window_keep_restarting(
    system: ActorSystem, autojump_clock: Any
) -> None:
    starts: list[float] = []
    strategy = OneForOneStrategy(max_restarts=2, within=10.0)
    ref = system.spawn(Behaviors.supervise(worker(starts), strategy), "resilient")
    # Failures at t = 0, 6, 12, 18, 24: no 10 s window ever holds more than 2 restarts.
    for _ in range(5):
        ref.tell(Boom())
        await get(system, ref)
        await trio.sleep(6.0)
    assert (await get(system, ref)).starts == 6
    assert system.lookup("/resilient") == ref


async def test_failures_inside_the_window_stop(system: ActorSystem, autojump_clock: Any) -> None:
    starts: list[float] = []
    probe = TestProbe(system)
    strategy = OneForOneStrategy(max_restarts=2, within=10.0)
    ref = system.spawn(Behaviors.supervise(worker(starts), strategy), "brittle")
    await watch(system, probe, ref)
    # Failures at t = 0, 4, 8: the third one is a third restart within 10 s.
    for _ in range(2):
        ref.tell(Boom())
        await get(system, ref)
        await trio.sleep(4.0)
    ref.tell(Boom())
    await probe.expect_message(Terminated(ref))
    assert len(starts) == 3


async def test_backoff_delays_restarts(system: ActorSystem, autojump_clock: Any) -> None:
    starts: list[float] = []
    strategy = OneForOneStrategy(
        max_restarts=10,
        within=1000.0,
        backoff=Backoff(min_backoff=1.0, max_backoff=4.0, multiplier=2.0),
    )
    ref = system.spawn(Behaviors.supervise(worker(starts), strategy), "backing-off")
    assert (await get(system, ref)).starts == 1
    delays = []
    for _ in range(4):
        failed_at = trio.current_time()
        ref.tell(Boom())
        ref.tell(Inc())  # queued during the backoff, processed after the restart
        assert await get(system, ref) == State(count=1, starts=len(starts))
        delays.append(starts[-1] - failed_at)
    assert delays == pytest.approx([1.0, 2.0, 4.0, 4.0], abs=0.01)


async def test_restart_publishes_actor_restarted_for_each_restart(system: ActorSystem) -> None:
    starts: list[float] = []
    probe = TestProbe(system, "events")
    system.event_stream.subscribe(ActorRestarted, probe.ref)
    ref = system.spawn(Behaviors.supervise(worker(starts), OneForOneStrategy()), "w")
    errors = [ValueError("one"), KeyError("two")]
    for error in errors:
        ref.tell(Boom(error))
    await get(system, ref)
    events = [await probe.expect_message(ActorRestarted) for _ in errors]
    assert [e.ref for e in events] == [ref, ref]
    assert [e.exception for e in events] == errors


# --- resume / stop / decider ---------------------------------------------------------------


async def test_resume_keeps_state_and_drops_the_failing_message(
    system: ActorSystem, autojump_clock: Any
) -> None:
    starts: list[float] = []
    probe = TestProbe(system, "events")
    system.event_stream.subscribe(ActorRestarted, probe.ref)
    ref = system.spawn(Behaviors.supervise(worker(starts), deciding(Directive.resume)), "w")
    ref.tell(Inc())
    ref.tell(Inc())
    ref.tell(Boom())
    ref.tell(Inc())
    assert await get(system, ref) == State(count=3, starts=1)
    await probe.expect_no_message()


async def test_stop_directive_stops_the_actor(system: ActorSystem) -> None:
    starts: list[float] = []
    stopped: list[str] = []
    probe = TestProbe(system)

    async def post_stop(ctx: ActorContext[Any]) -> None:
        stopped.append(ctx.self.path)

    behavior = Behaviors.with_lifecycle(
        Behaviors.supervise(worker(starts), deciding(Directive.stop)), post_stop=post_stop
    )
    ref = system.spawn(behavior, "stoppable")
    await watch(system, probe, ref)
    async with system.event_stream.subscription(DeadLetter) as dead_letters:
        ref.tell(Boom())
        await probe.expect_message(Terminated(ref))
        ref.tell(Inc())
        letter = await receive_matching(dead_letters, lambda d: d.intended_ref == ref)
    assert letter.message == Inc()
    assert stopped == ["/stoppable"]
    assert len(starts) == 1


async def test_decider_chooses_per_exception_type(system: ActorSystem) -> None:
    starts: list[float] = []

    def decider(exc: Exception) -> Directive:
        return Directive.resume if isinstance(exc, ValueError) else Directive.restart

    ref = system.spawn(Behaviors.supervise(worker(starts), OneForOneStrategy(decider=decider)), "w")
    ref.tell(Inc())
    ref.tell(Boom(ValueError("resume me")))
    assert await get(system, ref) == State(count=1, starts=1)
    ref.tell(Boom(KeyError("restart me")))
    assert await get(system, ref) == State(count=0, starts=2)


# --- escalate ------------------------------------------------------------------------------


async def test_escalate_fails_the_parent_whose_strategy_restarts_it(system: ActorSystem) -> None:
    parent_starts: list[float] = []
    child_starts: list[float] = []
    error = ValueError("from the child")
    child = Behaviors.supervise(worker(child_starts), deciding(Directive.escalate))
    async with system.event_stream.subscription(ActorRestarted) as restarted:
        async with system.event_stream.subscription(ActorStopped) as stopped:
            parent = system.spawn(
                Behaviors.supervise(worker(parent_starts, child=child), OneForOneStrategy()),
                "parent",
            )
            parent.tell(Inc())
            first_child = await system.ask(parent, lambda r: GetChild(r), timeout=1.0)
            assert first_child is not None
            first_child.tell(Boom(error))
            await receive_matching(stopped, lambda e: e.ref == first_child)
        event = await receive_matching(restarted, lambda e: True)
    assert event.ref == parent  # the parent restarted, not the child
    assert event.exception is error
    # Parent state reset; a new child was spawned by the re-run setup.
    assert await get(system, parent) == State(count=0, starts=2)
    second_child = await system.ask(parent, lambda r: GetChild(r), timeout=1.0)
    assert second_child is not None
    assert await get(system, second_child) == State(count=0, starts=2)


async def test_escalation_chains_over_two_levels(system: ActorSystem) -> None:
    top_starts: list[float] = []
    mid_starts: list[float] = []
    leaf_starts: list[float] = []
    escalate = deciding(Directive.escalate)
    leaf = Behaviors.supervise(worker(leaf_starts), escalate)
    mid = Behaviors.supervise(worker(mid_starts, child=leaf), escalate)
    top = system.spawn(
        Behaviors.supervise(worker(top_starts, child=mid), OneForOneStrategy()), "top"
    )
    error = KeyError("deep")

    async with system.event_stream.subscription(ActorRestarted) as restarted:
        await get(system, top)
        await trio.testing.wait_all_tasks_blocked()
        leaf_ref = system.lookup("/top/child/child")
        assert leaf_ref is not None
        leaf_ref.tell(Boom(error))
        event = await receive_matching(restarted, lambda e: True)
    assert event.ref == top
    assert event.exception is error
    assert await get(system, top) == State(count=0, starts=2)
    await trio.testing.wait_all_tasks_blocked()
    assert len(mid_starts) == 2
    assert len(leaf_starts) == 2
    new_leaf = system.lookup("/top/child/child")
    assert new_leaf is not None
    assert await get(system, new_leaf) == State(count=0, starts=2)


async def test_escalation_from_a_root_actor_ends_the_system_block() -> None:
    error = ZeroDivisionError("escalated all the way")
    stopped: list[str] = []

    async def post_stop(ctx: ActorContext[Any]) -> None:
        stopped.append(ctx.self.path)

    body_cancelled = False
    with pytest.raises(ZeroDivisionError) as info:
        async with ActorSystem(name="doomed") as system:
            system.spawn(Behaviors.with_lifecycle(worker([]), post_stop=post_stop), "bystander")
            ref = system.spawn(
                Behaviors.supervise(worker([]), deciding(Directive.escalate)), "root"
            )
            ref.tell(Boom(error))
            try:
                await trio.sleep_forever()
            except trio.Cancelled:
                body_cancelled = True
                raise
    assert info.value is error  # that very exception, not an ExceptionGroup
    assert body_cancelled
    assert stopped == ["/bystander"]  # every other actor was stopped too


async def test_escalation_from_a_child_of_an_escalating_root_ends_the_block() -> None:
    error = LookupError("two hops to the root")
    child = Behaviors.supervise(worker([]), deciding(Directive.escalate))
    with pytest.raises(LookupError) as info:
        async with ActorSystem(name="doomed") as system:
            system.spawn(
                Behaviors.supervise(worker([], child=child), deciding(Directive.escalate)), "root"
            )
            await trio.testing.wait_all_tasks_blocked()
            leaf = system.lookup("/root/child")
            assert leaf is not None
            leaf.tell(Boom(error))
            await trio.sleep_forever()
    assert info.value is error


# --- unsupervised failures -----------------------------------------------------------------


async def test_unsupervised_failure_stops_actor_and_notifies_watchers(
    system: ActorSystem, caplog: pytest.LogCaptureFixture
) -> None:
    starts: list[float] = []
    probe = TestProbe(system)
    ref = system.spawn(worker(starts), "unguarded")
    other = system.spawn(worker([]), "other")
    await watch(system, probe, ref)
    with caplog.at_level(logging.ERROR):
        ref.tell(Boom(ValueError("unguarded failure")))
        await probe.expect_message(Terminated(ref))
    assert len(starts) == 1
    assert system.lookup("/unguarded") is None
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors, "an unsupervised failure must be logged at ERROR"
    assert any(r.exc_info and isinstance(r.exc_info[1], ValueError) for r in errors)
    # The rest of the system is unaffected.
    other.tell(Inc())
    assert await get(system, other) == State(count=1, starts=1)


async def test_unsupervised_failure_does_not_end_the_system_block() -> None:
    async with ActorSystem(name="survives") as system:
        probe = TestProbe(system)
        ref = system.spawn(worker([]), "unguarded")
        await watch(system, probe, ref)
        ref.tell(Boom())
        await probe.expect_message(Terminated(ref))
        await trio.testing.wait_all_tasks_blocked()
    # Leaving the block raised nothing.


# --- failures in setup ---------------------------------------------------------------------


def flaky_setup(attempts: list[int], failures: int) -> Behavior[Any]:
    async def factory(ctx: ActorContext[Any]) -> Behavior[Any]:
        attempts.append(len(attempts))
        if len(attempts) <= failures:
            raise RuntimeError(f"setup failure {len(attempts)}")
        return worker([])

    return Behaviors.setup(factory)


async def test_failure_in_setup_is_supervised(system: ActorSystem) -> None:
    attempts: list[int] = []
    probe = TestProbe(system, "events")
    system.event_stream.subscribe(ActorRestarted, probe.ref)
    ref = system.spawn(
        Behaviors.supervise(flaky_setup(attempts, failures=2), OneForOneStrategy()), "flaky"
    )
    ref.tell(Inc())
    assert (await get(system, ref)).count == 1
    assert attempts == [0, 1, 2]
    events = [await probe.expect_message(ActorRestarted) for _ in range(2)]
    assert [str(e.exception) for e in events] == ["setup failure 1", "setup failure 2"]


async def test_failure_in_setup_beyond_max_restarts_stops(system: ActorSystem) -> None:
    attempts: list[int] = []
    probe = TestProbe(system)
    async with system.event_stream.subscription(ActorStopped) as stopped:
        ref = system.spawn(
            Behaviors.supervise(
                flaky_setup(attempts, failures=100), OneForOneStrategy(max_restarts=2)
            ),
            "hopeless",
        )
        await receive_matching(stopped, lambda e: e.ref == ref)
    assert attempts == [0, 1, 2]
    # A watcher that comes late still learns about it.
    await watch(system, probe, ref)
    await probe.expect_message(Terminated(ref))


async def test_actor_restarted_is_published_for_restarts_whose_setup_fails_again(
    system: ActorSystem,
) -> None:
    # Each restart publishes ActorRestarted, whether or not the re-run setup then fails again.
    attempts: list[int] = []
    async with (
        system.event_stream.subscription(ActorRestarted) as restarted,
        system.event_stream.subscription(ActorStopped) as stopped,
    ):
        ref = system.spawn(
            Behaviors.supervise(
                flaky_setup(attempts, failures=100), OneForOneStrategy(max_restarts=2)
            ),
            "hopeless",
        )
        await receive_matching(stopped, lambda e: e.ref == ref)
        await trio.testing.wait_all_tasks_blocked()
        events = drain_nowait(restarted)
    assert attempts == [0, 1, 2]
    assert [(e.ref, str(e.exception)) for e in events] == [
        (ref, "setup failure 1"),
        (ref, "setup failure 2"),
    ]


async def test_unsupervised_failure_in_setup_stops_the_actor(system: ActorSystem) -> None:
    attempts: list[int] = []
    async with system.event_stream.subscription(ActorStopped) as stopped:
        ref = system.spawn(flaky_setup(attempts, failures=1), "broken")
        await receive_matching(stopped, lambda e: e.ref == ref)
    assert attempts == [0]


# --- lifecycle hooks -----------------------------------------------------------------------


def hooked(log: list[str], inner: Behavior[Any]) -> Behavior[Any]:
    async def pre_start(ctx: ActorContext[Any]) -> None:
        log.append("pre_start")

    async def pre_restart(ctx: ActorContext[Any], exc: BaseException) -> None:
        log.append(f"pre_restart:{exc}")

    async def post_restart(ctx: ActorContext[Any]) -> None:
        log.append("post_restart")

    async def post_stop(ctx: ActorContext[Any]) -> None:
        log.append("post_stop")

    return Behaviors.with_lifecycle(
        inner,
        pre_start=pre_start,
        pre_restart=pre_restart,
        post_restart=post_restart,
        post_stop=post_stop,
    )


@pytest.mark.parametrize("order", ["supervise(with_lifecycle)", "with_lifecycle(supervise)"])
async def test_lifecycle_hook_order(order: str) -> None:
    # Akka semantics: lifecycle signals reach the behavior however the wrappers are nested.
    log: list[str] = []

    async def child_post_stop(ctx: ActorContext[Any]) -> None:
        log.append("child_post_stop")

    async def factory(ctx: ActorContext[Any]) -> Behavior[Any]:
        log.append("setup")
        ctx.spawn(Behaviors.with_lifecycle(worker([]), post_stop=child_post_stop), "child")
        return worker([])

    setup = Behaviors.setup(factory)
    if order == "supervise(with_lifecycle)":
        behavior = Behaviors.supervise(hooked(log, setup), OneForOneStrategy())
    else:
        behavior = hooked(log, Behaviors.supervise(setup, OneForOneStrategy()))

    async with ActorSystem(name="hooks") as system:
        ref = system.spawn(behavior, "hooked")
        await get(system, ref)
        ref.tell(Boom(ValueError("boom")))
        await get(system, ref)
        await trio.testing.wait_all_tasks_blocked()
        assert log == [
            "pre_start",
            "setup",
            "pre_restart:boom",
            "child_post_stop",
            "setup",
            "post_restart",
        ]
    assert log[6:] == ["child_post_stop", "post_stop"]


async def test_stop_during_backoff_is_prompt(system: ActorSystem, autojump_clock: Any) -> None:
    starts: list[float] = []
    strategy = OneForOneStrategy(backoff=Backoff(min_backoff=100.0, max_backoff=100.0))
    async with system.event_stream.subscription(ActorStopped) as stopped:
        ref = system.spawn(Behaviors.supervise(worker(starts), strategy), "sleepy")
        await get(system, ref)
        ref.tell(Boom())
        await trio.sleep(1.0)  # now inside the 100 s backoff
        t0 = trio.current_time()
        system.stop(ref)
        await receive_matching(stopped, lambda e: e.ref == ref, within=10.0)
    assert trio.current_time() - t0 < 1.0
    assert len(starts) == 1  # setup never re-ran


# --- the decision, without an actor --------------------------------------------------------


def _decide_log() -> logging.Logger:
    return logging.getLogger("tests.supervision.decide")


def test_decide_restarts_up_to_max_restarts_within_the_window(
    caplog: pytest.LogCaptureFixture,
) -> None:
    strategy = OneForOneStrategy(max_restarts=2, within=10.0)
    times: deque[float] = deque()
    log = _decide_log()
    with caplog.at_level(logging.WARNING, logger=log.name):
        assert decide(strategy, ValueError(), times, 0.0, log, "/a") is Directive.restart
        assert decide(strategy, ValueError(), times, 4.0, log, "/a") is Directive.restart
        assert list(times) == [0.0, 4.0]
        assert decide(strategy, ValueError(), times, 8.0, log, "/a") is Directive.stop
        assert list(times) == [0.0, 4.0]  # a refused restart is not recorded
        # At t = 10 the restart at t = 0 has left the window: one more is allowed.
        assert decide(strategy, ValueError(), times, 10.0, log, "/a") is Directive.restart
        assert list(times) == [4.0, 10.0]
    levels = [r.levelno for r in caplog.records]
    assert levels == [logging.WARNING, logging.WARNING, logging.ERROR, logging.WARNING]
    assert "2 restarts within 10.0s exceeded" in caplog.records[2].getMessage()


@pytest.mark.parametrize("directive", [Directive.resume, Directive.stop, Directive.escalate])
def test_decide_passes_other_directives_through(directive: Directive) -> None:
    times: deque[float] = deque([1.0])
    got = decide(deciding(directive), KeyError(), times, 2.0, _decide_log(), "/a")
    assert got is directive
    assert list(times) == [1.0]  # only restarts are counted


def test_decide_without_a_strategy_stops(caplog: pytest.LogCaptureFixture) -> None:
    error = ValueError("unguarded")
    log = _decide_log()
    with caplog.at_level(logging.ERROR, logger=log.name):
        assert decide(None, error, deque(), 0.0, log, "/a") is Directive.stop
    [record] = caplog.records
    assert record.exc_info is not None and record.exc_info[1] is error


def test_decide_stops_when_the_decider_raises(caplog: pytest.LogCaptureFixture) -> None:
    def decider(exc: Exception) -> Directive:
        raise RuntimeError("decider bug")

    log = _decide_log()
    times: deque[float] = deque()
    with caplog.at_level(logging.ERROR, logger=log.name):
        got = decide(OneForOneStrategy(decider=decider), ValueError(), times, 0.0, log, "/a")
    assert got is Directive.stop
    assert not times
    raised = [r.exc_info[1] for r in caplog.records if r.exc_info]
    assert [type(e) for e in raised] == [RuntimeError, ValueError]


def test_decide_docstring_example() -> None:
    finder = doctest.DocTestFinder(recurse=False)
    runner = doctest.DocTestRunner()
    for test in finder.find(decide, globs={"decide": decide}):
        runner.run(test)
    results = runner.summarize(verbose=False)
    assert results.attempted > 0
    assert results.failed == 0
