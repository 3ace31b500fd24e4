"""Shard replication on a simulated cluster: placement, acks, timeouts, failover, fencing."""

from __future__ import annotations

from typing import Any, cast

import attrs
import pytest
import trio

from casty_trio import (
    ActorContext,
    ActorRef,
    Behavior,
    Behaviors,
    InMemoryJournal,
    PersistedEvent,
    ReplicateEvents,
    ReplicateEventsAck,
    ReplicationConfig,
    ShardEnvelope,
    entity_shard,
)
from casty_trio.testing import open_test_cluster

from .._sharding_support import Balance, Deposited


@attrs.frozen
class Write:
    amount: int
    reply_to: ActorRef[Any]


@attrs.frozen
class Confirmed:
    balance: int
    sequence_nr: int


@attrs.frozen
class Failed:
    error: str
    # the error's fields (all but its message), not compared: tests check them explicitly
    fields: dict[str, Any] = attrs.field(factory=dict, eq=False)


def ledger(journal: InMemoryJournal) -> Any:
    """Accounts keeping their history in this node's ``journal``; a write answers Confirmed
    (after replication) or Failed (on_failure)."""

    def factory(entity_id: str) -> Behavior[Any]:
        async def on_command(ctx: ActorContext[Any], state: tuple[int, int], msg: Any) -> Any:
            balance, seq = state
            if isinstance(msg, Write):
                reply_to = msg.reply_to
                return Behaviors.persisted(
                    [Deposited(msg.amount)],
                    reply=lambda: reply_to.tell(Confirmed(balance + msg.amount, seq + 1)),
                    on_failure=lambda exc: reply_to.tell(Failed(type(exc).__name__, _fields(exc))),
                )
            if isinstance(msg, Balance):
                msg.reply_to.tell(balance)
            return Behaviors.same()

        return Behaviors.event_sourced(
            entity_id=entity_id,
            journal=journal,
            initial_state=(0, 0),
            on_event=lambda state, event: (state[0] + event.amount, state[1] + 1),
            on_command=on_command,
        )

    return factory


def _fields(exc: Exception) -> dict[str, Any]:
    return {k: v for k, v in vars(exc).items() if k != "message"}


def test_seed_shapes_and_reprs() -> None:
    assert repr(ReplicationConfig(replicas=2, min_acks=1, ack_timeout=3.0)) == (
        "ReplicationConfig(replicas=2, min_acks=1, ack_timeout=3.0)"
    )
    assert ReplicationConfig() == ReplicationConfig(replicas=0, min_acks=0, ack_timeout=5.0)
    evt = PersistedEvent(1, "opened", 0.0)
    assert repr(ReplicateEvents("user-1", shard_id=7, events=(evt,))).startswith(
        "ReplicateEvents(entity_id='user-1', shard_id=7, "
    )
    assert ReplicateEvents("user-1", 7, (evt,)).reply_to is None
    assert repr(ReplicateEventsAck("user-1", sequence_nr=5)) == (
        "ReplicateEventsAck(entity_id='user-1', sequence_nr=5)"
    )


def test_min_acks_above_replicas_is_refused_at_spawn() -> None:
    with pytest.raises(ValueError, match="min_acks=3 exceeds replicas=2"):
        Behaviors.sharded(
            ledger(InMemoryJournal()), replication=ReplicationConfig(replicas=2, min_acks=3)
        )


async def _spawn_all(
    cluster: Any, journals: list[InMemoryJournal], config: ReplicationConfig, num_shards: int = 10
) -> list[ActorRef[Any]]:
    return [
        cluster.node(i).spawn(
            Behaviors.sharded(ledger(journals[i]), num_shards=num_shards, replication=config),
            "ledger",
        )
        for i in range(len(journals))
    ]


async def _write(node: Any, ref: ActorRef[Any], eid: str, amount: int) -> Any:
    return await node.ask(ref, lambda r: ShardEnvelope(eid, Write(amount, r)), timeout=20)


