"""The demo: replicated bank accounts on a 3-node cluster, and a node killed under load.

Three node processes on 127.0.0.1 (real WebSocket links) host the sharded type ``accounts``,
event-sourced, each node keeping its events in its own in-memory journal, replicated with
``replicas=2, min_acks=1``: a deposit is confirmed once the primary persisted it and one
replica acknowledged it. The demo's own process joins as a client-only member (it hosts
nothing, so its bookkeeping survives) and runs concurrent clients that deposit continuously.
After a while it SIGKILLs the node hosting the most primaries, keeps writing through the
failover (failure detection with the fast profile of ``docs/configuration.md``, then promotion
of a replica), and finally audits every account: each confirmed deposit must be in the
account's recovered history, and no balance may be below the sum of its confirmed deposits
(it may be above: a write can be persisted and replicated yet time out for its client).
"""

from __future__ import annotations

import itertools
import logging
import random
import sys
from typing import Any, TextIO

import attrs
import trio

from .._core import ActorRef
from .._errors import AskTimeoutError
from ..cluster import MemberDowned
from ..sharding import ShardEnvelope, entity_shard
from ._bank import Audit, Audited, BankCluster, BankSpec, Confirmed, Deposit, open_bank_cluster

_ASK_TIMEOUT = 0.5  # a client gives up on a write after this long and sends the next one
_FAILOVER_BOUND = 20.0  # seconds the demo waits for the killed node's accounts to answer
_AFTER_FAILOVER = 1.0  # seconds of load after the failover, before the audit


@attrs.define
class _NodeRow:
    name: str
    address: str
    before: int
    after: int | None = None
    killed: bool = False


@attrs.define
class DemoReport:
    """What the demo measured; :meth:`render` prints it as a table.

    Attributes:
        nodes: One row per node: primaries before the kill and after the failover.
        accounts: Accounts written to.
        clients: Concurrent writers.
        sent: Deposits sent.
        confirmed: Deposits confirmed to their client.
        rejected: Deposits answered ``Rejected`` (too few replica acks in time, or refused
            by a replica that knows a newer primary).
        timed_out: Deposits without an answer within the client's timeout (outcome unknown).
        lost: ``(account, write_id)`` of confirmed deposits missing after the failover.
        short: Accounts whose balance is below the sum of their confirmed deposits.
        above: Accounts holding unconfirmed writes on top of every confirmed one.
        failover_s: From the SIGKILL until every account of the killed node confirmed a
            write sent after the kill; None if that did not happen in time.
        downed_s: From the SIGKILL until the client saw the node downed.
        elapsed: Seconds the whole demo took.
    """

    nodes: list[_NodeRow]
    accounts: int
    clients: int
    sent: int = 0
    confirmed: int = 0
    rejected: int = 0
    timed_out: int = 0
    lost: list[tuple[str, int]] = attrs.Factory(list)
    short: list[str] = attrs.Factory(list)
    above: int = 0
    failover_s: float | None = None
    downed_s: float | None = None
    elapsed: float = 0.0

    @property
    def in_flight(self) -> int:
        """Deposits still unanswered when the load stopped."""
        return self.sent - self.confirmed - self.rejected - self.timed_out

    @property
    def consistent(self) -> bool:
        """Whether no confirmed write was lost and the failover completed."""
        return not self.lost and not self.short and self.failover_s is not None

    def render(self) -> str:
        """The final table, as text."""
        header = ("node", "address", "primaries before", "primaries after", "")
        rows = [
            [
                n.name,
                n.address,
                str(n.before),
                "-" if n.after is None else str(n.after),
                "killed (SIGKILL)" if n.killed else "",
            ]
            for n in self.nodes
        ]
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]

        def fmt(cells: list[str] | tuple[str, ...]) -> str:
            return "  ".join(
                c.rjust(w) if i in (2, 3) else c.ljust(w)
                for i, (c, w) in enumerate(zip(cells, widths, strict=True))
            ).rstrip()

        failover = "did not complete" if self.failover_s is None else f"{self.failover_s:.2f} s"
        downed = "not seen" if self.downed_s is None else f"{self.downed_s:.2f} s"
        verdict = (
            "every confirmed deposit survived the crash."
            if self.consistent
            else "CONFIRMED WRITES WERE LOST OR THE FAILOVER DID NOT COMPLETE."
        )
        out = [
            "",
            "casty_trio demo: replicated bank accounts on a 3-node cluster "
            "(replicas=2, min_acks=1)",
            "",
            fmt(header),
            fmt(["-" * w for w in widths]),
            *(fmt(r) for r in rows),
            "",
            f"writes sent        {self.sent:>8,}  by {self.clients} concurrent clients "
            f"to {self.accounts} accounts",
            f"writes confirmed   {self.confirmed:>8,}",
            f"not confirmed      {self.sent - self.confirmed:>8,}  "
            f"({self.timed_out} timed out, {self.rejected} rejected, {self.in_flight} in flight "
            "at the end: their outcome is unknown to the client)",
            f"writes lost        {len(self.lost):>8,}  "
            "(confirmed deposits missing from the recovered histories)",
            f"balances short     {len(self.short):>8,}  "
            "(balances below the sum of their confirmed deposits)",
            f"node downed after  {downed:>8}",
            f"failover time      {failover:>8}  "
            "(SIGKILL -> every account of the killed node confirms writes again)",
            f"total runtime      {self.elapsed:>6.1f} s",
            "",
            verdict,
            "",
        ]
        return "\n".join(out)


