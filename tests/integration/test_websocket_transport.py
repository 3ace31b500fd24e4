"""WebSocketTransport over real loopback sockets (plain ``ws://``; TLS is in test_tls.py)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import pytest
import trio
import trio_websocket

from casty_trio import NodeAddress
from casty_trio.remote._transport import CloseCode, Connection, ConnectionClosed, TransportError
from casty_trio.remote._websocket import WebSocketTransport

LOCAL = "127.0.0.1"
BOUND = 10  # seconds: generous upper bound for any network wait on loopback

Handler = Callable[[Connection], Awaitable[None]]


async def start(
    nursery: trio.Nursery, transport: WebSocketTransport, handler: Handler
) -> NodeAddress:
    address: NodeAddress = await nursery.start(transport.serve, handler)
    return address


async def echo(conn: Connection) -> None:
    while True:
        try:
            frame = await conn.receive()
        except ConnectionClosed:
            return
        await conn.send(frame)


class Outcome:
    """What a server handler observed, with an event to wait for it."""

    def __init__(self) -> None:
        self.done = trio.Event()
        self.frames: list[bytes] = []
        self.closed: ConnectionClosed | None = None
        self.peer = ""

    async def record(self, conn: Connection) -> None:
        """Receive until the connection closes, then report."""
        self.peer = conn.peer
        try:
            while True:
                self.frames.append(await conn.receive())
        except ConnectionClosed as exc:
            self.closed = exc
        finally:
            self.done.set()


async def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    listeners = await trio.open_tcp_listeners(0, host=LOCAL)
    port: int = listeners[0].socket.getsockname()[1]
    for listener in listeners:
        await listener.aclose()
    return port


async def test_port_zero_reports_the_real_port(nursery: trio.Nursery) -> None:
    transport = WebSocketTransport(LOCAL, 0)
    with trio.fail_after(BOUND):
        address = await start(nursery, transport, echo)
        assert address.host == LOCAL
        assert address.port > 0
        async with transport.open_connection(address) as conn:
            assert conn.peer == str(address)
            await conn.send(b"hello")
            assert await conn.receive() == b"hello"


async def test_advertised_host_differs_from_bind_host(nursery: trio.Nursery) -> None:
    server = WebSocketTransport("localhost", 0, bind_host=LOCAL)
    with trio.fail_after(BOUND):
        address = await start(nursery, server, echo)
        assert address.host == "localhost"
        async with WebSocketTransport(LOCAL, 0).open_connection(address) as conn:
            await conn.send(b"x")
            assert await conn.receive() == b"x"


async def test_frames_travel_both_ways_whole_and_in_order(nursery: trio.Nursery) -> None:
    transport = WebSocketTransport(LOCAL, 0)
    frames = [b"", b"a", bytes(range(256)) * 4, b"\x00" * 70_000, b"z" * (1024 * 1024)]
    frames += [i.to_bytes(4, "big") for i in range(200)]
    with trio.fail_after(BOUND):
        address = await start(nursery, transport, echo)
        async with transport.open_connection(address) as conn, trio.open_nursery() as senders:
            senders.start_soon(_send_all, conn, frames)
            received = [await conn.receive() for _ in frames]
    assert received == frames


async def _send_all(conn: Connection, frames: list[bytes]) -> None:
    for frame in frames:
        await conn.send(frame)


async def test_server_speaks_first_and_sees_the_client_address(nursery: trio.Nursery) -> None:
    transport = WebSocketTransport(LOCAL, 0)
    peers: list[str] = []

    async def greet(conn: Connection) -> None:
        peers.append(conn.peer)
        await conn.send(b"welcome")
        # Not in the protocol's type, but a bytearray from a reused buffer is accepted.
        await conn.send(bytearray(b"bytearray frames are sent as bytes"))  # type: ignore[arg-type]

    with trio.fail_after(BOUND):
        address = await start(nursery, transport, greet)
        async with transport.open_connection(address) as conn:
            assert await conn.receive() == b"welcome"
            assert await conn.receive() == b"bytearray frames are sent as bytes"
            # The handler returned: the server closed the connection normally.
            with pytest.raises(ConnectionClosed) as info:
                await conn.receive()
    assert (info.value.code, info.value.local) == (CloseCode.NORMAL, False)
    assert peers[0].startswith(f"{LOCAL}:")


async def test_many_connections_at_once(nursery: trio.Nursery) -> None:
    transport = WebSocketTransport(LOCAL, 0)
    results: dict[int, bytes] = {}

    async def client(address: NodeAddress, i: int) -> None:
        async with transport.open_connection(address) as conn:
            await conn.send(b"client %d" % i)
            results[i] = await conn.receive()

    with trio.fail_after(BOUND):
        address = await start(nursery, transport, echo)
        async with trio.open_nursery() as clients:
            for i in range(10):
                clients.start_soon(client, address, i)
    assert results == {i: b"client %d" % i for i in range(10)}


async def test_client_close_code_and_reason_reach_the_server(nursery: trio.Nursery) -> None:
    transport = WebSocketTransport(LOCAL, 0)
    seen = Outcome()
    with trio.fail_after(BOUND):
        address = await start(nursery, transport, seen.record)
        async with transport.open_connection(address) as conn:
            await conn.send(b"one")
            await conn.aclose(CloseCode.WRONG_SYSTEM, "expected system 'bank'")
            await conn.aclose()  # idempotent
            for call in (conn.receive(), conn.send(b"late")):
                with pytest.raises(ConnectionClosed) as info:
                    await call
                assert info.value.code == CloseCode.WRONG_SYSTEM
                assert info.value.reason == "expected system 'bank'"
                assert info.value.local is True
        await seen.done.wait()
    assert seen.frames == [b"one"]
    assert seen.closed is not None
    assert (seen.closed.code, seen.closed.reason) == (
        CloseCode.WRONG_SYSTEM,
        "expected system 'bank'",
    )
    assert seen.closed.local is False


async def test_server_close_code_and_reason_reach_the_client(nursery: trio.Nursery) -> None:
    transport = WebSocketTransport(LOCAL, 0)
    after_close: list[ConnectionClosed] = []
    refused = trio.Event()

    async def refuse(conn: Connection) -> None:
        try:
            await conn.aclose(CloseCode.DUPLICATE_LINK, "already linked")
            try:
                await conn.send(b"too late")
            except ConnectionClosed as exc:
                after_close.append(exc)
        finally:
            refused.set()

    with trio.fail_after(BOUND):
        address = await start(nursery, transport, refuse)
        async with transport.open_connection(address) as conn:
            with pytest.raises(ConnectionClosed) as info:
                await conn.receive()
            with pytest.raises(ConnectionClosed):
                await conn.send(b"after the peer closed")
        # The server's side may still be finishing its close handshake: wait for it.
        await refused.wait()
    assert (info.value.code, info.value.reason, info.value.local) == (
        CloseCode.DUPLICATE_LINK,
        "already linked",
        False,
    )
    assert [(e.code, e.local) for e in after_close] == [(CloseCode.DUPLICATE_LINK, True)]


async def test_local_close_wakes_a_pending_receive(nursery: trio.Nursery) -> None:
    transport = WebSocketTransport(LOCAL, 0)
    with trio.fail_after(BOUND):
        address = await start(nursery, transport, echo)
        async with transport.open_connection(address) as conn:
            errors: list[ConnectionClosed] = []

            async def receive() -> None:
                try:
                    await conn.receive()
                except ConnectionClosed as exc:
                    errors.append(exc)

            async with trio.open_nursery() as inner:
                inner.start_soon(receive)
                await trio.testing.wait_all_tasks_blocked()
                await conn.aclose(CloseCode.GOING_AWAY, "shutting down")
    assert [(e.code, e.local) for e in errors] == [(CloseCode.GOING_AWAY, True)]


async def test_cancelled_client_is_seen_as_connection_lost(nursery: trio.Nursery) -> None:
    transport = WebSocketTransport(LOCAL, 0)
    seen = Outcome()
    with trio.fail_after(BOUND):
        address = await start(nursery, transport, seen.record)
        with trio.CancelScope() as scope:
            async with transport.open_connection(address) as conn:
                await conn.send(b"bye")
                scope.cancel()
                await trio.sleep_forever()
        await seen.done.wait()
    assert seen.frames == [b"bye"]
    assert seen.closed is not None
    assert (seen.closed.code, seen.closed.local) == (1006, False)


async def test_oversized_frame_is_refused_by_the_sender(nursery: trio.Nursery) -> None:
    server = WebSocketTransport(LOCAL, 0)
    client = WebSocketTransport(LOCAL, 0, max_frame_size=1024)
    seen = Outcome()
    with trio.fail_after(BOUND):
        address = await start(nursery, server, seen.record)
        async with client.open_connection(address) as conn:
            await conn.send(b"x" * 1024)  # exactly the limit is fine
            with pytest.raises(ConnectionClosed) as info:
                await conn.send(b"x" * 1025)
            with pytest.raises(ConnectionClosed):
                await conn.send(b"x" * 2000)  # stays closed
        await seen.done.wait()
    assert (info.value.code, info.value.local) == (CloseCode.TOO_BIG, True)
    assert "1025 bytes" in info.value.reason
    assert seen.frames == [b"x" * 1024]
    assert seen.closed is not None
    assert (seen.closed.code, seen.closed.local) == (CloseCode.TOO_BIG, False)


async def test_oversized_frame_is_refused_by_the_receiver(nursery: trio.Nursery) -> None:
    server = WebSocketTransport(LOCAL, 0, max_frame_size=1024)
    client = WebSocketTransport(LOCAL, 0)
    seen = Outcome()
    with trio.fail_after(BOUND):
        address = await start(nursery, server, seen.record)
        async with client.open_connection(address) as conn:
            await conn.send(b"small")
            await conn.send(b"x" * 5000)
            with pytest.raises(ConnectionClosed) as info:
                await conn.receive()
        await seen.done.wait()
    assert (info.value.code, info.value.local) == (CloseCode.TOO_BIG, False)
    assert seen.frames == [b"small"]
    assert seen.closed is not None
    assert (seen.closed.code, seen.closed.local) == (CloseCode.TOO_BIG, False)


async def test_text_message_is_a_protocol_error(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    seen = Outcome()
    with trio.fail_after(BOUND):
        address = await start(nursery, WebSocketTransport(LOCAL, 0), seen.record)
        # A bare trio-websocket client on a stream we own: open_websocket() leaves its socket
        # open when the server closes first, which filterwarnings=error would flag.
        stream = await trio.open_tcp_stream(LOCAL, address.port)
        async with stream, trio.open_nursery() as reader:
            ws = await trio_websocket.wrap_client_stream(reader, stream, LOCAL, "/casty")
            await ws.send_message("text is not a frame")
            with pytest.raises(trio_websocket.ConnectionClosed) as info:
                await ws.get_message()
            reader.cancel_scope.cancel()
        await seen.done.wait()
    assert info.value.reason is not None
    assert info.value.reason.code == CloseCode.PROTOCOL_ERROR
    assert seen.closed is not None
    assert (seen.closed.code, seen.closed.local) == (CloseCode.PROTOCOL_ERROR, False)
    assert "text message" in caplog.text


async def test_other_resource_paths_are_refused(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    seen = Outcome()
    upgrade = (
        b"GET /other HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\n\r\n"
    )
    response = b""
    with trio.fail_after(BOUND):
        address = await start(nursery, WebSocketTransport(LOCAL, 0), seen.record)
        async with await trio.open_tcp_stream(LOCAL, address.port) as stream:
            await stream.send_all(upgrade)
            while chunk := await stream.receive_some():
                response += chunk
    assert response.startswith(b"HTTP/1.1 404")
    assert not seen.done.is_set()
    assert "'/other'" in caplog.text


async def test_dialing_a_closed_port_raises_transport_error() -> None:
    port = await free_port()
    with trio.fail_after(BOUND), pytest.raises(TransportError) as info:
        async with WebSocketTransport(LOCAL, 0).open_connection(NodeAddress(LOCAL, port)):
            pass  # pragma: no cover
    assert f"{LOCAL}:{port}" in str(info.value)
    assert isinstance(info.value.__cause__, OSError)
    assert not isinstance(info.value, ConnectionClosed)


async def test_dialing_an_unknown_host_raises_transport_error() -> None:
    address = NodeAddress("no-such-host.invalid", 25520)
    with (
        trio.fail_after(BOUND),
        pytest.raises(TransportError, match=r"no-such-host\.invalid:25520"),
    ):
        async with WebSocketTransport(LOCAL, 0).open_connection(address):
            pass  # pragma: no cover


async def test_rejected_upgrade_raises_transport_error(nursery: trio.Nursery) -> None:
    async def reject(request: trio_websocket.WebSocketRequest) -> None:
        await request.reject(403, body=b"go away")

    with trio.fail_after(BOUND):
        server = await nursery.start(trio_websocket.serve_websocket, reject, LOCAL, 0, None)
        address = NodeAddress(LOCAL, server.port)
        with pytest.raises(TransportError) as info:
            async with WebSocketTransport(LOCAL, 0).open_connection(address):
                pass  # pragma: no cover
    assert str(address) in str(info.value)
    assert "403" in str(info.value)
    assert isinstance(info.value.__cause__, trio_websocket.ConnectionRejected)


async def test_silent_server_times_out_the_handshake(nursery: trio.Nursery) -> None:
    accepted: list[trio.SocketStream] = []

    async def silent(stream: trio.SocketStream) -> None:
        accepted.append(stream)
        await trio.sleep_forever()

    listeners = await nursery.start(trio.serve_tcp, silent, 0)
    port = listeners[0].socket.getsockname()[1]
    transport = WebSocketTransport(LOCAL, 0, handshake_timeout=0.2)
    with trio.fail_after(BOUND), pytest.raises(TransportError, match="timed out") as info:
        async with transport.open_connection(NodeAddress(LOCAL, port)):
            pass  # pragma: no cover
    assert f"{LOCAL}:{port}" in str(info.value)


async def test_server_hanging_up_fails_the_dial_fast(nursery: trio.Nursery) -> None:
    async def hang_up(stream: trio.SocketStream) -> None:
        await stream.aclose()

    listeners = await nursery.start(trio.serve_tcp, hang_up, 0)
    port = listeners[0].socket.getsockname()[1]
    transport = WebSocketTransport(LOCAL, 0, handshake_timeout=BOUND * 2)
    with trio.fail_after(BOUND), pytest.raises(TransportError, match="failed") as info:
        async with transport.open_connection(NodeAddress(LOCAL, port)):
            pass  # pragma: no cover
    assert f"{LOCAL}:{port}" in str(info.value)


async def test_silent_client_is_dropped_and_logged(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    seen = Outcome()
    transport = WebSocketTransport(LOCAL, 0, handshake_timeout=0.2)
    with trio.fail_after(BOUND):
        address = await start(nursery, transport, seen.record)
        stream = await trio.open_tcp_stream(LOCAL, address.port)
        async with stream:
            assert await stream.receive_some() == b""  # the server hung up
    assert not seen.done.is_set()
    assert any(
        r.levelno == logging.WARNING and "timed out" in r.getMessage() for r in caplog.records
    )


async def test_errors_in_the_block_propagate_unwrapped(nursery: trio.Nursery) -> None:
    transport = WebSocketTransport(LOCAL, 0)
    with trio.fail_after(BOUND):
        address = await start(nursery, transport, echo)
        with pytest.raises(KeyError, match="mine"):
            async with transport.open_connection(address):
                raise KeyError("mine")


async def test_transport_errors_in_a_handler_end_only_that_connection(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    transport = WebSocketTransport(LOCAL, 0)

    async def strict(conn: Connection) -> None:
        await conn.receive()  # raises ConnectionClosed when the client leaves
        await conn.send(b"ok")

    caplog.set_level(logging.INFO, logger="casty_trio.remote")
    with trio.fail_after(BOUND):
        address = await start(nursery, transport, strict)
        async with transport.open_connection(address):
            pass  # leaves at once: the handler's receive raises ConnectionClosed
        async with transport.open_connection(address) as conn:  # the server still serves
            await conn.send(b"hi")
            assert await conn.receive() == b"ok"
    assert "ended" in caplog.text


async def test_listening_on_a_busy_port_raises_transport_error(nursery: trio.Nursery) -> None:
    with trio.fail_after(BOUND):
        address = await start(nursery, WebSocketTransport(LOCAL, 0), echo)
        with pytest.raises(TransportError, match=f"{LOCAL}:{address.port}"):
            await WebSocketTransport(LOCAL, address.port).serve(echo)


def test_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="max_frame_size"):
        WebSocketTransport(LOCAL, 0, max_frame_size=0)
    with pytest.raises(ValueError, match="port"):
        WebSocketTransport(LOCAL, 70000)
    with pytest.raises(ValueError, match="handshake_timeout"):
        WebSocketTransport(LOCAL, 0, handshake_timeout=0)
    with pytest.raises(ValueError, match="connect_timeout"):
        WebSocketTransport(LOCAL, 0, connect_timeout=-1)
    assert (
        repr(WebSocketTransport(LOCAL, 25520)) == "WebSocketTransport(ws://127.0.0.1:25520/casty)"
    )
