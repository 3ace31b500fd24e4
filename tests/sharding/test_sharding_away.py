"""The ref's remote fast path (``RegionRouting.away``): tells for entities whose shard lives on
another node go straight to that node's link, and never to a home the region no longer
believes in."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import trio

from casty_trio import Behaviors, DeadLetter, ShardEnvelope, entity_shard
from casty_trio.sharding._routing import RegionRouting
from casty_trio.sharding._wire import deliveries_path
from casty_trio.testing import open_test_cluster

from ._sharding_support import Append, GetLog, Log, appender

SHARDS = 20
IDS = [f"e{k}" for k in range(200)]


def _routing(node: Any, name: str) -> RegionRouting:
    routing = node._regions.get(name)._target
    assert isinstance(routing, RegionRouting)
    return routing


def _count_deliveries(node: Any, name: str) -> list[int]:
    """A list whose length grows by one per delivery ``node``'s region gets from a peer."""
    got: list[int] = []
    path = deliveries_path("/" + name)
    receiver = node._remoting._bulk[path]

    def counting(peer: Any, manifest: str, run: Any, count: int) -> int:
        got.extend(range(count))
        return int(receiver(peer, manifest, run, count))

    node._remoting.set_bulk_receiver(path, counting)
    return got


async def _log(node: Any, ref: Any, eid: str) -> list[tuple[str, int]]:
    log: Log = await node.ask(ref, lambda r: ShardEnvelope(eid, GetLog(r)), timeout=10)
    return log.entries


async def _warm_up(ref: Any) -> None:
    """Two rounds: the first learns the shard homes through the region, the second takes
    (and so caches) the fast path."""
    for seq in range(2):
        for eid in IDS:
            ref.tell(ShardEnvelope(eid, Append("before", seq)))
        await trio.sleep(1)


async def _router_and_host(cluster: Any) -> tuple[Any, Any, dict[str, list[tuple[str, int]]]]:
    """Node 1 hosts every shard of ``logs`` (role ``host``), node 0 only routes to it, warmed
    up (:func:`_warm_up`): returns node 0, its ref of ``logs`` and the entities' logs."""
    deliveries: dict[str, list[tuple[str, int]]] = {}
    spec = Behaviors.sharded(appender(deliveries), num_shards=SHARDS, role="host")
    cluster.node(1).spawn(spec, "logs")
    router = cluster.node(0)
    ref = router.spawn(spec, "logs")
    await _warm_up(ref)
    return router, ref, deliveries


async def test_tells_follow_a_shard_to_its_new_home(autojump_clock: Any) -> None:
    # Node 0 only routes; node 1 hosts everything until node 2 (also a host) joins and the
    # rebalance moves shards to it.
    async with open_test_cluster(3, roles={1: ["host"], 2: ["host"]}) as cluster:
        await cluster.stop(2)
        deliveries: dict[str, list[tuple[str, int]]] = {}
        spec = Behaviors.sharded(appender(deliveries), num_shards=SHARDS, role="host")
        cluster.node(1).spawn(spec, "logs")
        router = cluster.node(0)
        ref = router.spawn(spec, "logs")
        await _warm_up(ref)
        assert set(_routing(router, "logs").away) == set(IDS)  # every id takes the fast path

        await cluster.restart(2)
        await cluster.wait_for_up(3)
        cluster.node(2).spawn(spec, "logs")
        await trio.sleep(10)
        moved = cluster.node(2).region_statistics("logs").shards
        assert moved and len(cluster.node(1).region_statistics("logs").shards) == SHARDS - len(
            moved
        )

        at_old, at_new = (
            _count_deliveries(cluster.node(1), "logs"),
            _count_deliveries(cluster.node(2), "logs"),
        )
        movers = [eid for eid in IDS if entity_shard(eid, SHARDS) in moved]
        for eid in movers:
            ref.tell(ShardEnvelope(eid, Append("after", 1)))
        await trio.sleep(1)
        # Straight to the new home, none by way of the old one.
        assert not at_old and len(at_new) == len(movers)
        for eid in movers:
            entries = await _log(router, ref, eid)
            assert entries[-1] == ("after", 1) and entries.count(("after", 1)) == 1, entries


