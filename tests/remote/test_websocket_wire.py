"""The WebSocket connection's protocol handling, against a hand-driven wsproto peer.

``_WebSocketConnection`` reads and parses frames in the task that receives (no reader task of
its own): these tests feed it what a peer may send (fragments, pings between them, close frames,
text, garbage, a hang-up) over an in-memory stream, and check ``send_nowait`` over a local
socket pair (it needs a real file descriptor). The full transport (handshakes, TCP, TLS) is
tested in tests/integration.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
import trio.testing
from wsproto.connection import Connection as Protocol
from wsproto.connection import ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Event, Ping, Pong, TextMessage

from casty_trio.remote import CloseCode, ConnectionClosed
from casty_trio.remote._ws_connection import WebSocketConnection as _WebSocketConnection

MAX = 1024


class Peer:
    """The other end, driven by hand: a wsproto client protocol on a stream."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.protocol = Protocol(ConnectionType.CLIENT)
        self.events: list[Event] = []

    async def send(self, *events: Event) -> None:
        await self.stream.send_all(b"".join(self.protocol.send(event) for event in events))

    async def read_until(self, kind: type[Event]) -> Event:
        """Read until an event of ``kind`` arrives (events land in ``events``)."""
        with trio.fail_after(5):
            while True:
                for event in self.events:
                    if isinstance(event, kind):
                        return event
                data = await self.stream.receive_some()
                if not data:
                    raise EOFError
                self.protocol.receive_data(data)
                self.events.extend(self.protocol.events())

    def messages(self) -> list[bytes]:
        """The whole binary messages read so far (wsproto reports a long one in pieces)."""
        whole: list[bytes] = []
        parts: list[bytes] = []
        for event in self.events:
            if isinstance(event, BytesMessage):
                parts.append(bytes(event.data))
                if event.message_finished:
                    whole.append(b"".join(parts))
                    parts.clear()
        return whole


async def read_messages(peer: Peer, count: int) -> list[bytes]:
    with trio.fail_after(5):
        while len(peer.messages()) < count:
            data = await peer.stream.receive_some()
            peer.protocol.receive_data(data)
            peer.events.extend(peer.protocol.events())
    return peer.messages()


@asynccontextmanager
async def wired(close_timeout: float = 1.0) -> AsyncIterator[tuple[_WebSocketConnection, Peer]]:
    ours, theirs = trio.testing.memory_stream_pair()
    conn = _WebSocketConnection(ours, Protocol(ConnectionType.SERVER), "peer", MAX, close_timeout)
    yield conn, Peer(theirs)


async def test_fragments_are_joined_and_pings_between_them_answered() -> None:
    async with wired() as (conn, peer):
        await peer.send(
            BytesMessage(b"abc", message_finished=False),
            Ping(b"are you there"),
            BytesMessage(b"def", message_finished=False),
            BytesMessage(b"ghi", message_finished=True),
            BytesMessage(b"next"),
        )
        assert await conn.receive() == b"abcdefghi"
        assert await conn.receive() == b"next"
        pong = await peer.read_until(Pong)
        assert isinstance(pong, Pong) and pong.payload == b"are you there"


async def test_a_fragmented_message_over_the_limit_closes_with_1009() -> None:
    async with wired() as (conn, peer):
        await peer.send(BytesMessage(b"ok"))
        for _ in range(3):
            await peer.send(BytesMessage(b"x" * 500, message_finished=False))
        assert await conn.receive() == b"ok"
        with pytest.raises(ConnectionClosed) as info:
            await conn.receive()
        assert (info.value.code, info.value.local) == (CloseCode.TOO_BIG, False)
        close = await peer.read_until(CloseConnection)
        assert isinstance(close, CloseConnection) and close.code == CloseCode.TOO_BIG


async def test_a_whole_message_over_the_limit_closes_with_1009() -> None:
    async with wired() as (conn, peer):
        await peer.send(BytesMessage(b"y" * (MAX + 1)))
        with pytest.raises(ConnectionClosed) as info:
            await conn.receive()
        assert (info.value.code, info.value.local) == (CloseCode.TOO_BIG, False)


