"""An actor that stashes requests until its (slow) connection is up, with a heartbeat timer.

Run it: ``python examples/timers_and_stash.py``
"""

from __future__ import annotations

import attrs
import trio

from casty_trio import (
    ActorContext,
    ActorRef,
    ActorSystem,
    Behavior,
    Behaviors,
    StashBuffer,
    TimerScheduler,
)


@attrs.frozen
class Query:
    text: str
    reply_to: ActorRef[str]


@attrs.frozen
class Connected:
    session: str


@attrs.frozen
class Heartbeat:
    pass


Msg = Query | Connected | Heartbeat


async def connect() -> str:
    await trio.sleep(0.5)  # pretend to talk to a database
    return "session-1"


def client(beats: list[float]) -> Behavior[Msg]:
    def with_stash(ctx: ActorContext[Msg], stash: StashBuffer[Msg]) -> Behavior[Msg]:
        def with_timers(ctx: ActorContext[Msg], timers: TimerScheduler[Msg]) -> Behavior[Msg]:
            ctx.pipe_to_self(connect, Connected)

            async def connecting(ctx: ActorContext[Msg], msg: Msg) -> Behavior[Msg]:
                match msg:
                    case Connected(session):
                        timers.start_periodic("heartbeat", Heartbeat(), 1.0)
                        return stash.unstash_all(online(session))
                    case _:
                        stash.stash(msg)  # not ready yet: keep it for later
                        return Behaviors.same()

            def online(session: str) -> Behavior[Msg]:
                async def receive(ctx: ActorContext[Msg], msg: Msg) -> Behavior[Msg]:
                    match msg:
                        case Query(text, reply_to):
                            reply_to.tell(f"{session} answered {text!r}")
                        case Heartbeat():
                            beats.append(trio.current_time())
                    return Behaviors.same()

                return Behaviors.receive(receive)

            return Behaviors.receive(connecting)

        return Behaviors.with_timers(with_timers)

    return Behaviors.with_stash(100, with_stash)


async def main() -> list[str]:
    beats: list[float] = []
    async with ActorSystem(name="client") as system:
        ref = system.spawn(client(beats), "db")
        # Asked before the connection is up: the queries wait in the stash, in order.
        with trio.move_on_after(5):
            answers = [
                await system.ask(ref, lambda r, q=q: Query(q, r), timeout=2.0)
                for q in ("first", "second")
            ]
        await trio.sleep(3.2)
    for answer in answers:
        print(answer)
    print(f"{len(beats)} heartbeats")
    return answers


if __name__ == "__main__":
    trio.run(main)
