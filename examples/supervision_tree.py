"""A supervisor with workers: restart on bugs, resume on bad input, watch for deaths.

Run it: ``python examples/supervision_tree.py``
"""

from __future__ import annotations

import logging

import attrs
import trio
import trio.lowlevel

from casty_trio import (
    ActorContext,
    ActorRef,
    ActorSystem,
    Behavior,
    Behaviors,
    Directive,
    OneForOneStrategy,
    Terminated,
)


@attrs.frozen
class Job:
    payload: str
    reply_to: ActorRef[str]


@attrs.frozen
class Retire:
    """Tell a worker to finish."""


def decide(exc: Exception) -> Directive:
    # Bad input is the caller's problem: keep the worker's state. Anything else is a bug:
    # start the worker afresh.
    return Directive.resume if isinstance(exc, ValueError) else Directive.restart


def worker(name: str) -> Behavior[Job | Retire]:
    async def setup(ctx: ActorContext[Job | Retire]) -> Behavior[Job | Retire]:
        done = 0

        async def receive(
            ctx: ActorContext[Job | Retire], msg: Job | Retire
        ) -> Behavior[Job | Retire]:
            nonlocal done
            match msg:
                case Job(payload, reply_to):
                    if not payload:
                        raise ValueError("empty payload")
                    if payload == "crash":
                        raise RuntimeError("worker bug")
                    done += 1
                    reply_to.tell(f"{name} did {payload!r} (job #{done} since start)")
                case Retire():
                    return Behaviors.stopped()
            return Behaviors.same()

        return Behaviors.receive(receive)

    return Behaviors.supervise(Behaviors.setup(setup), OneForOneStrategy(decider=decide))


def supervisor(report: list[str]) -> Behavior[Terminated]:
    async def setup(ctx: ActorContext[Terminated]) -> Behavior[Terminated]:
        running = set()
        for name in ("w1", "w2"):
            ref = ctx.spawn(worker(name), name)
            ctx.watch(ref)
            running.add(ref)

        async def receive(ctx: ActorContext[Terminated], msg: Terminated) -> Behavior[Terminated]:
            report.append(f"supervisor saw {msg.ref.path} stop")
            running.discard(msg.ref)
            return Behaviors.same() if running else Behaviors.stopped()

        return Behaviors.receive(receive)

    return Behaviors.setup(setup)


def printer(report: list[str]) -> Behavior[str]:
    async def receive(ctx: ActorContext[str], line: str) -> Behavior[str]:
        report.append(line)
        return Behaviors.same()

    return Behaviors.receive(receive)


async def main() -> list[str]:
    report: list[str] = []
    async with ActorSystem(name="workers") as system:
        out = system.spawn(printer(report), "printer")
        sup = system.spawn(supervisor(report), "supervisor")
        while (w1 := system.lookup("/supervisor/w1")) is None:
            await trio.lowlevel.checkpoint()  # the supervisor's setup spawns the workers
        for payload in ("a", "", "b", "crash", "c"):  # "" is resumed, "crash" restarts w1
            w1.tell(Job(payload, out))
        report.append(await system.ask(w1, lambda r: Job("d", r), timeout=1.0))
        for name in ("w1", "w2"):
            worker_ref = system.lookup(f"/supervisor/{name}")
            if worker_ref is not None:
                worker_ref.tell(Retire())
        while system.lookup(sup.path) is not None:
            await trio.lowlevel.checkpoint()  # the supervisor stops once both workers are gone
    for line in report:
        print(line)
    return report


if __name__ == "__main__":
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")
    trio.run(main)