async def test_tells_after_a_home_left_reach_the_shard_elsewhere(autojump_clock: Any) -> None:
    async with open_test_cluster(3, roles={1: ["host"], 2: ["host"]}) as cluster:
        deliveries: dict[str, list[tuple[str, int]]] = {}
        spec = Behaviors.sharded(appender(deliveries), num_shards=SHARDS, role="host")
        cluster.node(1).spawn(spec, "logs")
        cluster.node(2).spawn(spec, "logs")
        router = cluster.node(0)
        ref = router.spawn(spec, "logs")
        await _warm_up(ref)
        on_2 = cluster.node(2).region_statistics("logs").shards
        assert on_2 and len(_routing(router, "logs").away) == len(IDS)

        await cluster.stop(2)  # a graceful leave: its shards are handed off to node 1
        await trio.sleep(10)
        assert len(cluster.node(1).region_statistics("logs").shards) == SHARDS
        for eid in IDS:
            ref.tell(ShardEnvelope(eid, Append("after", 1)))
        await trio.sleep(1)
        for eid in IDS:
            entries = await _log(router, ref, eid)
            assert entries[-1] == ("after", 1), (eid, entries)


async def test_a_fast_tell_refused_by_a_full_outbox_is_a_dead_letter(autojump_clock: Any) -> None:
    async with open_test_cluster(2, roles={1: ["host"]}) as cluster:
        router, ref, deliveries = await _router_and_host(cluster)
        eid = IDS[0]
        assert eid in _routing(router, "logs").away
        router._remoting.link(cluster.address(1)).capacity = 3
        async with router.event_stream.subscription(DeadLetter) as dead_letters:
            # One synchronous burst: the link's writer cannot run, its outbox takes three.
            for seq in range(10):
                ref.tell(ShardEnvelope(eid, Append("burst", seq)))
            with trio.fail_after(5):
                refused = [await dead_letters.receive() for _ in range(7)]
        assert [letter.message for letter in refused] == [
            ShardEnvelope(eid, Append("burst", seq)) for seq in range(3, 10)
        ]
        await trio.sleep(1)
        assert [seq for sender, seq in deliveries[eid] if sender == "burst"] == [0, 1, 2]


async def test_a_fast_tell_that_cannot_be_encoded_is_logged_and_dead_lettered(
    autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    async with open_test_cluster(2, roles={1: ["host"]}) as cluster:
        # the last message type sent is Append: the fast path's own
        router, ref, deliveries = await _router_and_host(cluster)
        eid = IDS[0]
        too_big = Append("huge", 2**70)  # msgpack has no integer that large
        with caplog.at_level(logging.ERROR, logger="casty_trio.sharding"):
            async with router.event_stream.subscription(DeadLetter) as dead_letters:
                ref.tell(ShardEnvelope(eid, too_big))
                ref.tell(ShardEnvelope(eid, Append("after", 0)))
                with trio.fail_after(5):
                    letter = await dead_letters.receive()
        assert letter.message == ShardEnvelope(eid, too_big)
        assert f"message for entity {eid!r} cannot be sent" in caplog.text
        await trio.sleep(1)
        assert deliveries[eid][-1] == ("after", 0)  # the next one took the fast path again


async def test_the_region_opens_the_fast_path_for_the_ids_it_forwards(autojump_clock: Any) -> None:
    async with open_test_cluster(2, roles={1: ["host"]}) as cluster:
        router, ref, deliveries = await _router_and_host(cluster)
        routing = _routing(router, "logs")
        routing.away.clear()
        for eid in IDS:  # by way of the region, which knows every home
            routing.region.tell(ShardEnvelope(eid, Append("region", 2)))
        await trio.sleep(1)
        assert set(routing.away) == set(IDS)
        for eid in IDS:
            ref.tell(ShardEnvelope(eid, Append("fast", 3)))
        assert not routing.pending  # none took the region's way
        await trio.sleep(1)
        for eid in IDS:
            assert deliveries[eid][-2:] == [("region", 2), ("fast", 3)], eid


async def test_a_fast_tell_too_big_for_a_frame_is_logged_and_dead_lettered(
    autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    async with open_test_cluster(2, roles={1: ["host"]}) as cluster:
        router, ref, deliveries = await _router_and_host(cluster)
        eid = IDS[0]
        assert eid in _routing(router, "logs").away
        link = router._remoting.link(cluster.address(1))
        room = link.envelope_room
        link.envelope_room = 300  # frames this small: a long sender name does not fit
        link._sized = b""
        big = Append("x" * 400, 0)
        with caplog.at_level(logging.ERROR, logger="casty_trio.sharding"):
            async with router.event_stream.subscription(DeadLetter) as dead_letters:
                ref.tell(ShardEnvelope(eid, big))
                with trio.fail_after(5):
                    letter = await dead_letters.receive()
        assert letter.message == ShardEnvelope(eid, big)
        assert "does not fit a frame" in caplog.text
        link.envelope_room = room
        link._sized = b""
        ref.tell(ShardEnvelope(eid, Append("after", 0)))
        await trio.sleep(1)
        assert deliveries[eid][-1] == ("after", 0)
        assert all(sender != big.sender for sender, _ in deliveries[eid])
