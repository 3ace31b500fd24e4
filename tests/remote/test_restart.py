"""A peer that stops and starts again at the same address is a new incarnation: links reconnect
to it in both directions, and nothing of the old incarnation leaks into the new one."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import trio

from casty_trio import DeadLetter
from casty_trio.testing import SimNetwork, TestProbe
from tests._helpers import receive_matching
from tests.remote._messages import Note, Seq
from tests.remote._support import (
    assert_serving,
    logged,
    node_on,
    nodes,
    remote,
    wait_until,
)


async def test_reconnect_after_a_peer_restart(
    autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="casty_trio.remote")
    net = SimNetwork(seed=71, latency=0.002)
    async with nodes(net, "a") as (a,):
        sink_a = TestProbe(a, "sink")
        async with node_on(net.transport("b")) as b:
            b_node = b.self_node
            old_uid = b._remoting.uid
            sink_b = TestProbe(b, "sink")
            # Enough traffic both ways that frame numbers are well past 1 on both sides.
            for n in range(200):
                remote(a, "/sink", b).tell(Seq("a", n))
                remote(b, "/sink", a).tell(Seq("b", n))
            await sink_b.receive_messages(200)
            await sink_a.receive_messages(200)
            await assert_serving(a, b)
        async with node_on(net.transport(b_node.host, b_node.port)) as b2:
            assert b2.self_node == b_node and b2._remoting.uid != old_uid
            sink_b2 = TestProbe(b2, "sink")
            # The new incarnation talks first: a must not take its frames for old duplicates.
            remote(b2, "/sink", a).tell(Seq("b2", 0))
            await sink_a.expect_message(Seq("b2", 0))
            remote(a, "/sink", b2).tell(Seq("a", 1000))
            await sink_b2.expect_message(Seq("a", 1000))
            await assert_serving(a, b2)
            stats = a.link_statistics()[b_node]
            # (2 or 3: the first two tells may have crossed as simultaneous dials)
            assert stats.connected and stats.connections >= 2 and stats.duplicates == 0
            assert logged(caplog, str(b_node), "new incarnation", level=logging.INFO)


async def test_messages_while_the_peer_is_down_are_dead_letters_then_flow_again(
    autojump_clock: Any,
) -> None:
    net = SimNetwork(seed=72, latency=0.002)
    async with nodes(net, "a") as (a,):
        async with node_on(net.transport("b")) as b:
            b_node = b.self_node
            await assert_serving(a, b)
        # (A message told before a hears of the close would be written to a dead connection
        # and lost: no acknowledgements. Told after, it is a dead letter.)
        await wait_until(lambda: not a.link_statistics()[b_node].connected)
        ref = a.lookup("/sink", node=b_node)
        assert ref is not None
        async with a.event_stream.subscription(DeadLetter) as dead:
            ref.tell(Note("nobody home"))
            letter = await receive_matching(dead, lambda d: True, within=5)
            assert letter.message == Note("nobody home") and letter.intended_ref == ref
        async with node_on(net.transport(b_node.host, b_node.port)) as b2:
            sink = TestProbe(b2, "sink")
            await trio.sleep(10)  # past the reconnect backoff
            ref.tell(Note("welcome back"))
            await sink.expect_message(Note("welcome back"), within=5)


async def test_restarted_peer_that_dials_first_is_not_refused_as_a_duplicate(
    autojump_clock: Any,
) -> None:
    # b dies without a's noticing: its close takes 2 s to arrive (and its last frames are
    # lost). b restarts at once and dials a. a still holds the old connection, but a new
    # incarnation must win over it, whatever the address order says ("a" < "b").
    net = SimNetwork(seed=73, latency=0.002)
    async with nodes(net, "a") as (a,):
        sink_a = TestProbe(a, "sink")
        async with node_on(net.transport("b")) as b:
            b_node = b.self_node
            await assert_serving(a, b)
            net.set_latency(a.self_node, b_node, 2.0)
            net.set_loss(a.self_node, b_node, 1.0)
        net.set_latency(a.self_node, b_node, None)
        net.set_loss(a.self_node, b_node, None)
        start = trio.current_time()
        async with node_on(net.transport(b_node.host, b_node.port)) as b2:
            remote(b2, "/sink", a).tell(Note("from the new b"))
            await sink_a.expect_message(Note("from the new b"), within=5)
            assert trio.current_time() - start < 1.0  # not after the stale close
            await assert_serving(a, b2)
            await trio.sleep(3)  # the stale close arrives: the new link is untouched
            await assert_serving(a, b2)
            assert a.link_statistics()[b_node].connected


async def test_repeated_restarts(autojump_clock: Any) -> None:
    net = SimNetwork(seed=74, latency=0.001)
    async with nodes(net, "a") as (a,):
        sink_a = TestProbe(a, "sink")
        address = net.transport("b").address
        received = []
        for round_ in range(5):
            async with node_on(net.transport(address.host, address.port)) as b:
                remote(b, "/sink", a).tell(Note(f"round {round_}"))
                received.append(await sink_a.expect_message(within=5))
                await assert_serving(a, b)
            await wait_until(lambda: not a.link_statistics()[address].connected)
        received += sink_a.receive_all_nowait()
        assert received == [Note(f"round {i}") for i in range(5)]


async def test_killed_and_restarted_node_keeps_its_incarnation(autojump_clock: Any) -> None:
    # net.kill / net.restart break connections but the process (and its uid) lives on: the
    # reconnect is to the same incarnation, so nothing is reset or terminated.
    net = SimNetwork(seed=75, latency=0.001)
    async with nodes(net, "a", "b") as (a, b):
        sink = TestProbe(b, "sink")
        ref = remote(a, "/sink", b)
        ref.tell(Seq("a", 0))
        await sink.expect_message(Seq("a", 0))
        net.kill(b.self_node)
        await trio.sleep(1)
        net.restart(b.self_node)
        await trio.sleep(10)
        for n in range(1, 50):
            ref.tell(Seq("a", n))
        assert await sink.receive_messages(49, within=5) == [Seq("a", n) for n in range(1, 50)]
