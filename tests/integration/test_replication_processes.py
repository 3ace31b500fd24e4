"""Three real OS processes keep replicated accounts; the primary's process is SIGKILLed under load.

The bank of :mod:`casty_trio.cli._bank`: three node processes on loopback (``python -m
casty_trio.cli._bank_node``, each with its own in-memory journal) host the event-sourced
sharded type ``accounts`` with ``replicas=2, min_acks=1`` and the fast failure-detection
profile; the test process joins as a client-only member (it hosts nothing) and runs 8 clients
that deposit continuously to 20 accounts, each deposit with a unique write id. Then the process
hosting the primary of ``acc-0``'s shard is killed with SIGKILL while the clients keep writing.

Checks, once every account of the killed node confirmed a write sent after the kill:

* no confirmed write is lost: every confirmed write id is in its account's recovered history;
* no write is applied twice, and each balance is the sum of the writes it holds (so it is at
  least the sum of the confirmed ones);
* the survivors host every shard the killed node was primary of.

Every wait is bounded; every process is ended on the way out (``open_bank_cluster``).
"""

from __future__ import annotations

import itertools
import random
from typing import Any

import trio

from casty_trio import AskTimeoutError, ShardEnvelope, entity_shard
from casty_trio.cli._bank import (
    Audit,
    Audited,
    BankCluster,
    BankSpec,
    Confirmed,
    Deposit,
    open_bank_cluster,
)

ACCOUNTS = [f"acc-{k}" for k in range(20)]
CLIENTS = 8
LOAD = 1.5  # seconds of load before the kill
FAILOVER_BOUND = 20.0  # seconds until every account of the killed node confirms again
ASK_TIMEOUT = 0.5


async def _audit(bank: BankCluster, eid: str) -> Audited:
    with trio.fail_after(FAILOVER_BOUND):
        while True:
            try:
                answer: Audited = await bank.system.ask(
                    bank.accounts, lambda r: ShardEnvelope(eid, Audit(r)), timeout=ASK_TIMEOUT
                )
            except AskTimeoutError:
                continue
            return answer


async def test_sigkill_of_the_primary_under_load_loses_no_confirmed_write() -> None:
    spec = BankSpec(nodes=3, num_shards=20, replicas=2, min_acks=1, ack_timeout=2.0)
    rng = random.Random(11)
    confirmed: dict[str, dict[int, int]] = {eid: {} for eid in ACCOUNTS}
    write_ids = itertools.count(1)
    sent: dict[int, int] = {}  # write id -> amount, confirmed or not
    kill_time: list[float] = []
    watched: set[str] = set()
    recovered: set[str] = set()
    all_recovered = trio.Event()

    async with open_bank_cluster(spec) as bank:

        async def deposit(eid: str, amount: int, timeout: float = ASK_TIMEOUT) -> None:
            write_id = next(write_ids)
            sent[write_id] = amount
            sent_at = trio.current_time()
            try:
                answer: Any = await bank.system.ask(
                    bank.accounts,
                    lambda r: ShardEnvelope(eid, Deposit(write_id, amount, r)),
                    timeout=timeout,
                )
            except AskTimeoutError:
                return  # outcome unknown: neither confirmed nor counted
            if isinstance(answer, Confirmed):
                confirmed[eid][write_id] = amount
                if kill_time and sent_at >= kill_time[0] and eid in watched:
                    recovered.add(eid)
                    if recovered >= watched:
                        all_recovered.set()

        for eid in ACCOUNTS:
            await deposit(eid, 100, timeout=10.0)
        assert all(confirmed.values()), "every account confirmed its first write"
        before = await bank.primaries()

        async def client() -> None:
            while True:
                await deposit(rng.choice(ACCOUNTS), rng.randint(1, 100))

        async with trio.open_nursery() as nursery:
            for _ in range(CLIENTS):
                nursery.start_soon(client)
            await trio.sleep(LOAD)
            shard = entity_shard("acc-0", spec.num_shards)
            victim = next(n for n in bank.nodes if shard in before[n.name])
            victim_shards = set(before[victim.name])
            watched.update(e for e in ACCOUNTS if entity_shard(e, spec.num_shards) in victim_shards)
            confirmed_before_kill = sum(len(c) for c in confirmed.values())
            victim.kill()
            assert victim.killed_at is not None
            kill_time.append(victim.killed_at)
            with trio.fail_after(FAILOVER_BOUND):
                await all_recovered.wait()
            await trio.sleep(0.5)  # a little more load on the new primaries
            nursery.cancel_scope.cancel()

        assert confirmed_before_kill > 50, confirmed_before_kill
        after = await bank.primaries()
        assert victim.name not in after
        hosted = set().union(*map(set, after.values()))
        assert victim_shards <= hosted, (victim_shards, after)

        lost = []
        for eid in ACCOUNTS:
            audited = await _audit(bank, eid)
            held = audited.write_ids
            assert len(held) == len(set(held)), f"{eid}: a write applied twice: {held}"
            lost.extend((eid, w) for w in confirmed[eid] if w not in set(held))
            assert audited.balance == sum(sent[w] for w in held), eid
            assert audited.balance >= sum(confirmed[eid].values()), eid
        assert lost == [], f"confirmed writes lost: {lost}"
