"""Pre-encoded runs: ``Remoting.raw_sender`` on one side, ``set_bulk_receiver`` on the other."""

from __future__ import annotations

import logging
from typing import Any

import msgspec
import pytest

from casty_trio import NodeAddress, SerializationError
from casty_trio.remote import RemoteActorSystem, RemoteSettings
from casty_trio.serialization._wire import envelopes_header, run_payloads
from casty_trio.testing import SimNetwork
from tests.remote._support import REMOTE_LOGGER, assert_serving, logged, nodes, wait_until

PATH = "/bulk"


class Recorder:
    def __init__(self, refuse: int = 0) -> None:
        self.calls: list[tuple[NodeAddress, str, list[bytes]]] = []
        self.refuse = refuse

    def __call__(self, peer: NodeAddress, manifest: str, run: msgspec.Raw, count: int) -> int:
        payloads = [bytes(p) for p in run_payloads(run)]
        assert len(payloads) == count
        self.calls.append((peer, manifest, payloads))
        return self.refuse

    def payloads(self) -> list[bytes]:
        return [p for _, _, ps in self.calls for p in ps]


def errors(system: RemoteActorSystem, peer: RemoteActorSystem) -> int:
    stats = system.link_statistics().get(peer.self_node)
    return 0 if stats is None else stats.decode_errors


async def test_runs_arrive_whole_in_order_from_the_named_peer(autojump_clock: Any) -> None:
    async with nodes(SimNetwork(seed=3), "a", "b") as (a, b):
        received = Recorder()
        b._remoting.set_bulk_receiver(PATH, received)
        sender = a._remoting.raw_sender(b.self_node, PATH)
        header = envelopes_header(PATH, "app:Thing")
        sent = [bytes([i % 100]) for i in range(500)]
        assert all(sender.send(header, p) for p in sent)
        await wait_until(lambda: len(received.payloads()) == len(sent))
        assert received.payloads() == sent
        assert {(peer, manifest) for peer, manifest, _ in received.calls} == {
            (a.self_node, "app:Thing")
        }
        assert len(received.calls) < 10  # runs, not one call per payload
        b._remoting.set_bulk_receiver(PATH, None)
        assert sender.send(header, b"\x01")  # nobody takes it now: dropped on arrival
        await assert_serving(a, b)
        assert len(received.payloads()) == len(sent)


async def test_refused_and_failing_runs_count_as_decode_errors(
    autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    async with nodes(SimNetwork(seed=4), "a", "b") as (a, b):
        b._remoting.set_bulk_receiver(PATH, Recorder(refuse=2))
        sender = a._remoting.raw_sender(b.self_node, PATH)
        header = envelopes_header(PATH, "app:Thing")
        sender.send(header, b"\x01")
        await wait_until(lambda: errors(b, a) == 2)

        def failing(peer: NodeAddress, manifest: str, run: msgspec.Raw, count: int) -> int:
            raise RuntimeError("receiver bug")

        b._remoting.set_bulk_receiver(PATH, failing)
        with caplog.at_level(logging.ERROR, logger=REMOTE_LOGGER):
            sender.send(header, b"\x02")
            await wait_until(lambda: errors(b, a) == 3)
        assert logged(caplog, str(a.self_node), "app:Thing", "receiver failed", level=logging.ERROR)
        await assert_serving(a, b)  # the link and the node carry on


async def test_a_payload_that_cannot_fit_a_frame_is_refused_at_send(autojump_clock: Any) -> None:
    settings = RemoteSettings(max_frame_size=4096)
    async with nodes(SimNetwork(seed=5), "a", "b", settings=settings) as (a, b):
        sender = a._remoting.raw_sender(b.self_node, PATH)
        with pytest.raises(SerializationError, match="app:Big"):
            sender.send(envelopes_header(PATH, "app:Big"), b"x" * 4096)


async def test_the_frame_limit_counts_each_header_and_a_closed_node_sends_nothing(
    autojump_clock: Any,
) -> None:
    settings = RemoteSettings(max_frame_size=4096)
    async with nodes(SimNetwork(seed=6), "a", "b", settings=settings) as (a, b):
        received = Recorder()
        b._remoting.set_bulk_receiver(PATH, received)
        sender = a._remoting.raw_sender(b.self_node, PATH)
        short = envelopes_header(PATH, "app:Short")
        long = envelopes_header(PATH, "app:" + "L" * 500)
        room = a._remoting.envelope_limit - 5  # header and payload, with an array header
        fits = msgspec.msgpack.encode(b"x" * (room - len(short) - 3))  # a bin 16: 3-byte head
        assert len(fits) == room - len(short)
        too_big = msgspec.msgpack.encode(b"x" * (room - len(short) - 2))
        assert sender.send(short, fits)
        with pytest.raises(SerializationError, match="app:LLL"):
            sender.send(long, fits)  # the same payload behind a longer header does not fit
        assert sender.send(short, fits)
        with pytest.raises(SerializationError, match="app:Short"):
            sender.send(short, too_big)
        await wait_until(lambda: len(received.payloads()) == 2)
    assert not sender.send(short, b"\x01")  # the node has shut down: refused, not queued
