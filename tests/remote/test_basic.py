"""Two RemoteActorSystems on the simulated network: tell, ask, refs inside messages, order."""

from __future__ import annotations

from typing import Any

import trio
import trio.testing

from casty_trio import ActorContext, Behavior, Behaviors
from casty_trio.remote import RemoteActorSystem
from casty_trio.testing import SimNetwork
from tests.remote._messages import Note, Ping, Pong
from tests.remote._support import nodes


def ponger() -> Behavior[Ping]:
    async def receive(ctx: ActorContext[Ping], msg: Ping) -> Behavior[Ping]:
        msg.reply_to.tell(Pong(msg.n, ctx.self))
        return Behaviors.same()

    return Behaviors.receive(receive)


def collector(seen: list[Any]) -> Behavior[Any]:
    async def receive(ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
        seen.append(msg)
        return Behaviors.same()

    return Behaviors.receive(receive)


async def test_tell_and_ask_across_nodes(autojump_clock: Any) -> None:
    net = SimNetwork(seed=1, latency=0.001)
    async with (
        RemoteActorSystem("app", transport=net.transport("a")) as a,
        RemoteActorSystem("app", transport=net.transport("b")) as b,
    ):
        b.spawn(ponger(), "ponger")
        seen: list[Any] = []
        b.spawn(collector(seen), "sink")
        remote_sink = a.lookup("/sink", node=b.self_node)
        assert remote_sink is not None
        remote_sink.tell(Note("hello"))
        remote_ponger = a.lookup("/ponger", node=b.self_node)
        assert remote_ponger is not None
        pong = await a.ask(remote_ponger, lambda r: Ping(7, r), timeout=5.0)
        assert pong.n == 7
        assert pong.sender == remote_ponger  # a ref inside a reply arrives as a working ref
        assert seen == [Note("hello")]
        stats = a.link_statistics()[b.self_node]
        assert stats.connected and stats.messages_out >= 2


async def test_fifo_order_and_batching(autojump_clock: Any) -> None:
    net = SimNetwork(seed=2, latency=0.002)
    async with (
        RemoteActorSystem("app", transport=net.transport("a")) as a,
        RemoteActorSystem("app", transport=net.transport("b")) as b,
    ):
        seen: list[Any] = []
        b.spawn(collector(seen), "sink")
        sink = a.lookup("/sink", node=b.self_node)
        assert sink is not None
        for i in range(5000):
            sink.tell(i)
        with trio.fail_after(30):
            while len(seen) < 5000:
                await trio.sleep(0.01)
        assert seen == list(range(5000))
        stats = a.link_statistics()[b.self_node]
        assert stats.messages_out == 5000
        assert stats.frames_out < 100  # many messages per frame under load


async def test_a_remote_ref_decoded_again_is_the_same_working_ref(autojump_clock: Any) -> None:
    """A ref that comes in many messages (a reply_to) is built once per node, and still
    reaches its actor; an ask's temporary reply ref is not kept."""
    async with nodes(SimNetwork(seed=3, latency=0.001), "a", "b") as (a, b):
        seen: list[Any] = []
        a.spawn(collector(seen), "replies")
        refs: list[Any] = []
        b.spawn(collector(refs), "keeper")
        keeper = a.lookup("/keeper", node=b.self_node)
        replies = a.lookup("/replies", node=a.self_node)
        assert keeper is not None and replies is not None
        for n in range(3):
            keeper.tell(Ping(n, replies))
        await trio.sleep(0.1)
        assert [msg.n for msg in refs] == [0, 1, 2]
        # one run of three envelopes in one frame item: still three messages read
        stats = b.link_statistics()[a.self_node]
        assert stats.frames_in == 1 and stats.messages_in == 3
        first, *others = (msg.reply_to for msg in refs)
        assert all(ref is first for ref in others)
        first.tell(Note("back"))
        await trio.sleep(0.1)
        assert seen == [Note("back")]
        remoting = b._remoting
        wire = ("app", "/$ask/7", a.self_node.host, a.self_node.port)
        assert remoting.ref_from_wire(*wire) is not remoting.ref_from_wire(*wire)