def _home(cluster: Any, n: int, eid: str, num_shards: int = 10) -> int:
    shard = entity_shard(eid, num_shards)
    homes = [
        i
        for i in range(n)
        if cluster.is_running(i) and shard in cluster.node(i).region_statistics("ledger").shards
    ]
    assert len(homes) == 1, homes
    return homes[0]


async def test_writes_reach_every_replica_and_confirm_promptly(autojump_clock: Any) -> None:
    journals = [InMemoryJournal() for _ in range(3)]
    async with open_test_cluster(3) as cluster:
        refs = await _spawn_all(cluster, journals, ReplicationConfig(2, 2, ack_timeout=5.0))
        await _write(cluster.node(0), refs[0], "acct-1", 5)
        start = trio.current_time()
        answer = await _write(cluster.node(1), refs[1], "acct-1", 7)
        elapsed = trio.current_time() - start
        assert answer == Confirmed(12, 2)
        assert elapsed < 0.1  # acks are seen as they arrive, not at the timeout
        await trio.sleep(0.5)
        for journal in journals:
            assert [e.sequence_nr for e in await journal.load("acct-1")] == [1, 2]


async def test_failover_keeps_confirmed_writes(autojump_clock: Any) -> None:
    journals = [InMemoryJournal() for _ in range(3)]
    async with open_test_cluster(3) as cluster:
        refs = await _spawn_all(cluster, journals, ReplicationConfig(2, 1, ack_timeout=5.0))
        ids = [f"acct-{k}" for k in range(12)]
        for k in range(3):
            for eid in ids:
                assert isinstance(await _write(cluster.node(k), refs[k], eid, 10), Confirmed)
        victim = _home(cluster, 3, ids[0])
        await cluster.kill(victim)
        survivor = next(i for i in range(3) if i != victim)
        for eid in ids:
            with trio.fail_after(60):
                while True:
                    try:
                        balance = await cluster.node(survivor).ask(
                            refs[survivor],
                            lambda r, eid=eid: ShardEnvelope(eid, Balance(r)),
                            timeout=2,
                        )
                        break
                    except TimeoutError:
                        continue
            assert balance == 30, (eid, balance)
        answer = await _write(cluster.node(survivor), refs[survivor], ids[0], 1)
        assert answer == Confirmed(31, 4)


async def test_too_few_acks_fail_the_write_after_the_timeout(autojump_clock: Any) -> None:
    journals = [InMemoryJournal() for _ in range(2)]
    async with open_test_cluster(2) as cluster:
        # Two acks needed, but a two-node cluster has only one replica per shard.
        refs = await _spawn_all(cluster, journals, ReplicationConfig(2, 2, ack_timeout=3.0))
        start = trio.current_time()
        answer = await _write(cluster.node(0), refs[0], "acct-1", 5)
        assert answer == Failed("ReplicationTimeoutError")
        assert answer.fields == {
            "entity_id": "acct-1",
            "shard": entity_shard("acct-1", 10),
            "sequence_nr": 1,
            "needed": 2,
            "acked": 1,
        }
        assert 3.0 <= trio.current_time() - start < 3.5
        home = _home(cluster, 2, "acct-1")
        assert [e.sequence_nr for e in await journals[home].load("acct-1")] == [1]
        await trio.sleep(0.5)
        assert [e.sequence_nr for e in await journals[1 - home].load("acct-1")] == [1]


def _replication(cluster: Any, i: int) -> Any:
    """The region's replication state on node ``i`` (white-box)."""
    return cluster.node(i)._regions.get("ledger")._target.state.replication


async def _setup_entity(
    cluster: Any, journals: list[InMemoryJournal], config: ReplicationConfig
) -> tuple[list[ActorRef[Any]], int, list[int], int]:
    refs = await _spawn_all(cluster, journals, config)
    assert isinstance(await _write(cluster.node(0), refs[0], "acct-1", 1), Confirmed)
    home = _home(cluster, 3, "acct-1")
    shard = entity_shard("acct-1", 10)
    replicas = [cluster.address(i) for i in range(3)]
    chosen = [replicas.index(n) for n in _replication(cluster, home).primaries[shard].replicas]
    # Confirmed after the first ack: the other replica gets the write right after it.
    with trio.fail_after(5):
        for r in chosen:
            while await _sequence_nrs(journals[r]) != [1]:
                await trio.sleep(0.01)
    return refs, home, chosen, shard