class _Progress:
    """The live progress line: rewritten in place on a terminal, one line a second otherwise."""

    def __init__(self, out: TextIO, start: float) -> None:
        self.out = out
        self.start = start
        self.tty = out.isatty()
        self.last_line = -1.0
        self.phase = "starting"

    def say(self, phase: str) -> None:
        self.phase = phase
        if not self.tty:
            self.out.write(f"[{trio.current_time() - self.start:5.1f}s] {phase}\n")
            self.out.flush()

    def show(self, report: DemoReport, rate: float) -> None:
        now = trio.current_time() - self.start
        line = (
            f"[{now:5.1f}s] confirmed {report.confirmed:>7,}  {rate:>6,.0f} writes/s  "
            f"unconfirmed {report.rejected + report.timed_out:>4}  {self.phase}"
        )
        if self.tty:
            self.out.write("\r" + line.ljust(110)[:110])
            self.out.flush()
        elif now - self.last_line >= 1.0:
            self.last_line = now
            self.out.write(line + "\n")
            self.out.flush()

    def done(self) -> None:
        if self.tty:
            self.out.write("\n")
            self.out.flush()


@attrs.define(eq=False)
class _Ledger:
    """The client side's view: what was confirmed, per account."""

    report: DemoReport
    confirmed: dict[str, dict[int, int]]
    kill_time: float | None = None
    watched: frozenset[str] = frozenset()
    recovered: dict[str, float] = attrs.Factory(dict)
    recovered_all: trio.Event = attrs.Factory(trio.Event)

    def record(self, account: str, write_id: int, amount: int, sent_at: float) -> None:
        self.report.confirmed += 1
        self.confirmed[account][write_id] = amount
        if (
            self.kill_time is not None
            and sent_at >= self.kill_time
            and account in self.watched
            and account not in self.recovered
        ):
            self.recovered[account] = trio.current_time() - self.kill_time
            if len(self.recovered) == len(self.watched):
                self.recovered_all.set()


async def run_demo(
    accounts: int = 30,
    clients: int = 16,
    load: float = 2.0,
    seed: int = 7,
    out: TextIO | None = None,
) -> DemoReport:
    """Run the demo and return its report. A checkpoint; runs inside ``trio.run``.

    Args:
        accounts: Accounts the clients deposit to.
        clients: Concurrent clients, each sending one deposit at a time.
        load: Seconds of load before a node is killed.
        seed: Seed of the clients' random choices.
        out: Where the progress goes (default: standard output).

    Raises:
        RuntimeError: A node process did not start, or an account never answered its audit.
    """
    logger = logging.getLogger("casty_trio")
    level = logger.level
    # Refused dials and dropped messages to the killed node are the point of the demo.
    logger.setLevel(logging.ERROR)
    try:
        return await _run(accounts, clients, load, random.Random(seed), out or sys.stdout)
    finally:
        logger.setLevel(level)


