"""The bank account from the specification: state in closures, tell and ask.

Run it: ``python examples/bank_account.py``
"""

from __future__ import annotations

import attrs
import trio

from casty_trio import ActorContext, ActorRef, ActorSystem, Behavior, Behaviors


@attrs.frozen
class Deposit:
    amount: int


@attrs.frozen
class GetBalance:
    reply_to: ActorRef[int]


AccountMsg = Deposit | GetBalance


def account(balance: int = 0) -> Behavior[AccountMsg]:
    async def receive(ctx: ActorContext[AccountMsg], msg: AccountMsg) -> Behavior[AccountMsg]:
        match msg:
            case Deposit(amount):
                return account(balance + amount)  # the next message sees the new balance
            case GetBalance(reply_to):
                reply_to.tell(balance)
                return Behaviors.same()

    return Behaviors.receive(receive)


async def main() -> int:
    async with ActorSystem(name="bank") as system:
        ref = system.spawn(account(), "acc-1")
        ref.tell(Deposit(10))
        ref.tell(Deposit(32))
        balance = await system.ask(ref, lambda r: GetBalance(r), timeout=1.0)
        print(f"balance of {ref.path}: {balance}")
        return balance


if __name__ == "__main__":
    trio.run(main)
