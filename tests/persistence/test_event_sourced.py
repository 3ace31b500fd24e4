"""Behaviors.event_sourced / Behaviors.persisted: recovery, ordering, failures, snapshots, hooks."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
import trio.testing

import casty_trio
from casty_trio import (
    ActorAddress,
    ActorContext,
    ActorRef,
    ActorSystem,
    Behavior,
    Behaviors,
    Directive,
    InMemoryJournal,
    JournalError,
    NodeAddress,
    OneForOneStrategy,
    PersistedEvent,
    Snapshot,
    SnapshotEvery,
    SqliteJournal,
)
from casty_trio._core import Behaviors as CoreBehaviors
from casty_trio.persistence import (
    EventSourcedBehavior,
    PersistedBehavior,
    Replicator,
    recover,
)

from ._events import Deposited

# ---------------------------------------------------------------------------------- fixtures


@attrs.frozen
class Deposit:
    amount: int
    reply_to: ActorRef[int] | None = None


@attrs.frozen
class DepositMany:
    amounts: tuple[int, ...]
    reply_to: ActorRef[int]


@attrs.frozen
class Get:
    reply_to: ActorRef[int]


@attrs.frozen
class Close:
    reply_to: ActorRef[str]


@attrs.define
class FlakyJournal:
    """An InMemoryJournal that records calls and fails on demand."""

    trace: list[str]
    inner: InMemoryJournal = attrs.field(factory=InMemoryJournal)
    fail_persists: int = 0  # the next N persists raise before storing
    fail_after_storing: int = 0  # the next N persists store, then raise
    fail_snapshots: bool = False
    persist_delay: float = 0.0
    persist_calls: list[list[int]] = attrs.field(factory=list)
    snapshots_saved: list[int] = attrs.field(factory=list)

    async def persist(self, entity_id: str, events: Sequence[PersistedEvent]) -> None:
        numbers = [e.sequence_nr for e in events]
        self.persist_calls.append(numbers)
        self.trace.append(f"persist {numbers}")
        if self.persist_delay:
            await trio.sleep(self.persist_delay)
        if self.fail_persists:
            self.fail_persists -= 1
            await trio.lowlevel.checkpoint()
            raise JournalError("disk full")
        await self.inner.persist(entity_id, events)
        if self.fail_after_storing:
            self.fail_after_storing -= 1
            raise JournalError("timed out after commit")

    async def load(self, entity_id: str, from_sequence_nr: int = 0) -> list[PersistedEvent]:
        return await self.inner.load(entity_id, from_sequence_nr)

    async def save_snapshot(self, entity_id: str, snapshot: Snapshot) -> None:
        if self.fail_snapshots:
            await trio.lowlevel.checkpoint()
            raise JournalError("snapshot store down")
        self.snapshots_saved.append(snapshot.sequence_nr)
        await self.inner.save_snapshot(entity_id, snapshot)

    async def load_snapshot(self, entity_id: str) -> Snapshot | None:
        return await self.inner.load_snapshot(entity_id)

    async def highest_sequence_nr(self, entity_id: str) -> int:
        return await self.inner.highest_sequence_nr(entity_id)


@attrs.define
class RecordingReplicator:
    trace: list[str]
    fail: bool = False
    batches: list[tuple[str, list[int]]] = attrs.field(factory=list)
    origins: list[NodeAddress | None] = attrs.field(factory=list)

    async def replicate(
        self,
        entity_id: str,
        events: Sequence[PersistedEvent],
        confirmed: Callable[[], None] | None = None,
        origin: NodeAddress | None = None,
    ) -> None:
        await trio.lowlevel.checkpoint()
        numbers = [e.sequence_nr for e in events]
        self.batches.append((entity_id, numbers))
        self.origins.append(origin)
        self.trace.append(f"replicate {numbers}")
        if self.fail:
            raise ConnectionError("replica unreachable")


def account(
    journal: Any,
    trace: list[str],
    *,
    entity_id: str = "acc",
    snapshot_policy: SnapshotEvery | None = None,
    failures: list[Exception] | None = None,
) -> EventSourcedBehavior[Any, int]:
    def on_event(balance: int, event: Deposited) -> int:
        trace.append(f"apply {event.amount}")
        return balance + event.amount

    def on_failure(exc: Exception) -> None:
        trace.append(f"on_failure {exc}")
        if failures is not None:
            failures.append(exc)

    async def on_command(ctx: ActorContext[Any], balance: int, msg: Any) -> Behavior[Any]:
        match msg:
            case Deposit(amount, reply_to):

                def reply() -> None:
                    trace.append("reply")
                    if reply_to is not None:
                        reply_to.tell(balance + amount)

                return Behaviors.persisted([Deposited(amount)], reply=reply, on_failure=on_failure)
            case DepositMany(amounts, reply_to):
                total = balance + sum(amounts)
                return Behaviors.persisted(
                    [Deposited(a) for a in amounts], reply=lambda: reply_to.tell(total)
                )
            case Get(reply_to):
                reply_to.tell(balance)
                return Behaviors.same()
            case Close(reply_to):
                return Behaviors.persisted(
                    [Deposited(0)], then=Behaviors.stopped(), reply=lambda: reply_to.tell("closed")
                )
        return Behaviors.unhandled()

    return Behaviors.event_sourced(
        entity_id=entity_id,
        journal=journal,
        initial_state=0,
        on_event=on_event,
        on_command=on_command,
        snapshot_policy=snapshot_policy,
    )


async def deposit(system: ActorSystem, ref: ActorRef[Any], amount: int) -> int:
    result: int = await system.ask(ref, lambda r: Deposit(amount, r), timeout=5.0)
    return result


async def balance(system: ActorSystem, ref: ActorRef[Any]) -> int:
    result: int = await system.ask(ref, lambda r: Get(r), timeout=5.0)
    return result


# ---------------------------------------------------------------------------------- tests


async def test_persist_apply_reply_in_order(autojump_clock: trio.testing.MockClock) -> None:
    trace: list[str] = []
    journal = FlakyJournal(trace)
    async with ActorSystem(name="t") as system:
        ref = system.spawn(account(journal, trace), "acc")
        assert await deposit(system, ref, 10) == 10
        assert await deposit(system, ref, 5) == 15
        assert await balance(system, ref) == 15
    assert trace == ["persist [1]", "apply 10", "reply", "persist [2]", "apply 5", "reply"]
    stored = await journal.inner.load("acc")
    assert [(e.sequence_nr, e.event) for e in stored] == [(1, Deposited(10)), (2, Deposited(5))]
    assert all(e.timestamp > 1e9 for e in stored)  # wall-clock seconds since the epoch


async def test_events_of_one_command_are_one_journal_call(
    autojump_clock: trio.testing.MockClock,
) -> None:
    trace: list[str] = []
    journal = FlakyJournal(trace)
    async with ActorSystem(name="t") as system:
        ref = system.spawn(account(journal, trace), "acc")
        await deposit(system, ref, 1)
        total = await system.ask(ref, lambda r: DepositMany((2, 3, 4), r), timeout=1.0)
        assert total == 10
        assert await deposit(system, ref, 5) == 15
    assert journal.persist_calls == [[1], [2, 3, 4], [5]]


async def test_recovery_from_snapshot_and_tail(autojump_clock: trio.testing.MockClock) -> None:
    journal = InMemoryJournal()
    await journal.persist("acc", [PersistedEvent(n, Deposited(100), 0.0) for n in range(1, 6)])
    await journal.save_snapshot("acc", Snapshot(5, 500, 0.0))
    await journal.persist("acc", [PersistedEvent(6, Deposited(1), 0.0)])
    await journal.persist("acc", [PersistedEvent(7, Deposited(2), 0.0)])
    trace: list[str] = []
    async with ActorSystem(name="t") as system:
        ref = system.spawn(account(journal, trace), "acc")
        assert await balance(system, ref) == 503
        assert trace == ["apply 1", "apply 2"]  # events up to the snapshot are not replayed
        assert await deposit(system, ref, 10) == 513
    assert await journal.highest_sequence_nr("acc") == 8


async def test_a_new_incarnation_continues_the_sequence(
    autojump_clock: trio.testing.MockClock,
) -> None:
    journal = InMemoryJournal()
    for _ in range(2):
        async with ActorSystem(name="t") as system:
            ref = system.spawn(account(journal, []), "acc")
            await deposit(system, ref, 1)
            await deposit(system, ref, 1)
    assert [e.sequence_nr for e in await journal.load("acc")] == [1, 2, 3, 4]
    assert await recover(journal, "acc", 0, lambda s, e: s + e.amount) == (4, 4)


async def test_recovery_with_only_a_snapshot() -> None:
    journal = InMemoryJournal()
    await journal.save_snapshot("e", Snapshot(9, "snap", 0.0))
    assert await recover(journal, "e", "init", lambda s, e: s + e) == ("snap", 9)
    assert await recover(journal, "other", "init", lambda s, e: s + e) == ("init", 0)


async def test_journal_failure_calls_on_failure_not_reply_and_fails_the_actor(
    autojump_clock: trio.testing.MockClock,
) -> None:
    trace: list[str] = []
    failures: list[Exception] = []
    journal = FlakyJournal(trace, fail_persists=1)
    async with ActorSystem(name="t") as system:
        ref = system.spawn(account(journal, trace, failures=failures), "acc")
        ref.tell(Deposit(10))
        await trio.testing.wait_all_tasks_blocked()
        assert system.lookup("/acc") is None  # unsupervised: the failure stopped it
    assert trace == ["persist [1]", "on_failure disk full"]
    assert isinstance(failures[0], JournalError)
    assert await journal.inner.load("acc") == []


async def test_supervised_restart_recovers_from_the_journal(
    autojump_clock: trio.testing.MockClock,
) -> None:
    trace: list[str] = []
    journal = FlakyJournal(trace)
    failed: list[Exception] = []

    def decider(exc: Exception) -> Directive:
        failed.append(exc)
        return Directive.restart

    behavior = Behaviors.supervise(account(journal, trace), OneForOneStrategy(decider=decider))
    async with ActorSystem(name="t") as system:
        ref = system.spawn(behavior, "acc")
        assert await deposit(system, ref, 10) == 10
        assert await deposit(system, ref, 5) == 15
        journal.fail_persists = 1
        trace.clear()
        with pytest.raises(casty_trio.AskTimeoutError):
            await deposit(system, ref, 1000)
        assert [type(e) for e in failed] == [JournalError]
        # the restart re-read the journal: both stored events were folded again, not the failed one
        assert trace == ["persist [3]", "on_failure disk full", "apply 10", "apply 5"]
        assert await balance(system, ref) == 15
        assert await deposit(system, ref, 1) == 16
    assert [e.sequence_nr for e in await journal.inner.load("acc")] == [1, 2, 3]


async def test_resume_after_a_failed_persist_rereads_the_journal(
    autojump_clock: trio.testing.MockClock,
) -> None:
    trace: list[str] = []
    journal = FlakyJournal(trace, fail_after_storing=1)  # stored, but the call raised
    behavior = Behaviors.supervise(
        account(journal, trace), OneForOneStrategy(decider=lambda exc: Directive.resume)
    )
    async with ActorSystem(name="t") as system:
        ref = system.spawn(behavior, "acc")
        ref.tell(Deposit(7))
        await trio.testing.wait_all_tasks_blocked()
        assert "reply" not in trace
        assert await balance(system, ref) == 7  # the stored event was recovered
        assert await deposit(system, ref, 1) == 8
    assert [e.sequence_nr for e in await journal.inner.load("acc")] == [1, 2]


async def test_then_replaces_the_behavior(autojump_clock: trio.testing.MockClock) -> None:
    journal = InMemoryJournal()
    async with ActorSystem(name="t") as system:
        ref = system.spawn(account(journal, []), "acc")
        assert await system.ask(ref, lambda r: Close(r), timeout=1.0) == "closed"
        await trio.testing.wait_all_tasks_blocked()
        assert system.lookup("/acc") is None
    assert await journal.highest_sequence_nr("acc") == 1


async def test_persisting_nothing_still_replies(autojump_clock: trio.testing.MockClock) -> None:
    trace: list[str] = []
    journal = FlakyJournal(trace)

    async def on_command(ctx: ActorContext[Any], state: int, msg: Any) -> Behavior[Any]:
        return Behaviors.persisted([], reply=lambda: msg.tell(state))

    behavior = Behaviors.event_sourced(
        entity_id="e",
        journal=journal,
        initial_state=3,
        on_event=lambda s, e: s,
        on_command=on_command,
    )
    async with ActorSystem(name="t") as system:
        ref = system.spawn(behavior, "e")
        assert await system.ask(ref, lambda r: r, timeout=1.0) == 3
    assert journal.persist_calls == []


async def test_async_reply_and_on_failure(autojump_clock: trio.testing.MockClock) -> None:
    trace: list[str] = []
    journal = FlakyJournal(trace)
    seen: list[str] = []

    async def on_command(ctx: ActorContext[Any], state: int, msg: Any) -> Behavior[Any]:
        async def reply() -> None:
            await trio.sleep(0.5)
            seen.append("replied")
            msg.tell(state + 1)

        async def on_failure(exc: Exception) -> None:
            await trio.lowlevel.checkpoint()
            seen.append(f"failed {exc}")

        return Behaviors.persisted(["e"], reply=reply, on_failure=on_failure)

    behavior = Behaviors.supervise(
        Behaviors.event_sourced(
            entity_id="e",
            journal=journal,
            initial_state=0,
            on_event=lambda s, e: s + 1,
            on_command=on_command,
        ),
        OneForOneStrategy(),
    )
    async with ActorSystem(name="t") as system:
        ref = system.spawn(behavior, "e")
        assert await system.ask(ref, lambda r: r, timeout=1.0) == 1
        journal.fail_persists = 1
        with pytest.raises(casty_trio.AskTimeoutError):
            await system.ask(ref, lambda r: r, timeout=1.0)
    assert seen == ["replied", "failed disk full"]


async def test_commands_wait_while_persisting(autojump_clock: trio.testing.MockClock) -> None:
    trace: list[str] = []
    journal = FlakyJournal(trace, persist_delay=1.0)
    async with ActorSystem(name="t") as system:
        ref = system.spawn(account(journal, trace), "acc")
        replies: list[int] = []

        async def ask_deposit(amount: int) -> None:
            replies.append(await deposit(system, ref, amount))

        start = trio.current_time()
        async with trio.open_nursery() as nursery:
            for amount in (1, 2, 3):
                nursery.start_soon(ask_deposit, amount)
                await trio.testing.wait_all_tasks_blocked()
        assert replies == [1, 3, 6]  # each command saw the state the previous one left
        assert trio.current_time() - start == pytest.approx(3.0)
    assert journal.persist_calls == [[1], [2], [3]]


async def test_snapshot_every_n_events(autojump_clock: trio.testing.MockClock) -> None:
    trace: list[str] = []
    journal = FlakyJournal(trace)
    async with ActorSystem(name="t") as system:
        ref = system.spawn(account(journal, trace, snapshot_policy=SnapshotEvery(3)), "acc")
        for _ in range(7):
            await deposit(system, ref, 1)
        assert journal.snapshots_saved == [3, 6]
        # a batch crossing a multiple snapshots the state after the whole batch
        assert await system.ask(ref, lambda r: DepositMany((1, 1, 1), r), timeout=1.0) == 10
        assert journal.snapshots_saved == [3, 6, 10]
    snapshot = await journal.load_snapshot("acc")
    assert snapshot is not None
    assert (snapshot.sequence_nr, snapshot.state) == (10, 10)
    trace.clear()
    async with ActorSystem(name="t") as system:
        ref = system.spawn(account(journal, trace, snapshot_policy=SnapshotEvery(3)), "acc")
        assert await balance(system, ref) == 10
    assert trace == []  # recovered from the snapshot alone


async def test_a_failed_snapshot_is_only_logged(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    trace: list[str] = []
    journal = FlakyJournal(trace, fail_snapshots=True)
    async with ActorSystem(name="t") as system:
        ref = system.spawn(account(journal, trace, snapshot_policy=SnapshotEvery(1)), "acc")
        assert await deposit(system, ref, 1) == 1
        assert await deposit(system, ref, 1) == 2
    assert "saving a snapshot at 1 failed" in caplog.text
    assert await journal.load_snapshot("acc") is None


def test_snapshot_every_validates() -> None:
    with pytest.raises(ValueError):
        SnapshotEvery(0)
    policy = SnapshotEvery(10)
    assert [policy.should_snapshot(n - 1, n) for n in (9, 10, 11, 20)] == [False, True, False, True]
    assert policy.should_snapshot(5, 25)


async def test_replicator_runs_after_apply_and_before_reply(
    autojump_clock: trio.testing.MockClock,
) -> None:
    trace: list[str] = []
    journal = FlakyJournal(trace)
    replicator = RecordingReplicator(trace)
    behavior = attrs.evolve(account(journal, trace, entity_id="acc-7"), replicator=replicator)
    async with ActorSystem(name="t") as system:
        ref = system.spawn(behavior, "acc")
        assert await deposit(system, ref, 4) == 4
        await system.ask(ref, lambda r: DepositMany((1, 2), r), timeout=1.0)
    assert trace[:4] == ["persist [1]", "apply 4", "replicate [1]", "reply"]
    assert replicator.batches == [("acc-7", [1]), ("acc-7", [2, 3])]


class _Inbox:
    """The target of a ref to a made-up remote actor: keeps what it is told."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.ref: ActorRef[Any] = ActorRef(
            ActorAddress("t", "/temp/1", NodeAddress("10.0.0.9", 25520)), self
        )

    def deliver(self, message: Any) -> None:
        self.messages.append(message)

    def add_watcher(self, watcher: Any) -> None:
        pass

    def remove_watcher(self, watcher: Any) -> None:
        pass