async def _sequence_nrs(journal: InMemoryJournal) -> list[int]:
    return [e.sequence_nr for e in await journal.load("acct-1")]


class _Blocking:
    """An InMemoryJournal without ``persist_nowait``: replicas store into it in their actor."""

    def __init__(self) -> None:
        self._inner = InMemoryJournal()

    async def persist(self, entity_id: str, events: Any) -> None:
        await self._inner.persist(entity_id, events)

    async def load(self, entity_id: str, from_sequence_nr: int = 0) -> Any:
        return await self._inner.load(entity_id, from_sequence_nr)

    async def save_snapshot(self, entity_id: str, snapshot: Any) -> None:
        await self._inner.save_snapshot(entity_id, snapshot)

    async def load_snapshot(self, entity_id: str) -> Any:
        return await self._inner.load_snapshot(entity_id)

    async def highest_sequence_nr(self, entity_id: str) -> int:
        return await self._inner.highest_sequence_nr(entity_id)


@pytest.mark.parametrize("journal_kind", [InMemoryJournal, _Blocking])
async def test_duplicated_batches_are_stored_once(autojump_clock: Any, journal_kind: Any) -> None:
    journals = [journal_kind() for _ in range(3)]
    async with open_test_cluster(3) as cluster:
        refs, home, replicas, _ = await _setup_entity(
            cluster, journals, ReplicationConfig(2, 2, ack_timeout=5.0)
        )
        for r in replicas:
            cluster.network.set_duplication(cluster.address(home), cluster.address(r), 1.0)
        for amount in (2, 3, 4):
            assert isinstance(
                await _write(cluster.node(home), refs[home], "acct-1", amount), Confirmed
            )
        await trio.sleep(0.5)
        for r in replicas:
            assert await _sequence_nrs(journals[r]) == [1, 2, 3, 4]


@pytest.mark.parametrize("journal_kind", [InMemoryJournal, _Blocking])
async def test_a_replica_that_missed_events_catches_up_on_the_next_batch(
    autojump_clock: Any, journal_kind: Any
) -> None:
    journals = [journal_kind() for _ in range(3)]
    async with open_test_cluster(3) as cluster:
        # A long ack timeout: only the gap in the next batch can trigger the catch-up.
        refs, home, replicas, _ = await _setup_entity(
            cluster, journals, ReplicationConfig(2, 1, ack_timeout=60.0)
        )
        behind = replicas[0]
        net = cluster.network
        net.set_loss(cluster.address(home), cluster.address(behind), 1.0)
        for amount in (2, 3, 4):
            assert isinstance(
                await _write(cluster.node(home), refs[home], "acct-1", amount), Confirmed
            )
        net.set_loss(cluster.address(home), cluster.address(behind), None)
        assert await _sequence_nrs(journals[behind]) == [1]
        assert await _write(cluster.node(home), refs[home], "acct-1", 5) == Confirmed(15, 5)
        await trio.sleep(0.5)
        assert await _sequence_nrs(journals[behind]) == [1, 2, 3, 4, 5]


async def test_unacked_events_keep_replicating_without_new_writes(autojump_clock: Any) -> None:
    journals = [InMemoryJournal() for _ in range(3)]
    async with open_test_cluster(3) as cluster:
        refs, home, replicas, _ = await _setup_entity(
            cluster, journals, ReplicationConfig(2, 1, ack_timeout=1.0)
        )
        behind = replicas[0]
        net = cluster.network
        net.set_loss(cluster.address(home), cluster.address(behind), 1.0)
        for amount in (2, 3):
            assert isinstance(
                await _write(cluster.node(home), refs[home], "acct-1", amount), Confirmed
            )
        net.set_loss(cluster.address(home), cluster.address(behind), None)
        await trio.sleep(3.0)  # the link re-sends what stayed unacked for ack_timeout
        assert await _sequence_nrs(journals[behind]) == [1, 2, 3]


