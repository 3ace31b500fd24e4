"""Asks across nodes: refs nested in messages (tuples, dicts, plain containers) arrive as working
refs; replies after the ask's timeout are dead letters on the asking node."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from casty_trio import (
    ActorContext,
    AskTimeoutError,
    Behavior,
    Behaviors,
    DeadLetter,
)
from casty_trio.testing import SimNetwork, TestProbe
from tests._helpers import receive_matching
from tests.remote._messages import Gather, Gathered, Ping, Pong, SlowPing
from tests.remote._support import assert_serving, nodes, ping, remote


async def test_refs_nested_in_tuples_and_dicts_both_ways(autojump_clock: Any) -> None:
    net = SimNetwork(seed=81, latency=0.002)
    async with nodes(net, "a", "b") as (a, b):
        p1, p2, p3 = (TestProbe(a, f"p{i}") for i in range(3))
        ponger_b = remote(a, "/ponger", b)
        reply: Gathered = await a.ask(
            ponger_b,
            lambda r: Gather(5, (p1.ref, p2.ref), {"abc": p3.ref}, r),
            timeout=5,
        )
        # Refs of a's actors travelled to b inside a tuple and a dict and were answered.
        first = await p1.expect_message(Pong)
        assert first.n == 5
        assert (await p2.expect_message(Pong)).n == 5
        assert (await p3.expect_message(Pong)).n == 3
        assert first.sender == ponger_b
        # Refs of b's actors came back nested, and work from a.
        assert reply.refs[0] == ponger_b and reply.table["me"] == ponger_b
        helper = reply.refs[1]
        assert helper.address.node == b.self_node and helper.path == "/ponger/helper"
        assert reply.table["h"] == helper
        for ref in (*reply.refs, *reply.table.values()):
            pong: Pong = await a.ask(ref, lambda r: Ping(9, r), timeout=5)
            assert pong.n == 9 and pong.sender == ref


async def test_refs_in_plain_containers(autojump_clock: Any) -> None:
    net = SimNetwork(seed=82, latency=0.002)

    def forwarder() -> Behavior[Any]:
        # Receives a plain tuple (reply_to, {"to": [ref]}) and replies through the nested ref.
        async def receive(ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
            reply_to, table = msg
            for ref in table["to"]:
                ref.tell(("via", ctx.self))
            reply_to.tell(["done", ctx.self])
            return Behaviors.same()

        return Behaviors.receive(receive)

    async with nodes(net, "a", "b") as (a, b):
        b.spawn(forwarder(), "fwd")
        probe = TestProbe(a, "p")
        fwd = remote(a, "/fwd", b)
        answer = await a.ask(fwd, lambda r: (r, {"to": [probe.ref]}), timeout=5)
        assert answer == ["done", fwd]
        await probe.expect_message(("via", fwd))


async def test_many_concurrent_asks_in_both_directions(autojump_clock: Any) -> None:
    net = SimNetwork(seed=83, latency=0.003)
    async with nodes(net, "a", "b", "c") as (a, b, c):
        results: list[tuple[str, int]] = []

        async def asker(src: Any, dst: Any, n: int) -> None:
            pong = await ping(src, dst, n)
            results.append((src.name + str(src.self_node), pong.n))

        async with trio.open_nursery() as nursery:
            for n in range(100):
                for src, dst in ((a, b), (b, a), (a, c), (c, b)):
                    nursery.start_soon(asker, src, dst, n)
        assert len(results) == 400


async def test_reply_after_the_timeout_is_a_dead_letter_on_the_asker(autojump_clock: Any) -> None:
    net = SimNetwork(seed=84, latency=0.002)
    async with nodes(net, "a", "b") as (a, b):
        ponger_b = remote(a, "/ponger", b)
        async with a.event_stream.subscription(DeadLetter) as dead:
            reply_refs: list[Any] = []

            def slow(r: Any) -> SlowPing:
                reply_refs.append(r)
                return SlowPing(3, 2.0, r)

            with pytest.raises(AskTimeoutError):
                await a.ask(ponger_b, slow, timeout=1.0)
            letter = await receive_matching(dead, lambda d: True, within=5)
            assert letter.message == Pong(3, ponger_b)
            assert letter.intended_ref == reply_refs[0]
            assert letter.intended_ref.path.startswith("/$ask/")
        # The late reply did not disturb the link, nor later asks.
        assert a.link_statistics()[b.self_node].decode_errors == 0
        await assert_serving(a, b)


async def test_ask_to_a_stopped_remote_actor_times_out_and_b_dead_letters(
    autojump_clock: Any,
) -> None:
    net = SimNetwork(seed=85, latency=0.002)
    async with nodes(net, "a", "b") as (a, b), b.event_stream.subscription(DeadLetter) as dead:
        with pytest.raises(AskTimeoutError):
            await a.ask(remote(a, "/gone", b), lambda r: Ping(1, r), timeout=1.0)
        letter = await receive_matching(dead, lambda d: True, within=1)
        assert isinstance(letter.message, Ping)
        assert letter.intended_ref.path == "/gone"
        # The reply ref inside the dead letter still points at a's (expired) ask.
        assert letter.message.reply_to.address.node == a.self_node


async def test_ask_to_an_unreachable_node_times_out_and_dead_letters(autojump_clock: Any) -> None:
    net = SimNetwork(seed=86)
    async with nodes(net, "a") as (a,):
        nowhere = net.transport("nowhere").address
        ref = a.lookup("/ponger", node=nowhere)
        assert ref is not None
        async with a.event_stream.subscription(DeadLetter) as dead:
            with pytest.raises(AskTimeoutError):
                await a.ask(ref, lambda r: Ping(1, r), timeout=1.0)
            letter = await receive_matching(dead, lambda d: True, within=1)
            assert isinstance(letter.message, Ping) and letter.intended_ref == ref