async def test_messages_before_the_peers_close_are_delivered_then_the_close() -> None:
    async with wired() as (conn, peer):
        await peer.send(
            BytesMessage(b"one"),
            BytesMessage(b"two"),
            CloseConnection(CloseCode.WRONG_SYSTEM, "not ours"),
        )
        assert await conn.receive() == b"one"
        assert await conn.receive() == b"two"
        for _ in range(2):  # and it stays closed, for sends too
            with pytest.raises(ConnectionClosed) as info:
                await conn.receive()
            assert (info.value.code, info.value.reason, info.value.local) == (
                CloseCode.WRONG_SYSTEM,
                "not ours",
                False,
            )
        with pytest.raises(ConnectionClosed):
            await conn.send(b"late")
        assert not conn.send_nowait(b"late")
        reply = await peer.read_until(CloseConnection)  # the closing handshake was answered
        assert isinstance(reply, CloseConnection) and reply.code == CloseCode.WRONG_SYSTEM


async def test_text_is_a_protocol_error(caplog: pytest.LogCaptureFixture) -> None:
    async with wired() as (conn, peer):
        await peer.send(TextMessage("hello"))
        with pytest.raises(ConnectionClosed) as info:
            await conn.receive()
        assert (info.value.code, info.value.local) == (CloseCode.PROTOCOL_ERROR, False)
        close = await peer.read_until(CloseConnection)
        assert isinstance(close, CloseConnection) and close.code == CloseCode.PROTOCOL_ERROR
    assert "text message" in caplog.text


async def test_garbage_is_a_protocol_error() -> None:
    async with wired() as (conn, peer):
        await peer.stream.send_all(b"\xff\xff\xff\xff\xff\xff")  # reserved bits, bad opcode
        with pytest.raises(ConnectionClosed) as info:
            await conn.receive()
        assert info.value.code == CloseCode.PROTOCOL_ERROR and not info.value.local
        close = await peer.read_until(CloseConnection)
        assert isinstance(close, CloseConnection) and close.code == CloseCode.PROTOCOL_ERROR


async def test_a_hang_up_without_close_is_1006() -> None:
    async with wired() as (conn, peer):
        await peer.send(BytesMessage(b"last"))
        await peer.stream.aclose()
        assert await conn.receive() == b"last"
        with pytest.raises(ConnectionClosed) as info:
            await conn.receive()
        assert (info.value.code, info.value.local) == (1006, False)
        await conn.aclose()  # closing a broken connection succeeds


async def test_close_waits_for_the_reply_and_drops_what_came_before_it() -> None:
    async with wired() as (conn, peer), trio.open_nursery() as nursery:

        async def answer() -> None:
            await peer.send(BytesMessage(b"crossing"))  # sent before the peer saw our close
            close = await peer.read_until(CloseConnection)
            assert isinstance(close, CloseConnection)
            await peer.send(close.response())

        nursery.start_soon(answer)
        await conn.aclose(CloseCode.GOING_AWAY, "bye")
        with pytest.raises(ConnectionClosed) as info:
            await conn.receive()
        assert (info.value.code, info.value.reason, info.value.local) == (
            CloseCode.GOING_AWAY,
            "bye",
            True,
        )
        await conn.aclose()  # idempotent


async def test_close_wakes_a_pending_receive() -> None:
    async with wired() as (conn, peer), trio.open_nursery() as nursery:
        errors: list[ConnectionClosed] = []

        async def receive() -> None:
            with pytest.raises(ConnectionClosed) as info:
                await conn.receive()
            errors.append(info.value)

        async def answer() -> None:
            close = await peer.read_until(CloseConnection)
            assert isinstance(close, CloseConnection)
            await peer.send(close.response())

        nursery.start_soon(receive)
        nursery.start_soon(answer)
        await trio.testing.wait_all_tasks_blocked()
        await conn.aclose(CloseCode.GOING_AWAY, "shutting down")
    assert [(e.code, e.local) for e in errors] == [(CloseCode.GOING_AWAY, True)]


async def test_close_gives_up_on_a_silent_peer(autojump_clock: Any) -> None:
    async with wired(close_timeout=2.0) as (conn, _peer):
        start = trio.current_time()
        await conn.aclose()
        assert trio.current_time() - start == pytest.approx(2.0)


async def test_only_one_task_receives() -> None:
    async with wired() as (conn, peer), trio.open_nursery() as nursery:
        nursery.start_soon(conn.receive)
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(trio.BusyResourceError):
            await conn.receive()
        await peer.send(BytesMessage(b"for the first one"))