async def test_replicator_is_told_the_node_the_reply_goes_to(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The node of the command's reply_to ref is the write's origin (the cluster's replicator
    sends there first); a command without one has none."""
    trace: list[str] = []
    replicator = RecordingReplicator(trace)
    behavior = attrs.evolve(account(InMemoryJournal(), trace), replicator=replicator)
    inbox = _Inbox()
    async with ActorSystem(name="t") as system:
        ref = system.spawn(behavior, "acc")
        ref.tell(Deposit(3, inbox.ref))
        ref.tell(Deposit(4))
        assert await deposit(system, ref, 5) == 12
    assert inbox.messages == [3]
    assert replicator.origins == [NodeAddress("10.0.0.9", 25520), None, None]


async def test_replication_failure_calls_on_failure_but_keeps_the_actor(
    autojump_clock: trio.testing.MockClock,
) -> None:
    trace: list[str] = []
    failures: list[Exception] = []
    journal = FlakyJournal(trace)
    replicator = RecordingReplicator(trace, fail=True)
    behavior = attrs.evolve(account(journal, trace, failures=failures), replicator=replicator)
    async with ActorSystem(name="t") as system:
        ref = system.spawn(behavior, "acc")
        with pytest.raises(casty_trio.AskTimeoutError):
            await deposit(system, ref, 4)  # no reply
        assert trace == [
            "persist [1]",
            "apply 4",
            "replicate [1]",
            "on_failure replica unreachable",
        ]
        assert [type(e) for e in failures] == [ConnectionError]
        assert system.lookup("/acc") is not None  # still running
        assert await balance(system, ref) == 4  # the event stays applied
        replicator.fail = False
        assert await deposit(system, ref, 1) == 5
    assert [e.sequence_nr for e in await journal.inner.load("acc")] == [1, 2]


async def test_on_command_gets_the_real_context(autojump_clock: trio.testing.MockClock) -> None:
    journal = InMemoryJournal()

    def with_timers(ctx: ActorContext[Any], timers: casty_trio.TimerScheduler[Any]) -> Any:
        async def on_command(ctx2: ActorContext[Any], state: list[str], msg: Any) -> Behavior[Any]:
            assert ctx2 is ctx
            match msg:
                case "start":
                    timers.start_single("tick", "tick", 1.0)
                    return Behaviors.same()
                case "tick":
                    return Behaviors.persisted([f"tick@{ctx2.path}"])
                case reply_to:
                    reply_to.tell(state)
                    return Behaviors.same()

        return Behaviors.event_sourced(
            entity_id="ticker",
            journal=journal,
            initial_state=[],
            on_event=lambda state, event: [*state, event],
            on_command=on_command,
        )

    async with ActorSystem(name="t") as system:
        ref = system.spawn(Behaviors.with_timers(with_timers), "ticker")
        ref.tell("start")
        await trio.sleep(2.0)
        assert await system.ask(ref, lambda r: r, timeout=1.0) == ["tick@/ticker"]


async def test_persisted_outside_event_sourcing_is_a_type_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    failures: list[Exception] = []

    def decider(exc: Exception) -> Directive:
        failures.append(exc)
        return Directive.stop

    async def receive(ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
        return Behaviors.persisted([msg])

    strategy = OneForOneStrategy(decider=decider)
    async with ActorSystem(name="t") as system:
        system.spawn(Behaviors.supervise(Behaviors.receive(receive), strategy), "plain").tell("x")
        system.spawn(Behaviors.supervise(Behaviors.persisted(["y"]), strategy), "initial")
        await trio.testing.wait_all_tasks_blocked()
    assert [type(e) for e in failures] == [TypeError, TypeError]
    assert all("on_command" in str(e) for e in failures)


async def test_then_cannot_persist_again(autojump_clock: trio.testing.MockClock) -> None:
    failures: list[Exception] = []

    async def on_command(ctx: ActorContext[Any], state: int, msg: Any) -> Behavior[Any]:
        return Behaviors.persisted([1], then=Behaviors.persisted([2]))

    behavior = Behaviors.event_sourced(
        entity_id="e",
        journal=InMemoryJournal(),
        initial_state=0,
        on_event=lambda s, e: s + e,
        on_command=on_command,
    )

    def decider(exc: Exception) -> Directive:
        failures.append(exc)
        return Directive.stop

    async with ActorSystem(name="t") as system:
        system.spawn(Behaviors.supervise(behavior, OneForOneStrategy(decider=decider)), "e").tell(0)
        await trio.testing.wait_all_tasks_blocked()
    assert [type(e) for e in failures] == [TypeError]


async def test_sqlite_entity_survives_a_restart_of_everything(tmp_path: Path) -> None:
    # Real clock: a worker thread is not "blocked" for autojump_clock, which would jump ahead.
    path = tmp_path / "bank.db"
    for expected in (10, 20):
        async with SqliteJournal(path) as journal, ActorSystem(name="t") as system:
            ref = system.spawn(account(journal, [], snapshot_policy=SnapshotEvery(4)), "acc")
            for _ in range(5):
                await deposit(system, ref, 2)
            assert await balance(system, ref) == expected
    async with SqliteJournal(path) as journal:
        assert await journal.highest_sequence_nr("acc") == 10
        snapshot = await journal.load_snapshot("acc")
        assert snapshot is not None
        assert (snapshot.sequence_nr, snapshot.state) == (8, 16)


def test_event_sourced_is_a_frozen_value_with_public_parts() -> None:
    journal = InMemoryJournal()

    def on_event(state: int, event: Any) -> int:
        return state

    async def on_command(ctx: ActorContext[Any], state: int, msg: Any) -> Behavior[Any]:
        return Behaviors.same()

    config = object()
    behavior = Behaviors.event_sourced(
        entity_id="e-1",
        journal=journal,
        initial_state=0,
        on_event=on_event,
        on_command=on_command,
        snapshot_policy=SnapshotEvery(5),
        replication=config,
    )
    assert isinstance(behavior, EventSourcedBehavior)
    assert isinstance(behavior, casty_trio._core.ExtensionBehavior)
    assert (behavior.entity_id, behavior.journal, behavior.initial_state) == ("e-1", journal, 0)
    assert (behavior.on_event, behavior.on_command) == (on_event, on_command)
    assert behavior.snapshot_policy == SnapshotEvery(5)
    assert behavior.replication is config
    assert behavior.replicator is None
    with pytest.raises(AttributeError):
        behavior.entity_id = "other"  # type: ignore[misc]
    replicator: Replicator = RecordingReplicator([])
    evolved = attrs.evolve(behavior, replicator=replicator)
    assert evolved.replicator is replicator
    assert evolved.entity_id == "e-1"


def test_persisted_is_a_frozen_value() -> None:
    then = Behaviors.stopped()
    effect = Behaviors.persisted(iter(["a", "b"]), then=then)
    assert isinstance(effect, PersistedBehavior)
    assert effect.events == ("a", "b")
    assert effect.then is then
    assert effect.reply is None
    assert effect.on_failure is None


def test_facade_behaviors_extends_the_core_factory() -> None:
    assert casty_trio.Behaviors is Behaviors
    assert issubclass(Behaviors, CoreBehaviors)
    assert Behaviors.same() is CoreBehaviors.same()


async def test_entities_open_their_nursery_only_when_needed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def on_command(ctx: ActorContext[Any], state: int, msg: Any) -> Behavior[Any]:
        if msg == "spawn":

            async def child(ctx: ActorContext[Any]) -> Behavior[Any]:
                return Behaviors.ignore()

            ctx.spawn(Behaviors.setup(child), "child")  # a child with a task of its own
            return Behaviors.same()
        msg.tell(len(ctx.children))
        return Behaviors.same()

    behavior = Behaviors.event_sourced(
        entity_id="e",
        journal=InMemoryJournal(),
        initial_state=0,
        on_event=lambda s, e: s,
        on_command=on_command,
    )
    async with ActorSystem(name="t") as system:
        ref = system.spawn(behavior, "e")
        assert await system.ask(ref, lambda r: r, timeout=1.0) == 0
        cell = system._cells["/e"]
        assert cell._nursery is None  # recovery and commands need no nursery
        ref.tell("spawn")
        assert await system.ask(ref, lambda r: r, timeout=1.0) == 1
        assert cell._nursery is not None


@attrs.define
class EagerReplicator:
    """Confirms at once, from another task, before ``replicate`` returns (as the cluster's
    replicator does when the last ack needed arrives in a link's reader)."""

    trace: list[str]
    nursery: trio.Nursery

    async def replicate(
        self,
        entity_id: str,
        events: Sequence[PersistedEvent],
        confirmed: Callable[[], None] | None = None,
        origin: NodeAddress | None = None,
    ) -> None:
        self.trace.append("replicate")
        done = trio.Event()

        def confirm() -> None:
            assert confirmed is not None
            confirmed()
            confirmed()  # a second call does nothing
            done.set()

        self.nursery.start_soon(_run_sync, confirm)
        await done.wait()
        self.trace.append("replicated")


async def _run_sync(fn: Callable[[], None]) -> None:
    fn()


async def test_a_replicator_may_run_the_reply_as_soon_as_it_confirms(
    autojump_clock: trio.testing.MockClock,
) -> None:
    trace: list[str] = []
    journal = FlakyJournal(trace)
    async with trio.open_nursery() as nursery, ActorSystem(name="t") as system:
        replicator = EagerReplicator(trace, nursery)
        behavior = attrs.evolve(account(journal, trace), replicator=replicator)
        ref = system.spawn(behavior, "acc")
        assert await deposit(system, ref, 4) == 4
        assert await deposit(system, ref, 1) == 5
    one = ["replicate", "reply", "replicated"]
    assert trace == ["persist [1]", "apply 4", *one, "persist [2]", "apply 1", *one]


async def test_a_reply_run_early_still_fails_the_entity_and_awaits_async_replies(
    autojump_clock: trio.testing.MockClock,
) -> None:
    journal = InMemoryJournal()
    seen: list[str] = []
    failures: list[BaseException] = []

    async def on_command(ctx: ActorContext[Any], state: int, msg: Any) -> Behavior[Any]:
        if msg == "boom":

            def reply() -> None:
                raise RuntimeError("reply broke")

            return Behaviors.persisted(["e"], reply=reply)

        async def async_reply() -> None:
            await trio.sleep(0.5)
            seen.append(f"replied {state + 1}")
            msg.tell(state + 1)

        return Behaviors.persisted(["e"], reply=async_reply)

    def decider(exc: BaseException) -> casty_trio.Directive:
        failures.append(exc)
        return casty_trio.Directive.restart

    async with trio.open_nursery() as nursery, ActorSystem(name="t") as system:
        behavior = Behaviors.supervise(
            attrs.evolve(
                Behaviors.event_sourced(
                    entity_id="e",
                    journal=journal,
                    initial_state=0,
                    on_event=lambda s, e: s + 1,
                    on_command=on_command,
                ),
                replicator=EagerReplicator([], nursery),
            ),
            OneForOneStrategy(decider=decider),
        )
        ref = system.spawn(behavior, "e")
        assert await system.ask(ref, lambda r: r, timeout=1.0) == 1
        ref.tell("boom")
        await trio.sleep(0.1)
        assert [str(e) for e in failures] == ["reply broke"]
        assert await system.ask(ref, lambda r: r, timeout=1.0) == 3  # restarted, recovered
    assert seen == ["replied 1", "replied 3"]


# ------------------------------------------------------------- on_event failing after a persist


def flaky_account(
    journal: Any, trace: list[str], fail_on: set[int], failures: list[Exception]
) -> EventSourcedBehavior[Any, int]:
    """``account`` whose ``on_event`` raises once for each amount in ``fail_on``."""

    def on_event(balance: int, event: Deposited) -> int:
        if event.amount in fail_on:
            fail_on.discard(event.amount)
            trace.append(f"on_event fails on {event.amount}")
            raise ValueError(f"cannot apply {event.amount}")
        trace.append(f"apply {event.amount}")
        return balance + event.amount

    async def on_command(ctx: ActorContext[Any], balance: int, msg: Any) -> Behavior[Any]:
        match msg:
            case Deposit(amount, reply_to):

                def reply() -> None:
                    trace.append("reply")
                    if reply_to is not None:
                        reply_to.tell(balance + amount)

                return Behaviors.persisted(
                    [Deposited(amount)], reply=reply, on_failure=failures.append
                )
            case Get(reply_to):
                reply_to.tell(balance)
        return Behaviors.same()

    return Behaviors.event_sourced(
        entity_id="acc",
        journal=journal,
        initial_state=0,
        on_event=on_event,
        on_command=on_command,
    )


@pytest.mark.parametrize("directive", [Directive.resume, Directive.restart])
async def test_on_event_failing_after_a_persist_loses_no_event(
    autojump_clock: trio.testing.MockClock, directive: Directive
) -> None:
    trace: list[str] = []
    failures: list[Exception] = []
    journal = InMemoryJournal()
    behavior = Behaviors.supervise(
        flaky_account(journal, trace, {7}, failures), OneForOneStrategy(decider=lambda e: directive)
    )
    async with ActorSystem(name="t") as system:
        ref = system.spawn(behavior, "acc")
        ref.tell(Deposit(7))  # stored, then on_event raises: no reply
        # The next event gets the next sequence number, and the state is the journal's.
        assert await deposit(system, ref, 5) == 12
        assert await balance(system, ref) == 12
    assert [(e.sequence_nr, e.event) for e in await journal.load("acc")] == [
        (1, Deposited(7)),
        (2, Deposited(5)),
    ]
    assert "reply" in trace and trace.index("on_event fails on 7") < trace.index("apply 7")
    assert [str(f) for f in failures] == ["cannot apply 7"]  # the command's caller hears


async def test_a_resumed_entity_whose_recovery_fails_takes_no_command(
    autojump_clock: trio.testing.MockClock,
) -> None:
    trace: list[str] = []
    failures: list[Exception] = []
    journal = InMemoryJournal()

    class AlwaysFails(set[int]):
        def discard(self, value: int) -> None:
            pass  # on_event keeps failing on that amount, during recovery too

    behavior = Behaviors.supervise(
        flaky_account(journal, trace, AlwaysFails({7}), failures),
        OneForOneStrategy(decider=lambda e: Directive.resume),
    )
    async with ActorSystem(name="t") as system:
        ref = system.spawn(behavior, "acc")
        ref.tell(Deposit(7))
        with pytest.raises(casty_trio.AskTimeoutError):
            await deposit(system, ref, 5)  # recovery fails again: no state to serve it from
        with pytest.raises(casty_trio.AskTimeoutError):
            await balance(system, ref)
    assert [e.sequence_nr for e in await journal.load("acc")] == [1]


async def test_on_event_failing_after_a_persist_stops_an_unsupervised_entity(
    autojump_clock: trio.testing.MockClock,
) -> None:
    trace: list[str] = []
    failures: list[Exception] = []
    journal = InMemoryJournal()
    async with ActorSystem(name="t") as system:
        ref = system.spawn(flaky_account(journal, trace, {7}, failures), "acc")
        ref.tell(Deposit(7))
        await trio.testing.wait_all_tasks_blocked()
        assert system.lookup("/acc") is None
    assert [e.sequence_nr for e in await journal.load("acc")] == [1]
    assert "reply" not in trace


async def test_a_restart_right_after_spawning_a_child_serves_again(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def on_command(ctx: ActorContext[Any], state: int, msg: Any) -> Behavior[Any]:
        if msg == "spawn and fail":
            ctx.spawn(Behaviors.ignore(), "child")
            raise ValueError("fails right after spawning")
        msg.tell(len(ctx.children))
        return Behaviors.same()

    behavior = Behaviors.event_sourced(
        entity_id="e",
        journal=InMemoryJournal(),
        initial_state=0,
        on_event=lambda s, e: s,
        on_command=on_command,
    )
    supervised = Behaviors.supervise(
        behavior, OneForOneStrategy(decider=lambda e: Directive.restart)
    )
    async with ActorSystem(name="t") as system:
        ref = system.spawn(supervised, "e")
        ref.tell("spawn and fail")
        assert await system.ask(ref, lambda r: r, timeout=1.0) == 0