async def test_a_new_replica_is_filled_with_the_history(autojump_clock: Any) -> None:
    journals = [InMemoryJournal() for _ in range(3)]
    async with open_test_cluster(3, wait=False) as cluster:
        await cluster.wait_for_up(3)
        await cluster.kill(2)
        with trio.fail_after(30):
            while len(cluster.node(0).cluster_gossip().members) > 2 and any(
                m.status.value == "up" and m.node == cluster.address(2)
                for m in cluster.node(0).cluster_gossip().members.values()
            ):
                await trio.sleep(0.5)
        refs = [
            cluster.node(i).spawn(
                Behaviors.sharded(
                    ledger(journals[i]), num_shards=10, replication=ReplicationConfig(2, 1, 5.0)
                ),
                "ledger",
            )
            for i in (0, 1)
        ]
        for amount in (1, 2, 3):
            assert isinstance(await _write(cluster.node(0), refs[0], "acct-1", amount), Confirmed)
        await cluster.restart(2)
        cluster.node(2).spawn(
            Behaviors.sharded(
                ledger(journals[2]), num_shards=10, replication=ReplicationConfig(2, 1, 5.0)
            ),
            "ledger",
        )
        await cluster.wait_for_up(3)
        with trio.fail_after(10):
            while await _sequence_nrs(journals[2]) != [1, 2, 3]:
                await trio.sleep(0.2)


async def test_a_primary_refused_by_its_replicas_stops_and_confirms_nothing(
    autojump_clock: Any,
) -> None:
    journals = [InMemoryJournal() for _ in range(3)]
    async with open_test_cluster(3) as cluster:
        refs, home, replicas, shard = await _setup_entity(
            cluster, journals, ReplicationConfig(2, 1, ack_timeout=2.0)
        )
        epoch = _replication(cluster, home).primaries[shard].epoch
        for r in replicas:  # the replicas heard of a newer allocation of the shard
            _replication(cluster, r).replica_of[shard] = (epoch + 1, cluster.address(r))
        start = trio.current_time()
        answer = await _write(cluster.node(home), refs[home], "acct-1", 2)
        # A refusal, not a timeout: it arrives as soon as a replica refuses.
        assert answer == Failed("ReplicationFencedError")
        assert answer.fields == {
            "entity_id": "acct-1",
            "shard": shard,
            "sequence_nr": 2,
            "epoch": epoch + 1,
        }
        assert trio.current_time() - start < 1.0
        await trio.sleep(0.1)  # the entity stops once its command is done
        assert shard not in cluster.node(home).region_statistics("ledger").shards
        for r in replicas:
            assert await _sequence_nrs(journals[r]) == [1]


async def test_messages_sent_during_failover_wait_and_are_delivered(autojump_clock: Any) -> None:
    journals = [InMemoryJournal() for _ in range(3)]
    async with open_test_cluster(3) as cluster:
        refs, home, replicas, _ = await _setup_entity(
            cluster, journals, ReplicationConfig(2, 1, ack_timeout=5.0)
        )
        victim = cluster.node(home).self_unique
        survivor = replicas[0]
        await cluster.kill(home)
        with trio.fail_after(30):
            while cluster.node(survivor).cluster_gossip().members[victim].status.value == "up":
                await trio.sleep(0.05)
        # The primary is downed: the shard is being promoted (failover_margin, query, sync).
        start = trio.current_time()
        async with trio.open_nursery() as nursery:
            answers: list[Any] = []

            async def write(amount: int) -> None:
                answers.append(
                    await _write(cluster.node(survivor), refs[survivor], "acct-1", amount)
                )

            for amount in (2, 3, 4):
                nursery.start_soon(write, amount)
                await trio.sleep(0)
        assert trio.current_time() - start >= 1.0  # they waited for the promotion
        assert sorted(a.sequence_nr for a in answers) == [2, 3, 4]
        assert all(isinstance(a, Confirmed) for a in answers)


