"""The bank demo: supervised account actors, asks under load, a crash and its restart.

Each account is an actor whose state lives in closures. Its setup reads the opening balance
from a ledger (a stand-in for durable storage that every change is written through to), so when
supervision restarts a crashed account, setup runs again and the balance comes back. Tellers
send deposits and withdrawals concurrently with ``ask``; halfway through, one account is made to
crash. At the end every account's balance is checked against what the tellers saw confirmed.
"""

from __future__ import annotations

import logging
import random
import time
from functools import partial
from typing import Any

import attrs
import trio
import trio.lowlevel

from .._core import (
    ActorContext,
    ActorRef,
    ActorRestarted,
    ActorSystem,
    Behavior,
    Behaviors,
    OneForOneStrategy,
)

_TELLERS = 4


@attrs.frozen
class Deposit:
    amount: int
    reply_to: ActorRef[bool]


@attrs.frozen
class Withdraw:
    amount: int
    reply_to: ActorRef[bool]


@attrs.frozen
class GetBalance:
    reply_to: ActorRef[int]


@attrs.frozen
class Glitch:
    """Makes an account raise, as a bug in a handler would."""


AccountMsg = Deposit | Withdraw | GetBalance | Glitch


def account(account_id: str, ledger: dict[str, int]) -> Behavior[AccountMsg]:
    """A supervised bank account that recovers its balance from ``ledger`` on restart."""

    def active(balance: int) -> Behavior[AccountMsg]:
        async def receive(ctx: ActorContext[AccountMsg], msg: AccountMsg) -> Behavior[AccountMsg]:
            match msg:
                case Deposit(amount, reply_to):
                    ledger[account_id] = balance + amount
                    reply_to.tell(True)
                    return active(balance + amount)
                case Withdraw(amount, reply_to):
                    if amount > balance:
                        reply_to.tell(False)
                        return Behaviors.same()
                    ledger[account_id] = balance - amount
                    reply_to.tell(True)
                    return active(balance - amount)
                case GetBalance(reply_to):
                    reply_to.tell(balance)
                    return Behaviors.same()
                case Glitch():
                    raise RuntimeError(f"simulated bug in {account_id}")

        return Behaviors.receive(receive)

    async def setup(ctx: ActorContext[AccountMsg]) -> Behavior[AccountMsg]:
        return active(ledger.get(account_id, 0))

    return Behaviors.supervise(
        Behaviors.setup(setup), OneForOneStrategy(max_restarts=3, within=10.0)
    )


def bank(account_ids: list[str], ledger: dict[str, int]) -> Behavior[Any]:
    """The parent of every account: accounts are its children, at ``/bank/<id>``."""

    async def setup(ctx: ActorContext[Any]) -> Behavior[Any]:
        for account_id in account_ids:
            ctx.spawn(account(account_id, ledger), account_id)
        return Behaviors.ignore()

    return Behaviors.setup(setup)


@attrs.define
class _Row:
    account_id: str
    expected: int = 0
    deposits: int = 0
    withdrawals: int = 0
    rejected: int = 0
    restarts: int = 0
    balance: int = 0


@attrs.define
class DemoReport:
    """What the demo measured; :meth:`render` prints it as a table."""

    rows: list[_Row]
    operations: int
    elapsed: float
    crashed: str
    log: list[str] = attrs.Factory(list)

    @property
    def consistent(self) -> bool:
        """Whether every balance equals the sum of the operations confirmed to tellers."""
        return all(row.balance == row.expected for row in self.rows)

    def render(self) -> str:
        header = ("account", "balance", "deposits", "withdrawals", "rejected", "restarts", "check")
        lines = [
            [
                row.account_id,
                str(row.balance),
                str(row.deposits),
                str(row.withdrawals),
                str(row.rejected),
                str(row.restarts),
                "ok" if row.balance == row.expected else f"MISMATCH (expected {row.expected})",
            ]
            for row in self.rows
        ]
        widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]

        def fmt(cells: tuple[str, ...] | list[str]) -> str:
            return "  ".join(
                c.ljust(w) if i == 0 or i == len(cells) - 1 else c.rjust(w)
                for i, (c, w) in enumerate(zip(cells, widths, strict=True))
            ).rstrip()

        rate = self.operations / self.elapsed if self.elapsed > 0 else 0.0
        out = [
            "",
            "casty_trio bank demo: supervised accounts on one ActorSystem",
            "",
            fmt(header),
            fmt(["-" * w for w in widths]),
            *(fmt(line) for line in lines),
            "",
            f"{self.operations} asks by {_TELLERS} concurrent tellers in {self.elapsed:.2f}s "
            f"({rate:,.0f} asks/s).",
            f"{self.crashed} crashed halfway, was restarted by its supervisor and recovered its "
            "balance in setup.",
            "every balance matches what the tellers saw confirmed."
            if self.consistent
            else "SOME BALANCES DO NOT MATCH.",
            "",
            "what the actors logged:",
            *(f"  {line}" for line in self.log or ["(nothing)"]),
            "",
        ]
        return "\n".join(out)