async def test_sends_never_interleave() -> None:
    async with wired() as (conn, peer), trio.open_nursery() as nursery:
        frames = [bytes([i]) * (i * 7) for i in range(1, 60)]
        for frame in frames:
            nursery.start_soon(conn.send, frame)
        got = await read_messages(peer, len(frames))
    assert sorted(got) == sorted(frames)


# ---------------------------------------------------------------------- send_nowait


@asynccontextmanager
async def socket_pair(
    sndbuf: int | None = None,
) -> AsyncIterator[tuple[_WebSocketConnection, Peer]]:
    a, b = trio.socket.socketpair()
    if sndbuf is not None:
        a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
    ours, theirs = trio.SocketStream(a), trio.SocketStream(b)
    async with ours, theirs:
        conn = _WebSocketConnection(ours, Protocol(ConnectionType.SERVER), "peer", 1 << 22, 1.0)
        yield conn, Peer(theirs)


async def test_send_nowait_writes_a_frame_at_once() -> None:
    async with socket_pair() as (conn, peer):
        assert conn.send_nowait(b"first")
        assert not conn.backlogged
        await conn.send(b"second")
        assert await read_messages(peer, 2) == [b"first", b"second"]


async def test_send_nowait_holds_back_what_the_socket_did_not_take() -> None:
    async with socket_pair(sndbuf=4096) as (conn, peer):
        big = bytes(range(256)) * 4096  # 1 MiB: more than the socket takes at once
        assert conn.send_nowait(big)
        assert conn.backlogged
        assert not conn.send_nowait(b"after")  # nothing may jump the rest
        async with trio.open_nursery() as nursery:
            nursery.start_soon(conn.send, b"after")  # writes the rest first
            got = await read_messages(peer, 2)
        assert got == [big, b"after"]
        assert not conn.backlogged
        assert conn.send_nowait(b"again")
        await conn.flush()  # nothing held: a checkpoint only
        assert (await read_messages(peer, 3))[2] == b"again"


async def test_send_nowait_steps_aside_while_a_send_is_in_flight() -> None:
    async with socket_pair(sndbuf=4096) as (conn, peer), trio.open_nursery() as nursery:
        big = b"z" * (1 << 20)
        nursery.start_soon(conn.send, big)
        await trio.testing.wait_all_tasks_blocked()  # blocked: the peer does not read yet
        assert not conn.send_nowait(b"small")
        assert await read_messages(peer, 1) == [big]


async def test_send_nowait_refuses_without_a_socket_or_over_the_limit() -> None:
    async with wired() as (conn, _peer):
        assert not conn.send_nowait(b"in-memory stream: no socket to write to")
    async with socket_pair() as (conn, _peer):
        conn._max_frame_size = 10
        assert not conn.send_nowait(b"x" * 11)
        await conn.aclose()
        assert not conn.send_nowait(b"closed")


@pytest.mark.parametrize("chunk", [1, 3, 7, 64, 100_000])
async def test_frames_split_anywhere_across_reads_arrive_whole_and_in_order(chunk: int) -> None:
    async with wired() as (conn, peer):
        payloads = [b"a", b"", b"x" * 200, b"y" * 1000, b"z" * 125, b"w" * 126]  # MAX: 1024
        wire = b"".join(
            peer.protocol.send(event)
            for event in (
                BytesMessage(payloads[0]),
                BytesMessage(payloads[1]),
                Ping(b"ping"),
                BytesMessage(payloads[2]),
                BytesMessage(payloads[3]),
                BytesMessage(b"frag", message_finished=False),
                BytesMessage(b"ment", message_finished=True),
                BytesMessage(payloads[4]),
                BytesMessage(payloads[5]),
            )
        )
        for offset in range(0, len(wire), chunk):
            await peer.stream.send_all(wire[offset : offset + chunk])
        received = [await conn.receive() for _ in range(len(payloads) + 1)]
        assert received == [*payloads[:4], b"fragment", *payloads[4:]]
        pong = await peer.read_until(Pong)
        assert isinstance(pong, Pong) and pong.payload == b"ping"


async def test_an_unmasked_frame_from_a_client_is_a_protocol_error() -> None:
    async with wired() as (conn, peer):
        await peer.stream.send_all(b"\x82\x02hi")  # a client must mask its frames
        with pytest.raises(ConnectionClosed) as info:
            await conn.receive()
        assert info.value.code == CloseCode.PROTOCOL_ERROR and not info.value.local