async def test_a_graceful_leave_moves_primaries_and_replicas_with_their_history(
    autojump_clock: Any,
) -> None:
    journals = [InMemoryJournal() for _ in range(3)]
    async with open_test_cluster(3) as cluster:
        refs = await _spawn_all(cluster, journals, ReplicationConfig(1, 1, ack_timeout=5.0))
        ids = [f"acct-{k}" for k in range(12)]
        for k in range(2):
            for eid in ids:
                assert isinstance(await _write(cluster.node(k), refs[k], eid, 10), Confirmed)
        assert cluster.node(2).region_statistics("ledger").shards
        await cluster.stop(2)
        for eid in ids:
            answer = await _write(cluster.node(0), refs[0], eid, 1)
            assert answer == Confirmed(21, 3), (eid, answer)
        await trio.sleep(1.0)
        for eid in ids:  # both survivors hold every entity's whole history
            for i in (0, 1):
                assert [e.sequence_nr for e in await journals[i].load(eid)] == [1, 2, 3], (eid, i)


async def test_writes_go_first_to_the_fastest_replica_then_to_the_others(
    autojump_clock: Any,
) -> None:
    journals = [InMemoryJournal() for _ in range(3)]
    async with open_test_cluster(3) as cluster:
        refs, home, replicas, _ = await _setup_entity(
            cluster, journals, ReplicationConfig(2, 1, ack_timeout=5.0)
        )
        fast, slow = replicas
        cluster.network.set_latency(cluster.address(home), cluster.address(slow), 0.05)
        node = cluster.node(home)
        for amount in range(2, 6):  # a few writes teach the primary which replica is faster
            assert isinstance(await _write(node, refs[home], "acct-1", amount), Confirmed)
        latency = _replication(cluster, home).ack_latency
        assert latency[cluster.address(fast)] < latency[cluster.address(slow)]
        start = trio.current_time()
        assert await _write(node, refs[home], "acct-1", 6) == Confirmed(21, 6)
        assert trio.current_time() - start < 0.02  # one fast round trip: 2 x 1 ms
        assert await _sequence_nrs(journals[fast]) == [1, 2, 3, 4, 5, 6]
        assert len(await _sequence_nrs(journals[slow])) < 6  # sent after the fast ack
        await trio.sleep(0.2)
        assert await _sequence_nrs(journals[slow]) == [1, 2, 3, 4, 5, 6]


async def test_a_replica_that_stops_acking_is_hedged_around(autojump_clock: Any) -> None:
    journals = [InMemoryJournal() for _ in range(3)]
    async with open_test_cluster(3) as cluster:
        refs, home, replicas, _ = await _setup_entity(
            cluster, journals, ReplicationConfig(2, 1, ack_timeout=5.0)
        )
        node = cluster.node(home)
        replication = _replication(cluster, home)
        preferred = min(replicas, key=lambda r: replication.ack_latency[cluster.address(r)])
        other = next(r for r in replicas if r != preferred)
        cluster.partition(home, preferred)  # not yet noticed: still a replica
        start = trio.current_time()
        assert await _write(node, refs[home], "acct-1", 2) == Confirmed(3, 2)
        # confirmed by the other replica after the hedge delay, far from the ack timeout
        assert trio.current_time() - start < 0.1
        assert await _sequence_nrs(journals[other]) == [1, 2]
        start = trio.current_time()
        assert await _write(node, refs[home], "acct-1", 3) == Confirmed(6, 3)
        assert trio.current_time() - start < 0.01  # now the other goes first


class _Counting(InMemoryJournal):
    """An InMemoryJournal that counts the batches stored into it."""

    def __init__(self) -> None:
        super().__init__()
        self.batches = 0

    def persist_nowait(self, entity_id: str, events: Any) -> None:
        self.batches += 1
        super().persist_nowait(entity_id, events)


