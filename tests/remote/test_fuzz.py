"""Fuzzing the link's frame handling: random frames and mutated valid frames never let an
exception escape the link, are answered by closing that connection with a specific code (or
handled, when they happen to be valid), and the node stays up.

Most examples go straight into a ``PeerLink`` read loop through a tiny in-memory connection
(fast: thousands of frames per run); a smaller sample goes end to end through the simulated
network, handshake included.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import msgspec
import trio
import trio.testing
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from casty_trio import NodeAddress
from casty_trio.remote import CloseCode, ConnectionClosed, RemoteActorSystem
from casty_trio.remote._links import PeerLink
from casty_trio.serialization._wire import (
    PROTOCOL_VERSION,
    Batch,
    DeathNotice,
    Envelope,
    Hello,
    Reject,
    Unwatch,
    Watch,
    envelopes,
)
from casty_trio.testing import SimNetwork, TestProbe
from tests.remote._messages import Note
from tests.remote._support import WIRE, assert_serving, nodes, raw_peer

FUZZ_PEER = NodeAddress("fuzz", 1)
CLOSE_CODES = {CloseCode.MALFORMED_FRAME, CloseCode.TOO_BIG}


class FakeConnection:
    """A Connection that plays back frames, records what the link writes and how it closes."""

    peer = str(FUZZ_PEER)

    def __init__(self, frames: list[bytes]) -> None:
        self.frames = deque(frames)
        self.sent: list[bytes] = []
        self.closed: tuple[int, str] | None = None

    async def send(self, frame: bytes) -> None:
        await trio.lowlevel.checkpoint()
        if self.closed is not None:
            raise ConnectionClosed(*self.closed, local=True)
        self.sent.append(frame)

    async def receive(self) -> bytes:
        await trio.lowlevel.checkpoint()
        if self.closed is not None:
            raise ConnectionClosed(*self.closed, local=True)
        if self.frames:
            return self.frames.popleft()
        raise ConnectionClosed(CloseCode.NORMAL, "no more frames")

    async def aclose(self, code: int = CloseCode.NORMAL, reason: str = "") -> None:
        if self.closed is None:
            self.closed = (code, reason)
        await trio.lowlevel.checkpoint()


# ---------------------------------------------------------------------- strategies

INTS = st.integers(min_value=-(2**63), max_value=2**64 - 1)  # what msgpack can carry
SEQS = INTS
PATHS = st.sampled_from(
    ["/sink", "/ponger", "/nobody", "/$ask/1", "/sink/child", "", "sink", "/\x00", "/é" * 3]
)
MANIFESTS = st.sampled_from(
    [
        "builtins:int",
        "builtins:str",
        "builtins:list",
        "builtins:dict",
        "builtins:NoneType",
        "tests.remote._messages:Note",
        "tests.remote._messages:Ping",
        "casty_trio:ActorRef",
        "os:system",
        "subprocess:Popen",
        "builtins:eval",
        "no.such:Thing",
        "",
        ":",
    ]
)
VALUES = st.recursive(
    st.none() | st.booleans() | INTS | st.floats() | st.text(max_size=20) | st.binary(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=10,
)
PAYLOADS = st.one_of(
    VALUES.map(WIRE.encode),
    st.builds(lambda text: WIRE.encode(Note(text)), st.text(max_size=20)),
    st.builds(lambda data: msgspec.msgpack.encode(msgspec.msgpack.Ext(1, data)), st.binary()),
)
ITEMS = st.one_of(
    st.builds(Envelope, PATHS, MANIFESTS, PAYLOADS.map(msgspec.Raw)),
    st.builds(envelopes, PATHS, MANIFESTS, st.lists(PAYLOADS, max_size=4)),
    st.builds(Watch, PATHS),
    st.builds(Unwatch, PATHS),
    st.builds(DeathNotice, PATHS),
)
VALID_FRAMES = st.one_of(
    st.builds(Batch, SEQS, st.lists(ITEMS, max_size=6)),
    st.builds(Hello, INTS, st.text(max_size=8), st.text(max_size=8), INTS, INTS),
    st.builds(Reject, INTS, st.text(max_size=20)),
).map(WIRE.encode)


@st.composite
def mutated(draw: st.DrawFn, frames: st.SearchStrategy[bytes] = VALID_FRAMES) -> bytes:
    """A valid frame with a few random edits: flipped, inserted, deleted bytes, truncation."""
    data = bytearray(draw(frames))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "repeat"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[at] ^= draw(st.integers(1, 255))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete" and data:
            del data[at : at + draw(st.integers(1, 8))]
        elif kind == "truncate":
            del data[at:]
        elif kind == "repeat":
            data[at:at] = data[at : at + draw(st.integers(1, 16))]
    return bytes(data)


_SPECIAL = {
    "empty": b"",
    "never-used byte": b"\xc1",
    # a payload nested far deeper than the decoder's recursion limit
    "nesting bomb": b"\x93\x07\x01\x91\x94\x03\xa5/sink\xadbuiltins:list"
    + b"\x91" * 20_000
    + b"\x01",
    "4 billion items": b"\x93\x07\x01" + b"\xdd\xff\xff\xff\xff",
    "4 GB string": b"\x93\x07\x01\x91\x94\x03\xa5/sink\xa3x:y\xdb\xff\xff\xff\xff",
    "end marker": b"\x93\x07\x00\x90",
    "bad payload": WIRE.encode(Batch(1, [Envelope("/sink", "builtins:int", msgspec.Raw(b"\xc1"))])),
}
# (sampled by name: hypothesis prints strategies, and the nesting bomb is long)
SPECIAL = st.sampled_from(sorted(_SPECIAL)).map(lambda name: _SPECIAL[name])
ANY_FRAME = st.one_of(st.binary(max_size=300), mutated(), VALID_FRAMES, SPECIAL)


# ---------------------------------------------------------------------- feeding a link


async def _feed(system: RemoteActorSystem, frames: list[bytes]) -> list[FakeConnection]:
    """Run each frame through a fresh link's read loop; check how each one ended."""
    remoting = system._remoting
    conns = []
    for frame in frames:
        link = PeerLink(remoting, FUZZ_PEER)
        conn = FakeConnection([frame])
        with trio.fail_after(5):
            await link.run(conn, peer_uid=1, outbound=False)  # nothing escapes
        assert link.frames_in == 1
        if conn.closed is not None:
            code, reason = conn.closed
            assert code in CLOSE_CODES, conn.closed
            assert reason
            assert link.decode_errors >= 1
        conns.append(conn)
    return conns