class _Collect(logging.Handler):
    """Keeps the actors' log lines for the report: message and exception, no traceback."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        line = f"{record.levelname.lower()}: {record.getMessage()}"
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            line += f" ({type(exc).__name__}: {exc})"
        self.lines.append(line)


async def run_demo(accounts: int = 5, operations: int = 20_000, seed: int = 7) -> DemoReport:
    """Run the bank demo and return its report. A checkpoint; runs inside ``trio.run``."""
    collect = _Collect()
    logger = logging.getLogger("casty_trio.actor")
    logger.addHandler(collect)
    logger.propagate = False
    # The report needs the INFO lines even if the application set a higher level elsewhere.
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        report = await _run(accounts, operations, random.Random(seed))
    finally:
        logger.removeHandler(collect)
        logger.propagate = True
        logger.setLevel(level)
    report.log = collect.lines
    return report


async def _run(accounts: int, operations: int, rng: random.Random) -> DemoReport:
    ids = [f"acc-{i + 1}" for i in range(accounts)]
    rows = {account_id: _Row(account_id) for account_id in ids}
    ledger: dict[str, int] = {}
    crashed = rng.choice(ids)
    plan = [(rng.choice(ids), rng.random() < 0.6, rng.randint(1, 100)) for _ in range(operations)]

    async with ActorSystem(name="bank-demo") as system:
        system.spawn(bank(ids, ledger), "bank")
        refs: dict[str, ActorRef[AccountMsg]] = {}
        while len(refs) < len(ids):  # children are spawned by the bank's setup
            await trio.lowlevel.checkpoint()
            for account_id in ids:
                ref = system.lookup(f"/bank/{account_id}")
                if ref is not None:
                    refs[account_id] = ref

        async def count_restarts(
            events: trio.MemoryReceiveChannel[ActorRestarted],
        ) -> None:
            async for event in events:
                rows[event.ref.path.rsplit("/", 1)[-1]].restarts += 1

        async def teller(share: list[tuple[str, bool, int]]) -> None:
            for account_id, is_deposit, amount in share:
                row = rows[account_id]
                ref = refs[account_id]
                if is_deposit:
                    await system.ask(ref, partial(Deposit, amount), timeout=5.0)
                    row.deposits += 1
                    row.expected += amount
                elif await system.ask(ref, partial(Withdraw, amount), timeout=5.0):
                    row.withdrawals += 1
                    row.expected -= amount
                else:
                    row.rejected += 1

        started = time.perf_counter()
        async with (
            system.event_stream.subscription(ActorRestarted) as events,
            trio.open_nursery() as nursery,
        ):
            nursery.start_soon(count_restarts, events)
            half = len(plan) // 2
            async with trio.open_nursery() as tellers:
                for i in range(_TELLERS):
                    tellers.start_soon(teller, plan[i:half:_TELLERS])
            refs[crashed].tell(Glitch())
            async with trio.open_nursery() as tellers:
                for i in range(_TELLERS):
                    tellers.start_soon(teller, plan[half + i :: _TELLERS])
            for account_id, ref in refs.items():
                rows[account_id].balance = await system.ask(ref, GetBalance, timeout=5.0)
            nursery.cancel_scope.cancel()
        elapsed = time.perf_counter() - started

    return DemoReport(list(rows.values()), len(plan), elapsed, crashed)