async def test_replicas_beyond_min_acks_get_confirmed_writes_together(
    autojump_clock: Any,
) -> None:
    journals: list[InMemoryJournal] = [_Counting() for _ in range(3)]
    async with open_test_cluster(3) as cluster:
        refs, home, replicas, _ = await _setup_entity(
            cluster, journals, ReplicationConfig(2, 1, ack_timeout=5.0)
        )
        fast, slow = replicas
        cluster.network.set_latency(cluster.address(home), cluster.address(slow), 0.003)
        node = cluster.node(home)
        for amount in range(2, 5):  # the primary learns which replica acks first
            assert isinstance(await _write(node, refs[home], "acct-1", amount), Confirmed)
        await trio.sleep(0.1)
        counts = [cast(_Counting, journals[r]).batches for r in (fast, slow)]
        for amount in range(5, 25):  # 20 writes in about 40 ms
            assert isinstance(await _write(node, refs[home], "acct-1", amount), Confirmed)
        await trio.sleep(0.1)
        everything = list(range(1, 25))
        assert await _sequence_nrs(journals[fast]) == everything
        assert await _sequence_nrs(journals[slow]) == everything
        fast_batches = cast(_Counting, journals[fast]).batches - counts[0]
        slow_batches = cast(_Counting, journals[slow]).batches - counts[1]
        assert fast_batches == 20  # one per write: each waits for it
        assert slow_batches <= 12  # a batch per LAZY_DELAY (5 ms), not one per write


@pytest.mark.parametrize(("far_latency", "first_is_origin"), [(0.0018, True), (0.003, False)])
async def test_a_write_goes_first_to_the_replica_on_the_node_its_reply_goes_to(
    autojump_clock: Any, far_latency: float, first_is_origin: bool
) -> None:
    """With min_acks=1 of 2 replicas, a write asked from a replica's node is confirmed
    through that replica even when the other one acks faster, unless it acks over twice as
    slowly (ORIGIN_FACTOR)."""
    journals = [InMemoryJournal() for _ in range(3)]
    async with open_test_cluster(3) as cluster:
        refs, home, replicas, _ = await _setup_entity(
            cluster, journals, ReplicationConfig(2, 1, ack_timeout=5.0)
        )
        near, far = replicas
        cluster.network.set_latency(cluster.address(home), cluster.address(near), 0.001)
        cluster.network.set_latency(cluster.address(home), cluster.address(far), far_latency)
        asker = cluster.node(far)
        for amount in range(2, 30):  # the primary learns both replicas' ack latencies
            assert isinstance(await _write(asker, refs[far], "acct-1", amount), Confirmed)
            await trio.sleep(0.02)
        answer = await _write(asker, refs[far], "acct-1", 30)
        assert isinstance(answer, Confirmed) and answer.sequence_nr == 30
        # Confirmed by one replica; the other gets the write only after LAZY_DELAY.
        held = [await _sequence_nrs(journals[r]) == list(range(1, 31)) for r in (far, near)]
        assert held == ([True, False] if first_is_origin else [False, True])


async def test_a_handoff_asked_for_while_a_new_primary_syncs_starts_after_the_sync(
    autojump_clock: Any,
) -> None:
    """The coordinator rebalances right after a failover, while its new primaries still copy
    their history: a handoff asked for then waits for the end of the copy, rather than being
    dropped (the shard's messages would then wait for the coordinator's handoff timeout)."""
    from casty_trio.sharding._hosted import COLLECTING, SYNCING
    from casty_trio.sharding._wire import HandOff
    from casty_trio.sharding.replication._replication import SyncDone

    journals = [InMemoryJournal() for _ in range(3)]
    async with open_test_cluster(3) as cluster:
        _, home, _, shard = await _setup_entity(
            cluster, journals, ReplicationConfig(2, 1, ack_timeout=5.0)
        )
        region = cluster.node(home)._regions.get("ledger")._target.state  # white-box
        hosted = region.hosted[shard]
        hosted.state = SYNCING  # as a new primary copying its history
        others = [cluster.address(i) for i in range(3) if i != home]
        regions = [(node.host, node.port) for node in others]
        region.on_hand_off(HandOff(shard, hosted.epoch, 7, regions))
        assert hosted.state == SYNCING
        region.primary.on_sync_done(SyncDone(shard))
        assert hosted.state == COLLECTING and hosted.round == 7  # waits for the markers
