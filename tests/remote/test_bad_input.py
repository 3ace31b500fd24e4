"""Bad input from peers: each case is logged naming the peer, counted where the link
statistics can count it, answered by closing that connection with a specific close code, and
the node keeps serving its other peers.

The bad peer is a raw connection of the simulated network sending hand-made frames.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec
import pytest
import trio

from casty_trio import DeadLetter, MsgpackSerializer, NodeAddress, SerializationError
from casty_trio.remote import (
    CloseCode,
    ConnectionClosed,
    RemoteActorSystem,
    RemoteSettings,
)
from casty_trio.serialization._wire import (
    PROTOCOL_VERSION,
    Batch,
    Envelope,
    Envelopes,
    Hello,
    Reject,
    Watch,
    envelopes,
)
from casty_trio.testing import SimConnection, SimNetwork, TestProbe
from tests._helpers import receive_matching
from tests.remote._messages import Blob, Holder, NotAMessage, Note
from tests.remote._support import (
    WIRE,
    assert_link_untouched,
    assert_serving,
    at,
    logged,
    nodes,
    raw_peer,
    remote,
)

EVIL = NodeAddress("evil", 1)


def _envelope(path: str, message: Any) -> Envelope:
    manifest = f"{type(message).__module__}:{type(message).__qualname__}"
    return Envelope(path, manifest, msgspec.Raw(WIRE.encode(message)))


def _valid_batch() -> bytes:
    return WIRE.encode(Batch(1, [_envelope("/sink", Note("hi")), Watch("/sink")]))


BAD_FRAMES = {
    "garbage": b"\xc1\xff\x00 definitely not msgpack \x00\xff",
    "empty": b"",
    "truncated": _valid_batch()[:-5],
    "unknown tag": WIRE.encode([99, 1, []]),
    "unknown item tag": WIRE.encode([7, 1, [[42, "/sink"]]]),
    "wrong shape": WIRE.encode({"seq": 1, "items": []}),
    "trailing bytes": _valid_batch() + b"\x00",
    # A payload nested far deeper than the decoder's recursion limit: [7, 1, [[3, "/sink",
    # "builtins:list", [[[[...1...]]]]]]].
    "nesting bomb": b"\x93\x07\x01\x91\x94\x03\xa5/sink\xadbuiltins:list"
    + b"\x91" * 50_000
    + b"\x01",
}


# ---------------------------------------------------------------------- malformed frames


@pytest.mark.parametrize("case", sorted(BAD_FRAMES))
async def test_malformed_frame_after_handshake(
    autojump_clock: Any, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    caplog.set_level(logging.INFO)
    net = SimNetwork(seed=3)
    async with nodes(net, "a", "b") as (a, b):
        sink = TestProbe(b, "sink")
        await assert_serving(a, b)
        async with raw_peer(net, b) as evil:
            await evil.handshake()
            await evil.send(BAD_FRAMES[case])
            closed = await evil.closed()
        assert closed.code == CloseCode.MALFORMED_FRAME, closed
        assert closed.reason
        stats = b.link_statistics()[EVIL]
        assert stats.decode_errors == 1
        assert stats.frames_in == 1
        assert logged(caplog, "evil:1", "malformed")
        assert sink.messages_received == 0
        # Only that connection was closed: the node keeps serving the peer it already had (on
        # the same connection), and new ones.
        await assert_serving(a, b)
        assert_link_untouched(a, b)
        async with nodes(net, "c") as (c,):
            await assert_serving(c, b)


@pytest.mark.parametrize("case", sorted(BAD_FRAMES))
async def test_malformed_hello(
    autojump_clock: Any, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    net = SimNetwork(seed=4)
    async with nodes(net, "a", "b") as (a, b):
        await assert_serving(a, b)
        async with raw_peer(net, b) as evil:
            await evil.send(BAD_FRAMES[case])
            closed = await evil.closed()
        assert closed.code == CloseCode.BAD_HANDSHAKE
        hello, reject = evil.decoded()
        assert isinstance(hello, Hello) and hello.system == "app"
        assert isinstance(reject, Reject) and reject.code == CloseCode.BAD_HANDSHAKE
        assert "malformed hello" in reject.reason
        assert logged(caplog, "evil:1", "malformed hello")
        assert EVIL not in b.link_statistics()  # refused before any link existed
        await assert_serving(a, b)
        assert_link_untouched(a, b)


async def test_reject_with_a_close_code_that_is_not_ours(
    autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # The node must not echo an arbitrary code: over WebSocket, closing with 70000 raises.
    net = SimNetwork(seed=23)
    async with nodes(net, "a", "b") as (a, b):
        await assert_serving(a, b)
        for code in (70_000, -1, 0, 1000):
            async with raw_peer(net, b) as evil:
                await evil.send(WIRE.encode(Reject(code, "bye")))
                closed = await evil.closed()
            assert closed.code == CloseCode.BAD_HANDSHAKE
        async with raw_peer(net, b) as evil:
            await evil.send(WIRE.encode(Reject(CloseCode.WRONG_SYSTEM, "bye")))
            assert (await evil.closed()).code == CloseCode.WRONG_SYSTEM  # one of ours: echoed
        assert logged(caplog, "evil:1", "bye")
        await assert_serving(a, b)
        assert_link_untouched(a, b)


async def test_batch_before_hello_is_refused(autojump_clock: Any) -> None:
    net = SimNetwork(seed=5)
    async with nodes(net, "a", "b") as (a, b):
        await assert_serving(a, b)
        async with raw_peer(net, b) as evil:
            await evil.send(_valid_batch())
            closed = await evil.closed()
        assert closed.code == CloseCode.BAD_HANDSHAKE
        await assert_serving(a, b)
        assert_link_untouched(a, b)


async def test_second_hello_after_handshake_is_malformed(
    autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    net = SimNetwork(seed=6)
    async with nodes(net, "a", "b") as (a, b):
        await assert_serving(a, b)
        async with raw_peer(net, b) as evil:
            await evil.handshake()
            await evil.send(evil.hello(uid=777))
            closed = await evil.closed()
        assert closed.code == CloseCode.MALFORMED_FRAME
        assert "Hello" in closed.reason
        assert b.link_statistics()[EVIL].decode_errors == 1
        assert logged(caplog, "evil:1", "malformed")
        await assert_serving(a, b)
        assert_link_untouched(a, b)


async def test_undecodable_payload_is_dropped_and_counted_link_stays_up(
    autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    net = SimNetwork(seed=7)
    async with nodes(net, "a", "b") as (a, b):
        sink = TestProbe(b, "sink")
        async with raw_peer(net, b) as evil:
            await evil.handshake()
            bad = [
                Envelope("/sink", "subprocess:Popen", msgspec.Raw(WIRE.encode(["ls"]))),
                Envelope("/sink", "no.such.module:Thing", msgspec.Raw(WIRE.encode(1))),
                Envelope("/sink", "tests.remote._messages:Note", msgspec.Raw(WIRE.encode(5))),
                Envelope("/sink", "builtins:eval", msgspec.Raw(WIRE.encode("1+1"))),
            ]
            await evil.send_batch(1, [*bad, _envelope("/sink", Note("still here"))])
            await sink.expect_message(Note("still here"))
            stats = b.link_statistics()[EVIL]
            assert stats.decode_errors == len(bad)
            assert stats.connected  # a bad payload is not a bad frame: the link stays
            await evil.send_batch(2, [_envelope("/sink", Note("again"))])
            await sink.expect_message(Note("again"))
        assert logged(caplog, "evil:1", "subprocess:Popen")
        await assert_serving(a, b)


async def test_a_run_keeps_its_good_messages_and_a_run_that_is_not_an_array_is_dropped(
    autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # A run is decoded in one call; when that fails, one payload at a time, so only the
    # malformed ones are lost. An Envelopes item whose payloads are not an array at all is one
    # malformed item.
    net = SimNetwork(seed=12)
    async with nodes(net, "a", "b") as (a, b):
        sink = TestProbe(b, "sink")
        async with raw_peer(net, b) as evil:
            await evil.handshake()
            note = "tests.remote._messages:Note"
            good = [WIRE.encode(Note(f"n{i}")) for i in range(4)]
            run = envelopes("/sink", note, [good[0], WIRE.encode(5), good[1], b"\xc0", good[2]])
            not_an_array = Envelopes("/sink", note, msgspec.Raw(WIRE.encode("x")))
            unknown = envelopes("/sink", "no.such.module:Thing", [good[0], good[1]])
            tail = envelopes("/sink", note, [good[3]])
            await evil.send_batch(1, [run, not_an_array, unknown, tail])
            assert await sink.receive_messages(4) == [
                Note("n0"),
                Note("n1"),
                Note("n2"),
                Note("n3"),
            ]
            stats = b.link_statistics()[EVIL]
            assert stats.decode_errors == 2 + 1 + 2
            assert stats.messages_in == 5 + 2 + 1  # the item that is not a run counts as none
            assert stats.connected
        assert logged(caplog, "evil:1", "not an array")
        assert logged(caplog, "evil:1", note)
        await assert_serving(a, b)


# ---------------------------------------------------------------------- unknown recipients


async def test_message_for_unknown_path_is_a_dead_letter_on_the_receiver(
    autojump_clock: Any,
) -> None:
    net = SimNetwork(seed=8, latency=0.001)
    async with nodes(net, "a", "b") as (a, b):
        sink = TestProbe(b, "sink")
        async with b.event_stream.subscription(DeadLetter) as dead:
            remote(a, "/nobody", b).tell(Note("lost"))
            remote(a, "/sink", b).tell(Note("found"))
            letter = await receive_matching(dead, lambda d: True, within=5)
            assert letter.message == Note("lost")
            assert letter.intended_ref.path == "/nobody"
            assert letter.intended_ref.address.node == b.self_node
            await sink.expect_message(Note("found"))
        stats = b.link_statistics()[a.self_node]
        assert stats.connected and stats.connections == 1 and stats.decode_errors == 0
        await assert_serving(a, b)


async def test_raw_envelope_for_unknown_path_keeps_the_link(autojump_clock: Any) -> None:
    net = SimNetwork(seed=9)
    async with nodes(net, "a", "b") as (a, b):
        sink = TestProbe(b, "sink")
        async with raw_peer(net, b) as evil, b.event_stream.subscription(DeadLetter) as dead:
            await evil.handshake()
            await evil.send_batch(1, [_envelope("/ghost/child", Note("boo"))])
            letter = await receive_matching(dead, lambda d: True, within=5)
            assert letter.message == Note("boo")
            await evil.send_batch(2, [_envelope("/sink", Note("real"))])
            await sink.expect_message(Note("real"))
            assert b.link_statistics()[EVIL].connected
        await assert_serving(a, b)


# ---------------------------------------------------------------------- oversized frames


async def test_frame_over_the_nodes_max_frame_size(
    autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # The network carries big frames; the node's own limit must still hold.
    net = SimNetwork(seed=10)
    settings = RemoteSettings(max_frame_size=4096)
    async with nodes(net, "a", "b", settings=settings) as (a, b):
        sink = TestProbe(b, "sink")
        await assert_serving(a, b)
        async with raw_peer(net, b) as evil:
            await evil.handshake()
            await evil.send_batch(1, [_envelope("/sink", Blob(b"x" * 10_000))])
            closed = await evil.closed()
        assert closed.code == CloseCode.TOO_BIG
        assert b.link_statistics()[EVIL].decode_errors == 1
        assert logged(caplog, "evil:1", "max_frame_size")
        assert sink.messages_received == 0
        await assert_serving(a, b)
        assert_link_untouched(a, b)


async def test_oversized_hello(autojump_clock: Any, caplog: pytest.LogCaptureFixture) -> None:
    net = SimNetwork(seed=11)
    settings = RemoteSettings(max_frame_size=4096)
    async with nodes(net, "a", "b", settings=settings) as (a, b):
        await assert_serving(a, b)
        async with raw_peer(net, b) as evil:
            big = WIRE.encode(Hello(PROTOCOL_VERSION, "app" + "x" * 10_000, "evil", 1, 1))
            await evil.send(big)
            closed = await evil.closed()
        assert closed.code == CloseCode.TOO_BIG
        assert logged(caplog, "evil:1", "max_frame_size")
        await assert_serving(a, b)
        assert_link_untouched(a, b)


async def test_frame_over_the_networks_max_frame_size(
    autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # The transport refuses the frame and closes with 1009 (as trio-websocket does): the node
    # sees the close, logs it naming the peer and counts it.
    net = SimNetwork(seed=12, max_frame_size=4096)
    async with nodes(net, "a", "b") as (a, b):
        await assert_serving(a, b)
        async with raw_peer(net, b) as evil:
            await evil.handshake()
            with pytest.raises(ConnectionClosed) as info:
                await evil.send_batch(1, [_envelope("/sink", Blob(b"x" * 10_000))])
            assert info.value.code == CloseCode.TOO_BIG
        await trio.sleep(0.1)
        stats = b.link_statistics()[EVIL]
        assert not stats.connected
        assert stats.decode_errors == 1
        assert logged(caplog, "evil:1", "1009")
        await assert_serving(a, b)
        assert_link_untouched(a, b)


# ---------------------------------------------------------------------- handshake refusals


async def test_hello_with_wrong_protocol_version(
    autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    net = SimNetwork(seed=13)
    async with nodes(net, "a", "b") as (a, b):
        await assert_serving(a, b)
        async with raw_peer(net, b) as evil:
            await evil.send(evil.hello(version=PROTOCOL_VERSION + 1))
            closed = await evil.closed()
        assert closed.code == CloseCode.WRONG_VERSION
        assert str(PROTOCOL_VERSION + 1) in closed.reason
        _hello, reject = evil.decoded()
        assert isinstance(reject, Reject) and reject.code == CloseCode.WRONG_VERSION
        assert logged(caplog, "evil:1", "protocol version")
        assert EVIL not in b.link_statistics()
        await assert_serving(a, b)
        assert_link_untouched(a, b)


async def test_hello_with_wrong_system_name(
    autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    net = SimNetwork(seed=14)
    async with nodes(net, "a", "b") as (a, b):
        await assert_serving(a, b)
        async with raw_peer(net, b) as evil:
            await evil.send(evil.hello(system="intruders"))
            closed = await evil.closed()
        assert closed.code == CloseCode.WRONG_SYSTEM
        assert "intruders" in closed.reason
        _hello, reject = evil.decoded()
        assert isinstance(reject, Reject) and reject.code == CloseCode.WRONG_SYSTEM
        assert logged(caplog, "evil:1", "intruders")
        assert EVIL not in b.link_statistics()
        await assert_serving(a, b)
        assert_link_untouched(a, b)


async def test_nodes_of_different_systems_refuse_each_other(
    autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    net = SimNetwork(seed=15, latency=0.001)
    async with (
        nodes(net, "a", "b") as (a, b),
        nodes(net, "other", name="elsewhere") as (other,),
        a.event_stream.subscription(DeadLetter) as dead,
    ):
        ref = remote(a, "/ponger", other)
        ref.tell(Note("wrong cluster"))
        letter = await receive_matching(dead, lambda d: True, within=5)
        assert letter.message == Note("wrong cluster")
        assert letter.intended_ref == ref
        assert logged(caplog, str(other.self_node), "elsewhere")
        assert logged(caplog, str(a.self_node), "elsewhere")
        assert not other.link_statistics().get(a.self_node, None)
        await assert_serving(a, b)


async def test_peer_that_never_completes_the_handshake(
    autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    net = SimNetwork(seed=16, latency=0.001)
    settings = RemoteSettings(handshake_timeout=2.0)
    async with nodes(net, "a", "b", settings=settings) as (a, b):
        async with raw_peer(net, b) as evil:
            start = trio.current_time()
            # The silent peer does not hold up anybody else meanwhile.
            await assert_serving(a, b)
            assert trio.current_time() - start < 1.0
            closed = await evil.closed()
            assert closed.code == CloseCode.HANDSHAKE_TIMEOUT
            assert trio.current_time() - start == pytest.approx(2.0, abs=0.01)
        assert logged(caplog, "evil:1", "handshake")
        await assert_serving(a, b)


async def test_peer_that_sends_nothing_after_connecting_is_dropped_repeatedly(
    autojump_clock: Any,
) -> None:
    # Many silent connections at once: each is bounded by the timeout, none leaks.
    net = SimNetwork(seed=17)
    settings = RemoteSettings(handshake_timeout=1.0)
    async with nodes(net, "a", "b", settings=settings) as (a, b):
        await assert_serving(a, b)
        codes: list[int] = []

        async def silent(i: int) -> None:
            async with raw_peer(net, b, host=f"evil{i}") as evil:
                codes.append((await evil.closed()).code)

        async with trio.open_nursery() as nursery:
            for i in range(20):
                nursery.start_soon(silent, i)
        assert codes == [CloseCode.HANDSHAKE_TIMEOUT] * 20
        assert net.statistics().connections_open == 1  # only the link between a and b
        await assert_serving(a, b)


async def test_dialed_peer_that_never_answers_the_hello(
    autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    net = SimNetwork(seed=18)
    settings = RemoteSettings(handshake_timeout=1.5)
    mute = net.transport("mute")

    async def never_answer(conn: Any) -> None:
        await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        await nursery.start(mute.serve, never_answer)
        async with (
            nodes(net, "a", "b", settings=settings) as (a, b),
            a.event_stream.subscription(DeadLetter) as dead,
        ):
            start = trio.current_time()
            at(a, "/x", mute.address).tell(Note("hello?"))
            letter = await receive_matching(dead, lambda d: True, within=5)
            assert letter.message == Note("hello?")
            assert trio.current_time() - start == pytest.approx(1.5, abs=0.01)
            assert logged(caplog, "mute:1", "handshake")
            await assert_serving(a, b)
        nursery.cancel_scope.cancel()


async def test_dialed_peer_that_rejects_us(
    autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    net = SimNetwork(seed=19)
    grumpy = net.transport("grumpy")

    async def reject(conn: SimConnection) -> None:
        await conn.receive()
        await conn.send(WIRE.encode(Reject(CloseCode.WRONG_SYSTEM, "go away")))
        await conn.aclose(CloseCode.WRONG_SYSTEM, "go away")

    async with trio.open_nursery() as nursery:
        await nursery.start(grumpy.serve, reject)
        async with (
            nodes(net, "a", "b") as (a, b),
            a.event_stream.subscription(DeadLetter) as dead,
        ):
            at(a, "/x", grumpy.address).tell(Note("hi"))
            letter = await receive_matching(dead, lambda d: True, within=5)
            assert letter.message == Note("hi")
            assert logged(caplog, "grumpy:1", "go away")
            await assert_serving(a, b)
        nursery.cancel_scope.cancel()


# ---------------------------------------------------------------------- at the tell


async def test_unencodable_message_fails_at_the_tell(autojump_clock: Any) -> None:
    net = SimNetwork(seed=20)
    async with nodes(net, "a", "b") as (a, b):
        sink = TestProbe(b, "sink")
        ref = remote(a, "/sink", b)
        with pytest.raises(SerializationError, match="Holder"):
            ref.tell(Holder(lambda: 1))
        with pytest.raises(SerializationError, match="Holder"):
            ref.tell(Holder(object()))
        with pytest.raises(SerializationError, match="NotAMessage"):
            ref.tell(NotAMessage(1))
        with pytest.raises(SerializationError):
            ref.tell({1, 2, object()})
        assert b.self_node not in a.link_statistics() or (
            a.link_statistics()[b.self_node].messages_out == 0
        )
        ref.tell(Note("fine"))
        await sink.expect_message(Note("fine"), within=5)


async def test_unregistered_type_fails_at_the_tell_in_strict_mode(autojump_clock: Any) -> None:
    net = SimNetwork(seed=21)
    strict = MsgpackSerializer(types=[Note], strict=True)
    async with (
        RemoteActorSystem("app", transport=net.transport("a"), serializer=strict) as a,
        nodes(net, "b") as (b,),
    ):
        sink = TestProbe(b, "sink")
        ref = remote(a, "/sink", b)
        with pytest.raises(SerializationError, match="Blob"):
            ref.tell(Blob(b"no"))
        ref.tell(Note("registered"))
        await sink.expect_message(Note("registered"), within=5)


async def test_message_too_large_for_a_frame_fails_at_the_tell(autojump_clock: Any) -> None:
    limit = 64 * 1024
    net = SimNetwork(seed=22, max_frame_size=limit)
    settings = RemoteSettings(max_frame_size=limit)
    async with nodes(net, "a", "b", settings=settings) as (a, b):
        sink = TestProbe(b, "sink")
        ref = remote(a, "/sink", b)
        with pytest.raises(SerializationError, match="Blob"):
            ref.tell(Blob(b"x" * limit))
        with pytest.raises(SerializationError, match="Blob"):
            ref.tell(Blob(b"x" * (limit - 100)))
        ref.tell(Blob(b"y" * (limit - 2048)))  # close to the limit, but it fits
        await sink.expect_message(Blob(b"y" * (limit - 2048)), within=5)
        # A long recipient path counts too: the whole envelope must fit in one frame.
        long_path = "/" + "p" * 3000
        with pytest.raises(SerializationError, match="Blob"):
            at(a, long_path, b.self_node).tell(Blob(b"z" * (limit - 2048)))
        stats = a.link_statistics()[b.self_node]
        assert stats.connections == 1 and stats.connected
        await assert_serving(a, b)
