"""Sharding under bad input and misuse: each case gets a clear error and nothing else breaks."""

from __future__ import annotations

import logging
from typing import Any

import msgspec
import pytest
import trio

from casty_trio import (
    ActorSystem,
    Behaviors,
    ConfigError,
    DeadLetter,
    ReplicationConfig,
    ShardEnvelope,
    Terminated,
    entity_shard,
)
from casty_trio._manifest import manifest_of
from casty_trio.config import parse_config
from casty_trio.serialization._wire import envelopes_header
from casty_trio.sharding._wire import deliveries_path, delivery_prefix
from casty_trio.testing import TestProbe, open_test_cluster

from ._sharding_support import Add, Counted, Get, counter


def test_invalid_sharded_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="num_shards"):
        Behaviors.sharded(counter(), num_shards=0)
    with pytest.raises(ValueError, match="passivate_after"):
        Behaviors.sharded(counter(), passivate_after=0)
    with pytest.raises(ValueError, match="min_acks=2 exceeds replicas=1"):
        Behaviors.sharded(counter(), replication=ReplicationConfig(replicas=1, min_acks=2))


async def test_a_region_ref_takes_only_envelopes(autojump_clock: Any) -> None:
    async with open_test_cluster(1) as cluster:
        ref = cluster.node(0).spawn(Behaviors.sharded(counter()), "counters")
        with pytest.raises(TypeError, match="ShardEnvelope messages, not Add"):
            ref.tell(Add(1))


async def test_a_sharded_behavior_on_a_plain_system_fails_clearly(
    autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    async with ActorSystem(name="plain") as system:
        ref = system.spawn(Behaviors.sharded(counter()), "counters")
        with TestProbe(system) as probe:
            probe.watch(ref)
            await probe.expect_message(Terminated, within=5)
    assert "ClusteredActorSystem" in caplog.text


async def test_malformed_deliveries_are_dropped_logged_and_counted(
    autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    async with open_test_cluster(2) as cluster:
        spec = Behaviors.sharded(counter(), num_shards=10)
        refs = [cluster.node(i).spawn(spec, "counters") for i in range(2)]
        a, b = cluster.node(0), cluster.node(1)
        sender = b._remoting.raw_sender(cluster.address(0), deliveries_path("/counters"))
        add = envelopes_header(sender.path, manifest_of(Add))
        encode = msgspec.msgpack.encode
        got: Counted = await a.ask(refs[0], lambda r: ShardEnvelope("y", Get(r)), timeout=5)
        assert got.value == 0
        shard = entity_shard("y", 10)
        with caplog.at_level(logging.WARNING, logger="casty_trio.sharding"):
            sender.send(add, delivery_prefix("x", 999) + encode(Add(1)))  # no such shard
            unknown = envelopes_header(sender.path, "no.such.module:Type")
            sender.send(unknown, b"\x93\xa1x\x01\x01")
            # One run: good deliveries between one of the wrong shape and an id that is not a
            # string (well-formed msgpack: a malformed frame is the link's business).
            for payload in (
                encode(["y", shard]),
                delivery_prefix("y", shard) + encode(Add(2)),
                encode((7, shard, {"amount": 3})),
                delivery_prefix("y", shard) + encode(Add(4)),
            ):
                sender.send(add, payload)
            await trio.sleep(1)
        assert "shard 999 out of range 0..9" in caplog.text
        assert "no.such.module:Type" in caplog.text
        assert f"malformed delivery from {cluster.address(1)}" in caplog.text
        assert a.link_statistics()[cluster.address(1)].decode_errors == 3  # 1 + 2
        got = await a.ask(refs[0], lambda r: ShardEnvelope("y", Get(r)), timeout=5)
        assert got.value == 6
        refs[1].tell(ShardEnvelope("after", Add(5)))
        got = await b.ask(refs[1], lambda r: ShardEnvelope("after", Get(r)), timeout=5)
        assert got.value == 5


async def test_the_buffer_is_bounded_and_overflow_becomes_dead_letters(
    autojump_clock: Any,
) -> None:
    config = parse_config("[defaults.sharding]\nbuffer_size = 5\n")
    async with open_test_cluster(1, config=config) as cluster:
        node = cluster.node(0)
        # No node has the role, so no shard ever gets a home: everything waits in the buffer.
        ref = node.spawn(Behaviors.sharded(counter(), role="nobody"), "counters")
        with TestProbe(node) as probe:
            node.event_stream.subscribe(DeadLetter, probe.ref)
            for k in range(7):
                ref.tell(ShardEnvelope(f"e{k}", Add(1)))
            letters = [await probe.expect_message(DeadLetter, within=5) for _ in range(2)]
            await probe.expect_no_message(within=1)
        assert [letter.message.entity_id for letter in letters] == ["e5", "e6"]
        assert node.region_statistics("counters").buffered == 5


def test_sharding_config_is_parsed_and_validated() -> None:
    config = parse_config(
        "[defaults.sharding]\nrebalance_interval = 0.25\nmax_simultaneous_rebalance = 3\n"
        "passivate_after = 30\n"
    )
    sharding = config.defaults.sharding
    assert (sharding.rebalance_interval, sharding.max_simultaneous_rebalance) == (0.25, 3)
    assert sharding.passivate_after == 30
    with pytest.raises(
        ConfigError, match=r"rebalance_threshold must be at least 1.*defaults\.sharding"
    ):
        parse_config("[defaults.sharding]\nrebalance_threshold = 0\n")
    with pytest.raises(
        ConfigError, match=r"unknown key.*buffer_sise @ casty\.toml\.defaults\.sharding"
    ):
        parse_config("[defaults.sharding]\nbuffer_sise = 10\n")
