"""Stopping or restarting an actor whose children have not got a task yet.

Children run in their parent's nursery, which is opened lazily, and a child spawned from a
handler starts once the handler returned. A parent that stops or restarts in that same handler
must still stop such children and carry on, without waiting for a task that never comes.
"""

from __future__ import annotations

from typing import Any

import attrs
import pytest
import trio

from casty_trio import (
    ActorContext,
    ActorRef,
    ActorStopped,
    ActorSystem,
    Behavior,
    Behaviors,
    Directive,
    OneForOneStrategy,
)
from tests._helpers import receive_matching

GRACE = 10.0  # the default shutdown grace: a hang would last this long


@attrs.frozen
class SpawnThen:
    """Spawn ``child`` as ``name``, then stop (``then="stop"``), raise (``"raise"``) or go on."""

    child: Behavior[Any]
    name: str
    then: str


@attrs.frozen
class Ping:
    reply_to: ActorRef[str]


def parent(starts: list[int]) -> Behavior[Any]:
    async def factory(ctx: ActorContext[Any]) -> Behavior[Any]:
        starts.append(len(starts) + 1)
        return Behaviors.receive(receive)

    async def receive(ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
        match msg:
            case SpawnThen(child, name, then):
                ctx.spawn(child, name)
                if then == "raise":
                    raise ValueError("fails right after spawning")
                return Behaviors.stopped()
            case Ping(reply_to):
                reply_to.tell("pong")
        return Behaviors.same()

    return Behaviors.setup(factory)


def plain_parent() -> Behavior[Any]:
    """A plain receive actor: it has no nursery until it needs one."""

    async def receive(ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
        match msg:
            case SpawnThen(child, name, then):
                ctx.spawn(child, name)
                if then == "raise":
                    raise ValueError("fails right after spawning")
                if then == "stop":
                    return Behaviors.stopped()
            case Ping(reply_to):
                reply_to.tell("pong")
        return Behaviors.same()

    return Behaviors.receive(receive)


def setup_child(post_stops: list[str]) -> Behavior[Any]:
    async def factory(ctx: ActorContext[Any]) -> Behavior[Any]:
        return Behaviors.ignore()

    async def bye(ctx: ActorContext[Any]) -> None:
        post_stops.append(ctx.self.path)

    return Behaviors.with_lifecycle(Behaviors.setup(factory), post_stop=bye)


CHILDREN = {
    "ignore": lambda post_stops: Behaviors.ignore(),
    "setup": setup_child,
}


@pytest.mark.parametrize("child_kind", sorted(CHILDREN))
async def test_a_plain_actor_stopping_right_after_spawning_stops_promptly(
    system: ActorSystem, autojump_clock: Any, child_kind: str
) -> None:
    post_stops: list[str] = []
    async with system.event_stream.subscription(ActorStopped) as stopped:
        ref = system.spawn(plain_parent(), "p")
        ref.tell(SpawnThen(CHILDREN[child_kind](post_stops), "c", "stop"))
        with trio.fail_after(1.0):  # well under the shutdown grace
            await receive_matching(stopped, lambda e: e.ref == ref, within=GRACE)
    assert system.lookup("/p/c") is None
    if child_kind == "setup":
        assert post_stops == ["/p/c"]


@pytest.mark.parametrize("child_kind", sorted(CHILDREN))
@pytest.mark.parametrize("make_parent", [plain_parent, lambda: parent([])], ids=["plain", "setup"])
async def test_a_restart_right_after_spawning_stops_the_child_and_serves_again(
    system: ActorSystem, autojump_clock: Any, child_kind: str, make_parent: Any
) -> None:
    post_stops: list[str] = []
    ref = system.spawn(
        Behaviors.supervise(make_parent(), OneForOneStrategy(decider=lambda e: Directive.restart)),
        "p",
    )
    ref.tell(SpawnThen(CHILDREN[child_kind](post_stops), "c", "raise"))
    assert await system.ask(ref, lambda r: Ping(r), timeout=1.0) == "pong"
    assert system.lookup("/p/c") is None
    if child_kind == "setup":
        assert post_stops == ["/p/c"]
    # The restarted parent can spawn a child of the same name again.
    ref.tell(SpawnThen(Behaviors.ignore(), "c", "stop"))
    async with system.event_stream.subscription(ActorStopped) as stopped:
        await receive_matching(stopped, lambda e: e.ref == ref, within=1.0)


@pytest.mark.parametrize("child_kind", sorted(CHILDREN))
async def test_leaving_the_block_with_a_child_never_messaged_is_prompt(
    autojump_clock: Any, child_kind: str
) -> None:
    post_stops: list[str] = []
    start = trio.current_time()
    async with ActorSystem(name="quick") as system:
        ref = system.spawn(plain_parent(), "p")
        ref.tell(SpawnThen(CHILDREN[child_kind](post_stops), "c", "stay"))
        assert await system.ask(ref, lambda r: Ping(r), timeout=1.0) == "pong"
    assert trio.current_time() - start < 1.0
    if child_kind == "setup":
        assert post_stops == ["/p/c"]