async def _run(
    accounts: int, clients: int, load: float, rng: random.Random, out: TextIO
) -> DemoReport:
    start = trio.current_time()
    progress = _Progress(out, start)
    spec = BankSpec()
    ids = [f"acc-{i + 1}" for i in range(accounts)]
    async with open_bank_cluster(spec, on_progress=progress.say) as bank:
        report = DemoReport([], accounts, clients)
        ledger = _Ledger(report, {eid: {} for eid in ids})
        write_ids = itertools.count(1)
        progress.say("opening the accounts")
        for eid in ids:  # one deposit each: every shard gets a primary and two replicas
            await _deposit(bank, ledger, eid, next(write_ids), 100, timeout=10.0)
        before = await bank.primaries()
        report.nodes = [_NodeRow(n.name, str(n.address), len(before[n.name])) for n in bank.nodes]

        async with (
            bank.system.event_stream.subscription(MemberDowned) as downed,
            trio.open_nursery() as nursery,
        ):

            async def client() -> None:
                while True:
                    eid = rng.choice(ids)
                    await _deposit(bank, ledger, eid, next(write_ids), rng.randint(1, 100))

            async def show() -> None:
                history = [(trio.current_time(), 0)]
                while True:
                    await trio.sleep(0.2)
                    history.append((trio.current_time(), report.confirmed))
                    history = history[-6:]
                    (t0, n0), (t1, n1) = history[0], history[-1]
                    progress.show(report, (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0)

            nursery.start_soon(show)
            progress.say(f"{clients} clients depositing")
            for _ in range(clients):
                nursery.start_soon(client)
            await trio.sleep(load)

            victim = max(bank.nodes, key=lambda n: (len(before[n.name]), n.index))
            shards = set(before[victim.name])
            ledger.watched = frozenset(e for e in ids if entity_shard(e, spec.num_shards) in shards)
            victim.kill()
            ledger.kill_time = victim.killed_at
            progress.say(f"SIGKILL {victim.name} ({len(shards)} primaries)")
            next(r for r in report.nodes if r.name == victim.name).killed = True

            async def wait_downed() -> None:
                async for event in downed:
                    if event.member.node == victim.address:
                        assert victim.killed_at is not None
                        report.downed_s = trio.current_time() - victim.killed_at
                        progress.say(f"{victim.name} downed, replicas take over")
                        return

            nursery.start_soon(wait_downed)
            with trio.move_on_after(_FAILOVER_BOUND):
                await ledger.recovered_all.wait()
                report.failover_s = max(ledger.recovered.values(), default=0.0)
                progress.say(f"every account of {victim.name} confirms writes again")
            await trio.sleep(_AFTER_FAILOVER)
            nursery.cancel_scope.cancel()  # in-flight writes: outcome unknown, not counted
        progress.done()

        progress.say("auditing every account")
        after = await bank.primaries()
        for row in report.nodes:
            row.after = len(after[row.name]) if row.name in after else None
        for eid in ids:
            audited = await _audit(bank, eid)
            held = set(audited.write_ids)
            mine = ledger.confirmed[eid]
            report.lost.extend((eid, w) for w in sorted(mine) if w not in held)
            if audited.balance < sum(mine.values()):
                report.short.append(eid)
            elif audited.balance > sum(mine.values()):
                report.above += 1
        progress.say("stopping the cluster")
    report.elapsed = trio.current_time() - start
    return report


async def _deposit(
    bank: BankCluster,
    ledger: _Ledger,
    eid: str,
    write_id: int,
    amount: int,
    timeout: float = _ASK_TIMEOUT,
) -> None:
    report = ledger.report
    report.sent += 1
    sent_at = trio.current_time()

    def build(reply_to: ActorRef[Any]) -> ShardEnvelope[Deposit]:
        return ShardEnvelope(eid, Deposit(write_id, amount, reply_to))

    try:
        answer = await bank.system.ask(bank.accounts, build, timeout=timeout)
    except AskTimeoutError:
        report.timed_out += 1
        return
    if isinstance(answer, Confirmed):
        ledger.record(eid, write_id, amount, sent_at)
    else:
        report.rejected += 1


async def _audit(bank: BankCluster, eid: str) -> Audited:
    """The account's audit, asked again until it answers (bounded by the failover bound)."""

    def build(reply_to: ActorRef[Audited]) -> ShardEnvelope[Audit]:
        return ShardEnvelope(eid, Audit(reply_to))

    with trio.move_on_after(_FAILOVER_BOUND):
        while True:
            try:
                answer: Audited = await bank.system.ask(bank.accounts, build, timeout=_ASK_TIMEOUT)
            except AskTimeoutError:
                continue
            return answer
    raise RuntimeError(f"account {eid} did not answer within {_FAILOVER_BOUND} s")
