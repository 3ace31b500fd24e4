"""Remote death watch: ``Terminated`` for a remote actor when it stops, when its node is killed
or its link is declared lost, and after its node restarts; none after ``unwatch``."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import trio

from casty_trio import ActorContext, ActorRef, Behavior, Behaviors, Terminated
from casty_trio.testing import SimNetwork, TestProbe
from tests.remote._messages import Note
from tests.remote._support import (
    assert_serving,
    logged,
    node_on,
    nodes,
    remote,
    wait_until,
)


def watcher(target: ActorRef[Any], report: ActorRef[Any]) -> Behavior[Any]:
    """Watches ``target`` from the start; "watch"/"unwatch" toggle it; reports Terminated."""

    async def setup(ctx: ActorContext[Any]) -> Behavior[Any]:
        ctx.watch(target)

        async def receive(ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
            if msg == "watch":
                ctx.watch(target)
            elif msg == "unwatch":
                ctx.unwatch(target)
            elif isinstance(msg, Terminated):
                report.tell(msg)
            return Behaviors.same()

        return Behaviors.receive(receive)

    return Behaviors.setup(setup)


def stoppable() -> Behavior[Any]:
    async def receive(ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
        return Behaviors.stopped() if msg == "stop" else Behaviors.same()

    return Behaviors.receive(receive)


async def _watch_established(watcher_node: Any, watched_node: Any) -> None:
    """Wait until the Watch reached the watched node (it registered the remote watcher)."""
    await wait_until(
        lambda: any(key[0] == watcher_node.self_node for key in watched_node._remoting._watched_by)
    )


async def test_terminated_when_the_remote_actor_stops(autojump_clock: Any) -> None:
    net = SimNetwork(seed=51, latency=0.003)
    async with nodes(net, "a", "b") as (a, b):
        target = b.spawn(stoppable(), "target")
        report = TestProbe(a, "report")
        ref = remote(a, "/target", b)
        a.spawn(watcher(ref, report.ref), "watcher")
        await _watch_established(a, b)
        target.tell("stop")
        msg = await report.expect_message(Terminated, within=5)
        assert msg.ref == ref
        await report.expect_no_message(within=2)
        assert not a._remoting._watching and not b._remoting._watched_by
        await assert_serving(a, b)


async def test_terminated_at_once_for_a_path_nobody_lives_at(autojump_clock: Any) -> None:
    net = SimNetwork(seed=52, latency=0.003)
    async with nodes(net, "a", "b") as (a, b):
        report = TestProbe(a, "report")
        start = trio.current_time()
        a.spawn(watcher(remote(a, "/ghost", b), report.ref), "watcher")
        msg = await report.expect_message(Terminated, within=5)
        assert msg.ref.path == "/ghost"
        assert trio.current_time() - start < 0.1  # one round trip, no timeout involved


async def test_several_watchers_and_unwatch(autojump_clock: Any) -> None:
    net = SimNetwork(seed=53, latency=0.002)
    async with nodes(net, "a", "b") as (a, b):
        target = b.spawn(stoppable(), "target")
        ref = remote(a, "/target", b)
        reports = [TestProbe(a, f"report{i}") for i in range(3)]
        watchers = [a.spawn(watcher(ref, r.ref), f"watcher{i}") for i, r in enumerate(reports)]
        await _watch_established(a, b)
        watchers[1].tell("unwatch")
        await trio.sleep(0.1)
        target.tell("stop")
        for i in (0, 2):
            assert (await reports[i].expect_message(Terminated, within=5)).ref == ref
        await reports[1].expect_no_message(within=2)


async def test_unwatch_means_no_terminated(autojump_clock: Any) -> None:
    net = SimNetwork(seed=54, latency=0.002)
    async with nodes(net, "a", "b") as (a, b):
        target = b.spawn(stoppable(), "target")
        report = TestProbe(a, "report")
        w = a.spawn(watcher(remote(a, "/target", b), report.ref), "watcher")
        await _watch_established(a, b)
        w.tell("unwatch")
        # The Unwatch reaches b: it forgets the remote watcher.
        await wait_until(lambda: not b._remoting._watched_by)
        assert not a._remoting._watching
        target.tell("stop")
        await report.expect_no_message(within=2)
        # Nor when the node dies later.
        net.kill(b.self_node)
        await report.expect_no_message(within=10)


async def test_unwatch_before_the_watch_arrives(autojump_clock: Any) -> None:
    net = SimNetwork(seed=55, latency=0.050)
    async with nodes(net, "a", "b") as (a, b):
        target = b.spawn(stoppable(), "target")
        report = TestProbe(a, "report")
        w = a.spawn(watcher(remote(a, "/target", b), report.ref), "watcher")
        await trio.sleep(0.001)
        w.tell("unwatch")  # the Watch is still on its way
        await trio.sleep(1)
        assert not b._remoting._watched_by
        target.tell("stop")
        await report.expect_no_message(within=2)


async def test_terminated_when_the_node_is_killed(autojump_clock: Any) -> None:
    net = SimNetwork(seed=56, latency=0.002)
    async with nodes(net, "a", "b") as (a, b):
        b.spawn(stoppable(), "target")
        report = TestProbe(a, "report")
        ref = remote(a, "/target", b)
        a.spawn(watcher(ref, report.ref), "watcher")
        await _watch_established(a, b)
        killed_at = trio.current_time()
        net.kill(b.self_node)
        msg = await report.expect_message(Terminated, within=5)
        assert msg.ref == ref
        assert trio.current_time() - killed_at < 0.5  # the broken link, not a timeout
        await report.expect_no_message(within=5)


async def test_terminated_when_the_link_is_declared_lost_after_a_clean_shutdown(
    autojump_clock: Any,
) -> None:
    # The watched node stops (its actors stop first, so a DeathNotice may still make it);
    # either way exactly one Terminated arrives.
    net = SimNetwork(seed=57, latency=0.002)
    async with nodes(net, "a") as (a,):
        async with nodes(net, "b") as (b,):
            b.spawn(stoppable(), "target")
            report = TestProbe(a, "report")
            ref = remote(a, "/target", b)
            a.spawn(watcher(ref, report.ref), "watcher")
            await _watch_established(a, b)
        msg = await report.expect_message(Terminated, within=5)
        assert msg.ref == ref
        await report.expect_no_message(within=5)


async def test_terminated_when_the_node_is_unreachable_from_the_start(
    autojump_clock: Any,
) -> None:
    net = SimNetwork(seed=58)
    async with nodes(net, "a") as (a,):
        report = TestProbe(a, "report")
        dead_node = net.transport("ghost").address
        ref = a.lookup("/target", node=dead_node)
        assert ref is not None
        a.spawn(watcher(ref, report.ref), "watcher")
        assert (await report.expect_message(Terminated, within=5)).ref == ref


async def test_watch_survives_a_broken_connection_to_the_same_incarnation(
    autojump_clock: Any,
) -> None:
    net = SimNetwork(seed=59, latency=0.002)
    async with nodes(net, "a", "b") as (a, b):
        target = b.spawn(stoppable(), "target")
        report = TestProbe(a, "report")
        ref = remote(a, "/target", b)
        a.spawn(watcher(ref, report.ref), "watcher")
        await _watch_established(a, b)
        # The connection breaks but the node comes straight back: a redials the same
        # incarnation, so nothing is terminated...
        net.kill(b.self_node)
        net.restart(b.self_node)
        await wait_until(lambda: a.link_statistics()[b.self_node].connections == 2)
        await report.expect_no_message(within=1)
        # ...and the watch still holds.
        target.tell("stop")
        assert (await report.expect_message(Terminated, within=5)).ref == ref


async def test_terminated_after_the_peer_restarts_unnoticed(
    autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # b stops while its frames to a are lost (so neither its DeathNotice nor anything else
    # arrives) and its close takes a while; a new b starts at the same address meanwhile. When a
    # reconnects it meets a new incarnation: every actor it watched there is terminated.
    caplog.set_level(logging.INFO, logger="casty_trio.remote")
    net = SimNetwork(seed=60, latency=0.002)
    async with nodes(net, "a") as (a,):
        b_transport = net.transport("b")
        report = TestProbe(a, "report")
        async with node_on(b_transport) as b:
            b.spawn(stoppable(), "target")
            ref = remote(a, "/target", b)
            a.spawn(watcher(ref, report.ref), "watcher")
            await _watch_established(a, b)
            b_node = b.self_node
            net.set_loss(a.self_node, b_node, 1.0)
            net.set_latency(a.self_node, b_node, 0.5)
        async with node_on(net.transport(b_node.host, b_node.port)) as b2:
            b2.spawn(stoppable(), "target")  # same path, new incarnation
            net.set_loss(a.self_node, b_node, None)
            net.set_latency(a.self_node, b_node, None)
            assert report.messages_received == 0
            msg = await report.expect_message(Terminated, within=5)
            assert msg.ref == ref
            assert logged(caplog, str(b_node), "new incarnation", level=logging.INFO)
            await assert_serving(a, b2)
            await report.expect_no_message(within=2)


async def test_watched_actor_messages_still_flow_until_it_stops(autojump_clock: Any) -> None:
    net = SimNetwork(seed=61, latency=0.002)
    async with nodes(net, "a", "b") as (a, b):
        sink = TestProbe(b, "sink")
        report = TestProbe(a, "report")
        ref = remote(a, "/sink", b)
        a.spawn(watcher(ref, report.ref), "watcher")
        ref.tell(Note("hi"))
        await sink.expect_message(Note("hi"))
        b.stop(sink.ref)
        assert (await report.expect_message(Terminated, within=5)).ref == ref
