"""An event-sourced bank account whose history survives a restart, in a SQLite file.

The account's state (its balance) is never stored directly: each command that changes it records
an event, and the balance is rebuilt from the events (and snapshots) when the actor starts. The
example runs the account in one actor system, shuts everything down, then starts a new system on
the same database file: the balance is still there.

Run it with ``python examples/event_sourced_account.py``; it prints the balance after each run.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

import attrs
import trio

from casty_trio import (
    ActorContext,
    ActorRef,
    ActorSystem,
    Behavior,
    Behaviors,
    EventJournal,
    SnapshotEvery,
    SqliteJournal,
)


# Commands: what the account is asked to do.
@attrs.frozen
class Deposit:
    amount: int
    reply_to: ActorRef[int]


@attrs.frozen
class Withdraw:
    amount: int
    reply_to: ActorRef[int | str]


@attrs.frozen
class GetBalance:
    reply_to: ActorRef[int]


# Events: what happened. These are what the journal stores.
@attrs.frozen
class Deposited:
    amount: int


@attrs.frozen
class Withdrawn:
    amount: int


def apply(balance: int, event: Any) -> int:
    """``on_event``: pure, used both while running and during recovery."""
    match event:
        case Deposited(amount):
            return balance + amount
        case Withdrawn(amount):
            return balance - amount
    return balance


async def handle(ctx: ActorContext[Any], balance: int, command: Any) -> Behavior[Any]:
    """``on_command``: decide, given the current balance, which events a command causes."""
    match command:
        case Deposit(amount, reply_to):
            return Behaviors.persisted(
                [Deposited(amount)], reply=lambda: reply_to.tell(balance + amount)
            )
        case Withdraw(amount, reply_to) if amount > balance:
            reply_to.tell("insufficient funds")  # nothing to record
        case Withdraw(amount, reply_to):
            return Behaviors.persisted(
                [Withdrawn(amount)], reply=lambda: reply_to.tell(balance - amount)
            )
        case GetBalance(reply_to):
            reply_to.tell(balance)
    return Behaviors.same()


def account(account_id: str, journal: EventJournal) -> Behavior[Any]:
    return Behaviors.event_sourced(
        entity_id=account_id,
        journal=journal,
        initial_state=0,
        on_event=apply,
        on_command=handle,
        snapshot_policy=SnapshotEvery(100),
    )


async def run_once(path: str, deposit: int) -> int:
    async with SqliteJournal(path) as journal, ActorSystem(name="bank") as system:
        ref = system.spawn(account("acc-1", journal), "acc-1")
        await system.ask(ref, lambda r: Deposit(deposit, r), timeout=5.0)
        await system.ask(ref, lambda r: Withdraw(5, r), timeout=5.0)
        balance: int = await system.ask(ref, lambda r: GetBalance(r), timeout=5.0)
        print(f"balance of acc-1: {balance}")
        return balance


async def main() -> list[int]:
    """Two runs on the same file; returns the balance seen by each."""
    with tempfile.TemporaryDirectory() as scratch:
        path = os.path.join(scratch, "bank.db")
        return [await run_once(path, 50), await run_once(path, 20)]


if __name__ == "__main__":
    print(trio.run(main))