async def _node_is_up(system: RemoteActorSystem, probe: TestProbe, n: int) -> None:
    probe.ref.tell(n)
    await probe.fish_for_message(lambda m: m == n, within=1)


def _run(body: Any) -> None:
    trio.run(body, clock=trio.testing.MockClock(autojump_threshold=0))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames=st.lists(ANY_FRAME, min_size=1, max_size=25))
def test_fuzz_frames_into_a_link(frames: list[bytes]) -> None:
    async def body() -> None:
        net = SimNetwork(seed=1)
        async with nodes(net, "node", "friend") as (node, friend):
            probe = TestProbe(node, "sink")
            await _feed(node, frames)
            await _feed(node, frames[::-1])
            await _node_is_up(node, probe, 0)
            await assert_serving(node, friend)

    _run(body)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames=st.lists(mutated(), min_size=1, max_size=25))
def test_fuzz_mutated_valid_frames_into_a_link(frames: list[bytes]) -> None:
    async def body() -> None:
        net = SimNetwork(seed=2)
        async with nodes(net, "node", "friend") as (node, friend):
            probe = TestProbe(node, "sink")
            await _feed(node, frames)
            await _node_is_up(node, probe, 0)
            await assert_serving(node, friend)

    _run(body)


@settings(max_examples=100, deadline=None)
@given(
    batches=st.lists(
        st.tuples(
            st.integers(0, 30),
            st.lists(st.one_of(st.text(max_size=10), INTS, st.none()), max_size=5),
        ),
        max_size=30,
    )
)
def test_valid_frames_in_one_connection_are_delivered_once_in_order(
    batches: list[tuple[int, list[Any]]],
) -> None:
    """The model: a frame is handled iff its number is above every number seen before on the
    connection; 0 with no items is the end marker; everything else is a duplicate."""

    async def body() -> None:
        net = SimNetwork(seed=3)
        async with nodes(net, "node") as (node,):
            probe = TestProbe(node, "sink")
            frames = [
                WIRE.encode(Batch(seq, [Envelope("/sink", *_encoded(value)) for value in values]))
                for seq, values in batches
            ]
            link = PeerLink(node._remoting, FUZZ_PEER)
            conn = FakeConnection(frames)
            await link.run(conn, peer_uid=1, outbound=False)
            expected: list[Any] = []
            highest = 0
            duplicates = 0
            ended = False
            for seq, values in batches:
                if seq == 0 and not values and not ended:
                    ended = True  # the end marker; a repeat of it is a duplicate
                    continue
                if seq <= highest:
                    duplicates += 1
                    continue
                highest = seq
                expected.extend(values)
            await trio.testing.wait_all_tasks_blocked()
            assert probe.receive_all_nowait() == expected
            assert link.duplicates == duplicates
            assert link.decode_errors == 0 and conn.closed is None

    _run(body)


def _encoded(value: Any) -> tuple[str, msgspec.Raw]:
    return f"builtins:{type(value).__name__}", msgspec.Raw(WIRE.encode(value))


# ---------------------------------------------------------------------- end to end


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames=st.lists(ANY_FRAME, min_size=1, max_size=8), before_hello=st.booleans())
# A well-formed frame can come out of the fuzzing too: this one carries the message "".
@example(frames=[b"\x93\x07\x01\x91\x94\x03\xa5/sink\xacbuiltins:str\xa0"], before_hello=False)
def test_fuzz_end_to_end_through_the_network(frames: list[bytes], before_hello: bool) -> None:
    async def body() -> None:
        net = SimNetwork(seed=4, latency=0.001)
        async with nodes(net, "a", "b") as (a, b):
            sink = TestProbe(b, "sink")
            await assert_serving(a, b)
            for i, frame in enumerate(frames):
                async with raw_peer(net, b, host=f"evil{i}") as evil:
                    if not before_hello:
                        theirs = await evil.handshake()
                        assert theirs.version == PROTOCOL_VERSION
                    await evil.send(frame)
                    # Then a valid frame: handled if the link survived the first one.
                    await evil.send_batch(2**62, [Envelope("/sink", *_encoded(f"ok{i}"))])
                    with trio.move_on_after(1):
                        closed = await evil.closed()
                        # ours: 1009 or 4000-4999 (a Reject's code is echoed if it is one)
                        assert closed.code == CloseCode.TOO_BIG or 4000 <= closed.code < 5000
            await assert_serving(a, b)
            # Nothing but what a peer sent: our "ok" messages, or one a fuzzed frame happened
            # to carry well-formed.
            for m in sink.receive_all_nowait():
                if isinstance(m, str) and not m.startswith("ok"):
                    assert any(WIRE.encode(m) in frame for frame in frames), m

    _run(body)
