"""Tests for the public test probe (casty_trio.testing.TestProbe)."""

from __future__ import annotations

import doctest
import importlib
from collections.abc import AsyncIterator
from typing import Any

import attrs
import pytest
import trio
import trio.testing

from casty_trio import (
    ActorContext,
    ActorRef,
    ActorSystem,
    ActorSystemError,
    Behavior,
    Behaviors,
    CastyConfig,
    DeadLetter,
    SpyEvent,
    Terminated,
)
from casty_trio.config import DefaultsConfig, MailboxConfig
from casty_trio.testing import SimNetwork, TestProbe
from tests.remote._messages import Ping, Pong
from tests.remote._support import nodes, remote


@attrs.frozen
class Hello:
    n: int


@attrs.frozen
class Bye:
    n: int


@pytest.fixture
async def system() -> AsyncIterator[ActorSystem]:
    async with ActorSystem(name="probe-test") as sys:
        yield sys


def echo() -> Behavior[Any]:
    """Tells ``(ref, payload)`` messages' payload back to ``ref``; stops on "stop"."""

    async def receive(ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
        if msg == "stop":
            return Behaviors.stopped()
        ref, payload = msg
        ref.tell(payload)
        return Behaviors.same()

    return Behaviors.receive(receive)


def tell_later(nursery: trio.Nursery, ref: ActorRef[Any], message: Any, delay: float) -> None:
    """Tell ``message`` to ``ref`` after ``delay`` (virtual) seconds."""

    async def later() -> None:
        await trio.sleep(delay)
        ref.tell(message)

    nursery.start_soon(later)


# --------------------------------------------------------------------------- creation and naming


async def test_default_names_are_reserved_and_numbered_per_system(system: ActorSystem) -> None:
    first, second = TestProbe(system), TestProbe(system)
    assert (first.ref.path, second.ref.path) == ("/$probe-1", "/$probe-2")
    assert system.lookup("/$probe-1") == first.ref
    assert repr(first) == "TestProbe(/$probe-1)"
    # A user actor can take any ordinary name, including "probe-1".
    system.spawn(Behaviors.ignore(), "probe-1")
    async with ActorSystem(name="other") as other:
        assert TestProbe(other).ref.path == "/$probe-1"


async def test_named_probe_is_an_ordinary_root_actor(system: ActorSystem) -> None:
    probe = TestProbe(system, "replies")
    assert probe.ref.path == "/replies"
    assert system.lookup("/replies") == probe.ref
    probe.ref.tell("x")
    assert await probe.expect_message("x") == "x"
    with pytest.raises(ValueError):
        TestProbe(system, "replies")
    for bad in ("", "a/b", "$mine"):
        with pytest.raises(ValueError):
            TestProbe(system, bad)


async def test_needs_a_running_system() -> None:
    system = ActorSystem(name="idle")
    with pytest.raises(ActorSystemError):
        TestProbe(system)
    async with system:
        pass
    with pytest.raises(ActorSystemError):
        TestProbe(system)
    with pytest.raises(ActorSystemError):
        TestProbe(system, "named")


def test_pytest_does_not_collect_it() -> None:
    assert TestProbe.__test__ is False


async def test_mailbox_is_unbounded_whatever_the_config(autojump_clock: Any) -> None:
    config = CastyConfig(defaults=DefaultsConfig(mailbox=MailboxConfig(capacity=1)))
    async with ActorSystem(name="tight", config=config) as system:
        probe = TestProbe(system)
        for n in range(5):
            probe.ref.tell(n)  # all queued before the probe actor runs
        assert await probe.receive_messages(5) == [0, 1, 2, 3, 4]


# --------------------------------------------------------------------------- expect_message


async def test_expect_message_any_type_value_and_union(system: ActorSystem) -> None:
    probe = TestProbe(system)
    for message in ("anything", Hello(1), Hello(2), Bye(3)):
        probe.ref.tell(message)
    assert await probe.expect_message() == "anything"
    hello: Hello = await probe.expect_message(Hello)
    assert hello == Hello(1)
    assert await probe.expect_message(Hello(2)) == Hello(2)
    assert await probe.expect_message(Hello | Bye) == Bye(3)


async def test_expect_message_waits_for_a_later_message(autojump_clock: Any) -> None:
    async with ActorSystem(name="s") as system, trio.open_nursery() as nursery:
        probe = TestProbe(system)
        tell_later(nursery, probe.ref, Hello(1), delay=2.5)
        start = trio.current_time()
        assert await probe.expect_message(Hello) == Hello(1)
        assert trio.current_time() - start == pytest.approx(2.5)


async def test_expect_message_wrong_type(system: ActorSystem) -> None:
    probe = TestProbe(system)
    probe.ref.tell(Bye(1))
    probe.ref.tell(Hello(2))
    with pytest.raises(AssertionError) as info:
        await probe.expect_message(Hello)
    assert str(info.value) == (
        "expected a message of type Hello, got Bye(n=1) (Bye) (probe /$probe-1)"
    )
    # The mismatching message was consumed; the next one is still there.
    assert await probe.expect_message(Hello) == Hello(2)


async def test_expect_message_wrong_value(system: ActorSystem) -> None:
    probe = TestProbe(system)
    probe.ref.tell(Hello(1))
    with pytest.raises(AssertionError, match=r"expected a message equal to Hello\(n=2\), got"):
        await probe.expect_message(Hello(2))
    probe.ref.tell("a")
    with pytest.raises(AssertionError, match=r"message of type .*Hello \| .*Bye.*got 'a' \(str\)"):
        await probe.expect_message(Hello | Bye)


async def test_expect_message_times_out_on_the_virtual_clock(
    system: ActorSystem, autojump_clock: Any
) -> None:
    probe = TestProbe(system)
    start = trio.current_time()
    with pytest.raises(AssertionError) as info:
        await probe.expect_message(Hello)
    assert str(info.value) == "no message of type Hello within 3.0 s (probe /$probe-1)"
    assert trio.current_time() - start == pytest.approx(3.0)
    with pytest.raises(AssertionError, match=r"^no message within 0\.5 s"):
        await probe.expect_message(within=0.5)
    assert trio.current_time() - start == pytest.approx(3.5)


async def test_expect_message_is_a_checkpoint(system: ActorSystem) -> None:
    probe = TestProbe(system)
    probe.ref.tell("x")
    await trio.testing.wait_all_tasks_blocked()  # recorded, buffered
    with trio.CancelScope() as scope:
        scope.cancel()
        await probe.expect_message()
    assert scope.cancelled_caught
    assert await probe.expect_message() == "x"  # not lost by the cancelled call


async def test_a_cancelled_wait_loses_no_message(autojump_clock: Any) -> None:
    async with ActorSystem(name="s") as system:
        probe = TestProbe(system)
        with trio.move_on_after(1.0):
            await probe.expect_message(within=10.0)
        probe.ref.tell("after")
        assert await probe.expect_message() == "after"


async def test_the_clock_after_a_wait_is_the_arrival_time(autojump_clock: Any) -> None:
    async with ActorSystem(name="s") as system, trio.open_nursery() as nursery:
        probe = TestProbe(system)
        start = trio.current_time()
        tell_later(nursery, probe.ref, Hello(1), delay=1.25)
        tell_later(nursery, probe.ref, Hello(2), delay=2.5)
        await probe.expect_message(Hello(1))
        assert trio.current_time() - start == 1.25
        await probe.expect_message(Hello(2))
        assert trio.current_time() - start == 2.5


# --------------------------------------------------------------------------- expect_no_message


async def test_expect_no_message_passes_when_silent(
    system: ActorSystem, autojump_clock: Any
) -> None:
    probe = TestProbe(system)
    start = trio.current_time()
    await probe.expect_no_message()
    assert trio.current_time() - start == pytest.approx(0.1)
    await probe.expect_no_message(within=2.0)
    assert trio.current_time() - start == pytest.approx(2.1)


async def test_expect_no_message_fails_on_a_pending_message(system: ActorSystem) -> None:
    probe = TestProbe(system)
    probe.ref.tell(Hello(7))
    with pytest.raises(AssertionError) as info:
        await probe.expect_no_message()
    assert str(info.value) == (
        "expected no message within 0.1 s, got Hello(n=7) (Hello) (probe /$probe-1)"
    )


async def test_expect_no_message_fails_when_one_arrives_in_the_window(
    autojump_clock: Any,
) -> None:
    async with ActorSystem(name="s") as system, trio.open_nursery() as nursery:
        probe = TestProbe(system)
        tell_later(nursery, probe.ref, Bye(1), delay=0.7)
        start = trio.current_time()
        with pytest.raises(AssertionError, match=r"got Bye\(n=1\)"):
            await probe.expect_no_message(within=1.0)
        assert trio.current_time() - start == pytest.approx(0.7)  # fails as soon as it arrives


async def test_a_message_after_the_window_is_kept(autojump_clock: Any) -> None:
    async with ActorSystem(name="s") as system, trio.open_nursery() as nursery:
        probe = TestProbe(system)
        tell_later(nursery, probe.ref, Bye(1), delay=0.5)
        await probe.expect_no_message(within=0.4)
        assert await probe.expect_message(Bye) == Bye(1)


# --------------------------------------------------------------------------- receive_messages


async def test_receive_messages_in_order(system: ActorSystem) -> None:
    probe = TestProbe(system)
    for n in range(100):
        probe.ref.tell(n)
    assert await probe.receive_messages(60) == list(range(60))
    assert await probe.receive_messages(40, within=0.5) == list(range(60, 100))
    assert probe.messages_received == 100


async def test_receive_messages_zero_and_negative(system: ActorSystem) -> None:
    probe = TestProbe(system)
    with trio.CancelScope() as scope:
        scope.cancel()
        await probe.receive_messages(0)  # still a checkpoint
    assert scope.cancelled_caught
    assert await probe.receive_messages(0) == []
    with pytest.raises(ValueError):
        await probe.receive_messages(-1)


async def test_receive_messages_times_out_listing_what_arrived(
    system: ActorSystem, autojump_clock: Any
) -> None:
    probe = TestProbe(system)
    probe.ref.tell(Hello(1))
    probe.ref.tell(Hello(2))
    start = trio.current_time()
    with pytest.raises(AssertionError) as info:
        await probe.receive_messages(3, within=2.0)
    assert str(info.value) == (
        "expected 3 messages within 2.0 s, got 2: [Hello(n=1), Hello(n=2)] (probe /$probe-1)"
    )
    assert trio.current_time() - start == pytest.approx(2.0)


async def test_long_lists_are_shortened_in_failures(
    system: ActorSystem, autojump_clock: Any
) -> None:
    probe = TestProbe(system)
    for n in range(8):
        probe.ref.tell(n)
    probe.ref.tell("x" * 500)
    with pytest.raises(AssertionError) as info:
        await probe.receive_messages(10)
    assert str(info.value).endswith("[0, 1, 2, 3, 4, ... and 4 more] (probe /$probe-1)")
    probe.ref.tell("y" * 500)
    with pytest.raises(AssertionError) as info:
        await probe.expect_message(int)
    assert len(str(info.value)) < 300
    assert "..." in str(info.value)


# --------------------------------------------------------------------------- receive_all_nowait


async def test_receive_all_nowait_takes_what_was_recorded(system: ActorSystem) -> None:
    probe = TestProbe(system)
    assert probe.receive_all_nowait() == []
    for n in range(5):
        probe.ref.tell(n)
    assert await probe.expect_message() == 0
    await trio.testing.wait_all_tasks_blocked()
    assert probe.receive_all_nowait() == [1, 2, 3, 4]  # in order, without the consumed one
    assert probe.receive_all_nowait() == []  # consumed
    assert probe.messages_received == 5
    probe.ref.tell(5)
    assert await probe.expect_message() == 5  # later messages still arrive


async def test_receive_all_nowait_is_not_a_checkpoint(system: ActorSystem) -> None:
    probe = TestProbe(system)
    probe.ref.tell("queued")
    # Sync: the probe actor had no chance to handle the message, so it is not recorded yet.
    assert probe.receive_all_nowait() == []
    await trio.testing.wait_all_tasks_blocked()
    assert probe.receive_all_nowait() == ["queued"]


async def test_receive_all_nowait_on_a_stopped_probe(system: ActorSystem) -> None:
    probe = TestProbe(system)
    probe.ref.tell("kept")
    await trio.testing.wait_all_tasks_blocked()
    probe.stop()
    await trio.testing.wait_all_tasks_blocked()
    assert probe.receive_all_nowait() == ["kept"]
    assert probe.receive_all_nowait() == []  # the end of a stopped probe is not an error


# --------------------------------------------------------------------------- fish_for_message


async def test_fish_for_message_skips_until_the_predicate_holds(system: ActorSystem) -> None:
    probe = TestProbe(system)
    for message in (Hello(1), "noise", Bye(2), Hello(3), Bye(4)):
        probe.ref.tell(message)
    found = await probe.fish_for_message(lambda m: isinstance(m, Bye))
    assert found == Bye(2)
    assert await probe.fish_for_message(lambda m: m == Bye(4)) == Bye(4)  # Hello(3) skipped
    assert probe.messages_received == 5


async def test_fish_for_message_waits_across_messages(autojump_clock: Any) -> None:
    async with ActorSystem(name="s") as system, trio.open_nursery() as nursery:
        probe = TestProbe(system)
        for n in range(1, 4):
            tell_later(nursery, probe.ref, Hello(n), delay=float(n))
        start = trio.current_time()
        assert await probe.fish_for_message(lambda m: m.n == 3, within=5.0) == Hello(3)
        assert trio.current_time() - start == pytest.approx(3.0)


async def test_fish_for_message_times_out_listing_the_skipped(
    system: ActorSystem, autojump_clock: Any
) -> None:
    probe = TestProbe(system)
    probe.ref.tell(Hello(1))

    def is_bye(message: Any) -> bool:
        return isinstance(message, Bye)

    start = trio.current_time()
    with pytest.raises(AssertionError) as info:
        await probe.fish_for_message(is_bye, within=1.5)
    assert str(info.value) == (
        "no message matching test_fish_for_message_times_out_listing_the_skipped.<locals>."
        "is_bye within 1.5 s; skipped [Hello(n=1)] (probe /$probe-1)"
    )
    assert trio.current_time() - start == pytest.approx(1.5)


async def test_fish_for_message_predicate_errors_propagate(system: ActorSystem) -> None:
    probe = TestProbe(system)
    probe.ref.tell("x")
    with pytest.raises(ZeroDivisionError):
        await probe.fish_for_message(lambda m: 1 / 0 > 0)


# --------------------------------------------------------------------------- death watch


async def test_watch_and_expect_terminated(system: ActorSystem) -> None:
    probe = TestProbe(system)
    worker = system.spawn(echo(), "worker")
    probe.watch(worker)
    worker.tell((probe.ref, "last words"))
    worker.tell("stop")
    assert await probe.expect_message("last words") == "last words"
    terminated = await probe.expect_terminated(worker)
    assert terminated == Terminated(worker)
    assert probe.messages_received == 2  # the watch request itself is not recorded


async def test_watching_an_actor_that_already_stopped(system: ActorSystem) -> None:
    probe = TestProbe(system)
    worker = system.spawn(echo(), "worker")
    other = TestProbe(system)
    other.watch(worker)
    worker.tell("stop")
    await other.expect_terminated(worker)
    probe.watch(worker)
    await probe.expect_terminated(worker)


async def test_expect_terminated_fails_on_another_message(system: ActorSystem) -> None:
    probe = TestProbe(system)
    worker = system.spawn(echo(), "worker")
    probe.watch(worker)
    probe.ref.tell("not yet")
    with pytest.raises(AssertionError) as info:
        await probe.expect_terminated(worker)
    assert str(info.value) == (
        "expected Terminated(/worker), got 'not yet' (str) (probe /$probe-1)"
    )
    other = system.spawn(echo(), "other")
    probe.watch(other)
    other.tell("stop")
    with pytest.raises(AssertionError, match=r"expected Terminated\(/worker\), got Terminated"):
        await probe.expect_terminated(worker)


async def test_expect_terminated_times_out(system: ActorSystem, autojump_clock: Any) -> None:
    probe = TestProbe(system)
    worker = system.spawn(echo(), "worker")
    probe.watch(worker)
    with pytest.raises(AssertionError) as info:
        await probe.expect_terminated(worker)
    assert str(info.value) == "no Terminated(/worker) within 3.0 s (probe /$probe-1)"


async def test_expect_terminated_without_watch_hints(
    system: ActorSystem, autojump_clock: Any
) -> None:
    probe = TestProbe(system)
    worker = system.spawn(echo(), "worker")
    worker.tell("stop")
    with pytest.raises(
        AssertionError,
        match=r"\(probe /\$probe-1\); the probe does not watch it: call watch\(\) first$",
    ):
        await probe.expect_terminated(worker, within=1.0)


async def test_unwatch(system: ActorSystem, autojump_clock: Any) -> None:
    probe = TestProbe(system)
    worker = system.spawn(echo(), "worker")
    probe.watch(worker)
    await probe.expect_no_message()  # the watch is in place
    probe.unwatch(worker)
    worker.tell("stop")
    await probe.expect_no_message(within=1.0)
    assert system.lookup("/worker") is None
    assert probe.messages_received == 0


# --------------------------------------------------------------------------- stopping


async def test_context_manager_stops_the_probe(system: ActorSystem) -> None:
    watcher = TestProbe(system)
    with TestProbe(system) as probe:
        watcher.watch(probe.ref)
        probe.ref.tell("kept")
        await trio.testing.wait_all_tasks_blocked()  # recorded before the probe stops
    await watcher.expect_terminated(probe.ref)
    assert system.lookup(probe.ref.path) is None
    # What it recorded before stopping can still be consumed; then it fails at once.
    assert await probe.expect_message("kept") == "kept"
    start = trio.current_time()
    with pytest.raises(AssertionError, match=r"^no message of type str: the probe has stopped"):
        await probe.expect_message(str, within=60.0)
    with pytest.raises(AssertionError, match=r"got 0 before the probe stopped"):
        await probe.receive_messages(1, within=60.0)
    with pytest.raises(AssertionError, match=r"the probe has stopped; skipped \[\]"):
        await probe.fish_for_message(bool, within=60.0)
    with pytest.raises(AssertionError, match=r"no Terminated\(/x\): the probe has stopped"):
        await probe.expect_terminated(system.spawn(echo(), "x"), within=60.0)
    assert trio.current_time() - start < 1.0


async def test_stop_sends_later_messages_to_dead_letters(system: ActorSystem) -> None:
    probe = TestProbe(system)
    async with system.event_stream.subscription(DeadLetter) as dead_letters:
        probe.stop()
        probe.stop()  # idempotent
        await trio.testing.wait_all_tasks_blocked()
        probe.ref.tell("too late")
        dead = await dead_letters.receive()
    assert dead == DeadLetter("too late", probe.ref)
    assert probe.messages_received == 0


async def test_expect_no_message_on_a_stopped_probe_waits_out_the_window(
    system: ActorSystem, autojump_clock: Any
) -> None:
    probe = TestProbe(system)
    probe.stop()
    await trio.testing.wait_all_tasks_blocked()
    start = trio.current_time()
    await probe.expect_no_message(within=0.3)
    assert trio.current_time() - start == pytest.approx(0.3)


async def test_probe_stops_with_its_system() -> None:
    async with ActorSystem(name="s") as system:
        probe = TestProbe(system)
        probe.ref.tell(1)
        await trio.testing.wait_all_tasks_blocked()
    assert await probe.expect_message(1) == 1
    with pytest.raises(AssertionError, match="the probe has stopped"):
        await probe.expect_message()
    probe.stop()  # the system is gone: nothing happens


# --------------------------------------------------------------------------- several probes


async def test_several_probes_in_one_system(system: ActorSystem) -> None:
    probes = [TestProbe(system) for _ in range(3)]
    worker = system.spawn(echo(), "worker")
    for round_ in range(3):
        for i, probe in enumerate(probes):
            worker.tell((probe.ref, (i, round_)))
    for i, probe in enumerate(probes):
        assert await probe.receive_messages(3) == [(i, 0), (i, 1), (i, 2)]
    for probe in probes:
        probe.watch(worker)
    worker.tell("stop")
    for probe in probes:
        await probe.expect_terminated(worker)
        await probe.expect_no_message()


async def test_probes_waiting_concurrently(autojump_clock: Any) -> None:
    async with ActorSystem(name="s") as system:
        a, b = TestProbe(system), TestProbe(system)
        got: dict[str, Any] = {}

        async def wait(name: str, probe: TestProbe) -> None:
            got[name] = await probe.expect_message(Hello)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(wait, "a", a)
            nursery.start_soon(wait, "b", b)
            tell_later(nursery, b.ref, Hello(2), delay=1.0)
            tell_later(nursery, a.ref, Hello(1), delay=2.0)
        assert got == {"a": Hello(1), "b": Hello(2)}
        assert trio.current_time() == pytest.approx(2.0)


async def test_two_systems_in_one_run(autojump_clock: Any) -> None:
    async with ActorSystem(name="left") as left, ActorSystem(name="right") as right:
        lp, rp = TestProbe(left), TestProbe(right)
        assert lp.ref.path == rp.ref.path == "/$probe-1"
        assert lp.ref != rp.ref  # different systems, different addresses
        worker = right.spawn(echo(), "worker")
        worker.tell((lp.ref, "to left"))
        worker.tell((rp.ref, "to right"))
        assert await lp.expect_message() == "to left"
        assert await rp.expect_message() == "to right"
        lp.watch(worker)  # across systems
        worker.tell("stop")
        await lp.expect_terminated(worker)
        await rp.expect_no_message()


# --------------------------------------------------------------------------- in practice


async def test_as_reply_target_of_ask_style_messages_and_spy(system: ActorSystem) -> None:
    observer = TestProbe(system)
    replies = TestProbe(system)
    worker = system.spawn(Behaviors.spy(echo(), observer.ref), "worker")
    worker.tell((replies.ref, "pong"))
    assert await replies.expect_message("pong") == "pong"
    event = await observer.expect_message(SpyEvent)
    assert (event.actor_path, event.event) == ("/worker", (replies.ref, "pong"))


async def test_subscribed_to_the_event_stream(system: ActorSystem) -> None:
    probe = TestProbe(system)
    system.event_stream.subscribe(DeadLetter, probe.ref)
    gone = system.spawn(echo(), "gone")
    watcher = TestProbe(system)
    watcher.watch(gone)
    gone.tell("stop")
    await watcher.expect_terminated(gone)
    gone.tell("lost")
    assert await probe.expect_message(DeadLetter("lost", gone)) == DeadLetter("lost", gone)


async def test_with_the_real_clock() -> None:
    async with ActorSystem(name="real") as system:
        probe = TestProbe(system)
        probe.ref.tell(Hello(1))
        assert await probe.expect_message(Hello, within=5.0) == Hello(1)
        await probe.expect_no_message(within=0.01)
        with pytest.raises(AssertionError, match=r"within 0\.01 s"):
            await probe.expect_message(within=0.01)


async def test_on_remote_nodes(autojump_clock: Any) -> None:
    net = SimNetwork(seed=7, latency=0.005)
    async with nodes(net, "a", "b") as (a, b):
        probe = TestProbe(a)
        ponger = remote(a, "/ponger", b)
        ponger.tell(Ping(5, probe.ref))
        pong = await probe.expect_message(Pong)
        assert pong.n == 5
        doomed = b.spawn(echo(), "doomed")
        remote_doomed = remote(a, "/doomed", b)
        probe.watch(remote_doomed)
        await probe.expect_no_message(within=0.1)  # the remote watch is established
        doomed.tell("stop")
        await probe.expect_terminated(remote_doomed, within=1.0)


# --------------------------------------------------------------------------- docs


def test_docstring_examples() -> None:
    result = doctest.testmod(importlib.import_module("casty_trio.testing._probe"))
    assert result.failed == 0
    assert result.attempted > 0
