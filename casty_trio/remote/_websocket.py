"""The production transport: frames as binary WebSocket messages over TCP, optionally TLS.

Built on trio-websocket's stream-level API (:func:`trio_websocket.wrap_server_stream`,
:func:`trio_websocket.wrap_client_stream`) rather than ``serve_websocket``/``open_websocket``
because this module does the TCP and TLS steps itself. That buys three things the high-level
helpers do not give:

* a TLS or WebSocket handshake that fails ends at once with the real reason (for instance a
  server refusing a client certificate under TLS 1.3, which the client only learns after its own
  handshake finished), instead of waiting out a timeout;
* every failure is reported as a :class:`~casty_trio.remote.TransportError` naming the peer, and
  failures on the accepting side are logged and never stop the listener;
* the dialing block never wraps the caller's exceptions in an :class:`ExceptionGroup`.

The wire is plain RFC 6455 on the resource path ``/casty``: any WebSocket client may connect (only
binary messages are accepted), and a connection to another path is refused with HTTP 404.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING, NoReturn, TypeVar

import trio
import trio_websocket

from .._core import NodeAddress
from ..tls import TlsConfig
from ._transport import CloseCode, Connection, ConnectionClosed, ConnectionHandler, TransportError

if TYPE_CHECKING:
    from ._transport import Transport

__all__ = ["WebSocketTransport"]

_log = logging.getLogger("casty_trio.remote")

T = TypeVar("T")

_RESOURCE = "/casty"
# trio-websocket reads 4 KiB per receive by default; a batched frame is often far larger.
_RECEIVE_BUFFER = 64 * 1024
# Frames the reader task may hold before it stops reading the socket (back-pressure).
_MESSAGE_QUEUE = 4
_BROKEN = (trio.BrokenResourceError, trio.ClosedResourceError)
_HANGUP = "the peer closed the connection"
_ABNORMAL = 1006  # WebSocket "closed without a close frame"; never sent on the wire


class WebSocketTransport:
    """A :class:`~casty_trio.remote.Transport` over WebSocket (``ws://``, or ``wss://`` with TLS).

    One object serves a node's listener and dials its peers; it holds only settings, so one
    transport may serve and dial from several tasks at once. Frames travel as binary WebSocket
    messages on the resource path ``/casty``.

    Frame size: a frame longer than ``max_frame_size`` is never sent. :meth:`Connection.send
    <casty_trio.remote.Connection.send>` closes the connection with
    :attr:`CloseCode.TOO_BIG <casty_trio.remote.CloseCode.TOO_BIG>` (1009) and raises
    :class:`~casty_trio.remote.ConnectionClosed` (``local=True``) — the same behaviour as the
    simulated network. A frame longer than ``max_frame_size`` that arrives from a peer closes the
    connection with 1009 too; the receiving side then sees ``ConnectionClosed(1009, ...,
    local=False)``. Text messages are a protocol violation: the connection is closed with
    :attr:`CloseCode.PROTOCOL_ERROR <casty_trio.remote.CloseCode.PROTOCOL_ERROR>` (1002).

    ``ConnectionClosed.local`` is True only after this side called ``aclose()`` (or refused an
    oversized frame); closes caused by the peer, the network or a peer's protocol violation are
    ``local=False`` ("it broke").

    Args:
        host: Host name or IP address other nodes dial to reach this node; reported (with the
            real port) by :meth:`serve`. With TLS, this node's certificate must name it.
        port: TCP port to listen on; ``0`` picks a free port.
        bind_host: Interface to listen on (``"0.0.0.0"``, ``"::"``, an address, or ``""`` for
            every interface). ``None`` binds ``host``.
        tls: Mutual TLS settings, or ``None`` for plain TCP.
        max_frame_size: Largest frame, in bytes, sent or accepted.
        connect_timeout: Seconds a dial may take to establish TCP.
        handshake_timeout: Seconds for each of the TLS and WebSocket handshakes, on both sides,
            and for the closing handshake of :meth:`Connection.aclose`.

    Raises:
        ValueError: A size or timeout is not positive, or ``port`` is out of range.

    Examples:
        >>> async def main() -> None:                                    # doctest: +SKIP
        ...     transport = WebSocketTransport("127.0.0.1", 0)
        ...
        ...     async def echo(conn: Connection) -> None:
        ...         while True:
        ...             await conn.send(await conn.receive())
        ...
        ...     async with trio.open_nursery() as nursery:
        ...         address = await nursery.start(transport.serve, echo)
        ...         async with transport.open_connection(address) as conn:
        ...             await conn.send(b"ping")
        ...             assert await conn.receive() == b"ping"
        ...         nursery.cancel_scope.cancel()
    """

    __slots__ = (
        "_bind_host",
        "_connect_timeout",
        "_handshake_timeout",
        "_host",
        "_max_frame_size",
        "_port",
        "_tls",
    )

    def __init__(
        self,
        host: str,
        port: int,
        *,
        bind_host: str | None = None,
        tls: TlsConfig | None = None,
        max_frame_size: int = 8 * 1024 * 1024,
        connect_timeout: float = 5.0,
        handshake_timeout: float = 5.0,
    ) -> None:
        if not 0 <= port <= 65535:
            raise ValueError(f"port must be in 0..65535, got {port}")
        if max_frame_size <= 0:
            raise ValueError(f"max_frame_size must be positive, got {max_frame_size}")
        if not connect_timeout > 0:
            raise ValueError(f"connect_timeout must be positive, got {connect_timeout}")
        if not handshake_timeout > 0:
            raise ValueError(f"handshake_timeout must be positive, got {handshake_timeout}")
        self._host = host
        self._port = port
        self._bind_host = host if bind_host is None else bind_host
        self._tls = tls
        self._max_frame_size = max_frame_size
        self._connect_timeout = connect_timeout
        self._handshake_timeout = handshake_timeout

    def __repr__(self) -> str:
        scheme = "wss" if self._tls is not None else "ws"
        return f"WebSocketTransport({scheme}://{self._host}:{self._port}{_RESOURCE})"

    # -- accepting -------------------------------------------------------------------------------

    async def serve(
        self,
        handler: ConnectionHandler,
        *,
        task_status: trio.TaskStatus[NodeAddress] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Listen and run ``handler(conn)`` in its own task for every accepted connection.

        Reports ``NodeAddress(host, actual_port)`` through ``task_status`` once listening, so
        ``address = await nursery.start(transport.serve, handler)`` resolves port 0. Runs until
        cancelled; cancelling it closes the listener and every connection it accepted (abruptly:
        peers see close code 1006).

        The connection is closed (code 1000) when ``handler`` returns. A connection whose TLS or
        WebSocket handshake fails or times out is dropped and logged at WARNING on the
        ``casty_trio.remote`` logger; a :class:`~casty_trio.remote.TransportError` (such as
        :class:`~casty_trio.remote.ConnectionClosed`) escaping ``handler`` is logged at INFO and
        ends only that connection. Any other exception from ``handler`` is a bug: it propagates
        and stops :meth:`serve`.

        Args:
            handler: Called with each accepted :class:`~casty_trio.remote.Connection`.
            task_status: Receives the :class:`~casty_trio.NodeAddress` others should dial.

        Raises:
            TransportError: The listening socket cannot be opened (address in use, unknown
                host, ...). The message names the address.

        Examples:
            >>> address = await nursery.start(transport.serve, handler)  # doctest: +SKIP
            >>> address.port > 0                                           # doctest: +SKIP
            True
        """
        where = _join(self._bind_host, self._port)
        try:
            listeners = await trio.open_tcp_listeners(self._port, host=self._bind_host or None)
        except OSError as exc:
            raise TransportError(f"cannot listen on {where}: {exc}") from exc
        port = listeners[0].socket.getsockname()[1]
        if len(listeners) > 1 and self._port == 0:
            # Port 0 on a name with several addresses gives each listener its own port: keep
            # the ones on the first port so the reported address reaches this node.
            kept = [lis for lis in listeners if lis.socket.getsockname()[1] == port]
            for extra in listeners:
                if extra not in kept:
                    await trio.aclose_forcefully(extra)
            listeners = kept
        address = NodeAddress(self._host, port)
        async with trio.open_nursery() as nursery:
            await nursery.start(
                partial(
                    trio.serve_listeners,
                    partial(self._handle_stream, handler),
                    listeners,
                    handler_nursery=nursery,
                )
            )
            _log.debug("listening on %s (reachable as %s)", _join(self._bind_host, port), address)
            task_status.started(address)

    async def _handle_stream(self, handler: ConnectionHandler, stream: trio.SocketStream) -> None:
        # trio.serve_listeners closes ``stream`` when this returns.
        peer = _peer_name(stream)
        accepted = False
        try:
            async with trio.open_nursery() as nursery:
                ws = await self._accept(nursery, stream, peer)
                if ws is None:
                    nursery.cancel_scope.cancel()
                    return
                accepted = True
                conn = _WebSocketConnection(ws, peer, self._max_frame_size, self._handshake_timeout)
                try:
                    await handler(conn)
                finally:
                    await conn.aclose()
                    nursery.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            exc = _sole(group)
            if isinstance(exc, TransportError):
                if accepted:
                    _log.info("connection from %s ended: %s", peer, exc)
                else:
                    _log.warning("refused a connection from %s: %s", peer, exc)
                return
            if exc is not None:
                _raise_unwrapped(exc)
            raise

    async def _accept(
        self, nursery: trio.Nursery, stream: trio.SocketStream, peer: str
    ) -> trio_websocket.WebSocketConnection | None:
        wire: trio.abc.Stream = stream
        if self._tls is not None:
            tls_stream = trio.SSLStream(
                stream, self._tls.server_context, server_side=True, https_compatible=True
            )
            await self._tls_handshake(tls_stream, peer)
            wire = tls_stream
        guard = _HandshakeGuard(wire)
        request = await self._guarded(
            guard,
            peer,
            partial(
                trio_websocket.wrap_server_stream,
                nursery,
                guard,
                message_queue_size=_MESSAGE_QUEUE,
                max_message_size=self._max_frame_size,
                receive_buffer_size=_RECEIVE_BUFFER,
            ),
        )
        if request.path != _RESOURCE:
            _log.warning(
                "refused a WebSocket connection from %s for path %r (expected %r)",
                peer,
                request.path,
                _RESOURCE,
            )
            await self._guarded(guard, peer, partial(request.reject, 404))
            return None
        return await self._guarded(guard, peer, request.accept)

    # -- dialing ---------------------------------------------------------------------------------

    @asynccontextmanager
    async def open_connection(self, address: NodeAddress) -> AsyncIterator[Connection]:
        """Dial ``address``: ``async with transport.open_connection(address) as conn: ...``.

        Entering connects TCP (within ``connect_timeout``), then runs the TLS handshake when
        configured and the WebSocket handshake (each within ``handshake_timeout``); all of it is
        a checkpoint. The connection's reader task lives in the block. Leaving the block closes
        the connection with code 1000 (waiting at most ``handshake_timeout`` for the peer's
        reply); leaving it by cancellation closes the socket abruptly (the peer sees 1006).
        Exceptions raised in the block propagate unchanged (never wrapped in a group).

        Args:
            address: The peer's listening address, as its :meth:`serve` reported it.

        Yields:
            The open :class:`~casty_trio.remote.Connection`; its ``peer`` is ``str(address)``.

        Raises:
            TransportError: The peer cannot be reached, a handshake failed or timed out (for
                example the peer's certificate is not trusted, or it refused ours), or the
                server refused the WebSocket upgrade. The message names ``address``.

        Examples:
            >>> async with transport.open_connection(NodeAddress("10.0.0.7", 25520)) as conn:
            ...     await conn.send(frame)                                 # doctest: +SKIP
        """
        peer = str(address)
        connected = False
        try:
            async with trio.open_nursery() as nursery:
                stream = await self._connect_tcp(address)
                try:
                    ws = await self._client_handshakes(nursery, stream, address)
                    connected = True
                    conn = _WebSocketConnection(
                        ws, peer, self._max_frame_size, self._handshake_timeout
                    )
                    try:
                        yield conn
                    finally:
                        await conn.aclose()
                finally:
                    await trio.aclose_forcefully(stream)
                    nursery.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            exc = _sole(group)
            if exc is None:
                raise
            if not connected and isinstance(exc, trio_websocket.HandshakeError):
                # Raised by trio-websocket's reader task when the server answers the upgrade
                # request with an HTTP error (ConnectionRejected).
                status = getattr(exc, "status_code", None)
                why = f"HTTP {status}" if status is not None else repr(exc)
                raise TransportError(
                    f"{self._scheme()}://{peer}{_RESOURCE} refused the WebSocket upgrade: {why}"
                ) from exc
            _raise_unwrapped(exc)

    async def _connect_tcp(self, address: NodeAddress) -> trio.SocketStream:
        try:
            with trio.fail_after(self._connect_timeout):
                return await trio.open_tcp_stream(address.host, address.port)
        except trio.TooSlowError:
            raise TransportError(
                f"connecting to {address} timed out after {self._connect_timeout}s"
            ) from None
        except OSError as exc:
            raise TransportError(f"cannot connect to {address}: {_os_reason(exc)}") from exc

    async def _client_handshakes(
        self, nursery: trio.Nursery, stream: trio.SocketStream, address: NodeAddress
    ) -> trio_websocket.WebSocketConnection:
        peer = str(address)
        wire: trio.abc.Stream = stream
        if self._tls is not None:
            tls_stream = trio.SSLStream(
                stream,
                self._tls.client_context,
                server_hostname=address.host,
                https_compatible=True,
            )
            await self._tls_handshake(tls_stream, peer)
            wire = tls_stream
            # Under TLS 1.3 a server refusing our certificate only hangs up after our side of
            # the TLS handshake completed, so it shows up here.
            guard = _HandshakeGuard(wire, hangup=f"{_HANGUP} (it may have refused our certificate)")
        else:
            guard = _HandshakeGuard(wire)
        return await self._guarded(
            guard,
            peer,
            partial(
                trio_websocket.wrap_client_stream,
                nursery,
                # Annotated as SocketStream | SSLStream, but only the trio.abc.Stream methods
                # are used (the server-side twin is annotated trio.abc.Stream).
                guard,  # type: ignore[arg-type]
                _join(address.host, address.port),
                _RESOURCE,
                message_queue_size=_MESSAGE_QUEUE,
                max_message_size=self._max_frame_size,
                receive_buffer_size=_RECEIVE_BUFFER,
            ),
        )

    # -- shared handshake helpers ----------------------------------------------------------------

    def _scheme(self) -> str:
        return "ws" if self._tls is None else "wss"

    async def _tls_handshake(self, stream: trio.SSLStream[trio.SocketStream], peer: str) -> None:
        try:
            with trio.fail_after(self._handshake_timeout):
                await stream.do_handshake()
        except trio.TooSlowError:
            raise TransportError(
                f"TLS handshake with {peer} timed out after {self._handshake_timeout}s"
            ) from None
        except _BROKEN as exc:
            raise TransportError(f"TLS handshake with {peer} failed: {_describe(exc)}") from exc

    async def _guarded(
        self, guard: _HandshakeGuard, peer: str, step: Callable[[], Awaitable[T]]
    ) -> T:
        """Run one WebSocket handshake step; fail fast if the stream breaks meanwhile.

        trio-websocket waits for handshake events that never come when the stream breaks
        during the handshake; the guard cancels the wait as soon as it sees the break.
        """
        with trio.move_on_after(self._handshake_timeout) as scope:
            guard.watch(scope)
            try:
                return await step()
            except trio_websocket.ConnectionClosed as exc:
                raise TransportError(
                    f"WebSocket handshake with {peer} failed: connection closed ({exc.reason})"
                ) from exc
            finally:
                guard.watch(None)
        # Only our own scope was cancelled here; if an enclosing one was too, let it win.
        await trio.lowlevel.checkpoint_if_cancelled()
        if guard.failure is not None:
            raise TransportError(
                f"WebSocket handshake with {peer} failed: {guard.failure}"
            ) from guard.error
        raise TransportError(
            f"WebSocket handshake with {peer} timed out after {self._handshake_timeout}s"
        )


class _WebSocketConnection:
    """:class:`~casty_trio.remote.Connection` over one trio-websocket connection.

    Every method is a checkpoint. Closing rules are described on :class:`WebSocketTransport`.
    """

    __slots__ = ("_close_timeout", "_closed", "_max_frame_size", "_ws", "peer")

    def __init__(
        self,
        ws: trio_websocket.WebSocketConnection,
        peer: str,
        max_frame_size: int,
        close_timeout: float,
    ) -> None:
        self._ws = ws
        self.peer = peer
        self._max_frame_size = max_frame_size
        self._close_timeout = close_timeout
        # Set once this side decided to close: (code, reason, local).
        self._closed: tuple[int, str, bool] | None = None

    def __repr__(self) -> str:
        return f"<WebSocket connection with {self.peer}>"

    async def send(self, frame: bytes) -> None:
        """Send one binary message; refuse (close with 1009) a frame over ``max_frame_size``."""
        if len(frame) > self._max_frame_size:
            if self._closed is None and self._ws.closed is None:
                reason = f"frame of {len(frame)} bytes exceeds max_frame_size"
                await self.aclose(CloseCode.TOO_BIG, reason)
                raise ConnectionClosed(CloseCode.TOO_BIG, reason, local=True)
            await trio.lowlevel.checkpoint()
            raise self._closed_error(self._ws.closed)
        if type(frame) is not bytes:
            frame = bytes(frame)  # bytearray / memoryview: trio-websocket wants bytes
        try:
            await self._ws.send_message(frame)
        except trio_websocket.ConnectionClosed as exc:
            raise self._closed_error(exc.reason) from exc

    async def receive(self) -> bytes:
        """Wait for the next binary message; a text message closes the connection (1002)."""
        try:
            message = await self._ws.get_message()
        except trio_websocket.ConnectionClosed as exc:
            raise self._closed_error(exc.reason) from exc
        if isinstance(message, str):
            reason = "text messages are not allowed"
            _log.warning("closing the connection with %s: it sent a text message", self.peer)
            await self._close(CloseCode.PROTOCOL_ERROR, reason, local=False)
            raise ConnectionClosed(CloseCode.PROTOCOL_ERROR, reason, local=False)
        return message

    async def aclose(self, code: int = CloseCode.NORMAL, reason: str = "") -> None:
        """Send a close frame and wait (at most the handshake timeout) for the peer's reply.

        Idempotent. Cancellation closes the socket without waiting. Reasons longer than
        123 UTF-8 bytes are truncated by the WebSocket protocol.
        """
        await self._close(code, reason, local=True)

    async def _close(self, code: int, reason: str, *, local: bool) -> None:
        if self._closed is None:
            self._closed = (code, reason, local)
        if self._ws.closed is not None:
            await trio.lowlevel.checkpoint()  # already closed or closing: nothing to send
            return
        # Bounded: a peer that never answers the close frame gets its socket closed.
        with trio.move_on_after(self._close_timeout):
            await self._ws.aclose(code, reason or None)

    def _closed_error(self, reason: trio_websocket.CloseReason | None) -> ConnectionClosed:
        if self._closed is not None:
            code, text, local = self._closed
            return ConnectionClosed(code, text, local=local)
        if reason is None or reason.code == _ABNORMAL:
            return ConnectionClosed(_ABNORMAL, "connection lost")
        return ConnectionClosed(reason.code, reason.reason or "")


class _HandshakeGuard(trio.abc.Stream):
    """A pass-through stream that cancels a handshake wait as soon as the stream breaks."""

    def __init__(self, inner: trio.abc.Stream, *, hangup: str = _HANGUP) -> None:
        self._inner = inner
        self._hangup = hangup
        self._scope: trio.CancelScope | None = None
        self.failure: str | None = None
        self.error: BaseException | None = None

    def watch(self, scope: trio.CancelScope | None) -> None:
        self._scope = scope

    def _broke(self, failure: str, error: BaseException | None) -> None:
        if self._scope is not None and self.failure is None:
            self.failure, self.error = failure, error
            self._scope.cancel()

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        try:
            await self._inner.send_all(data)
        except _BROKEN as exc:
            self._broke(_describe(exc), exc)
            raise

    async def wait_send_all_might_not_block(self) -> None:
        await self._inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        try:
            data = await self._inner.receive_some(max_bytes)
        except _BROKEN as exc:
            self._broke(_describe(exc), exc)
            raise
        if not data:
            self._broke(self._hangup, None)
        return data

    async def aclose(self) -> None:
        await self._inner.aclose()


def _describe(exc: BaseException) -> str:
    """The most telling text for a broken stream: the SSL or OS error behind it if any."""
    cause = exc.__cause__ or exc
    return str(cause) or type(cause).__name__


def _os_reason(exc: OSError) -> str:
    """Why a dial failed: trio reports every attempted address in a group behind ``exc``."""
    cause = exc.__cause__
    if isinstance(cause, BaseExceptionGroup):
        leaves = [
            e.strerror or str(e) if isinstance(e, OSError) else str(e) for e in cause.exceptions
        ]
        return "; ".join(dict.fromkeys(leaves))
    return str(exc)


def _join(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _peer_name(stream: trio.SocketStream) -> str:
    try:
        name = stream.socket.getpeername()
    except OSError:
        return "an unknown peer"
    if isinstance(name, tuple):
        return _join(str(name[0]), int(name[1]))
    return str(name)


def _sole(group: BaseExceptionGroup[BaseException]) -> BaseException | None:
    """The only exception of a nursery's group, or None when there are several."""
    if len(group.exceptions) == 1:
        return group.exceptions[0]
    return None


def _raise_unwrapped(exc: BaseException) -> NoReturn:
    """Re-raise ``exc`` taken out of a group without chaining the group as its context."""
    context = exc.__context__
    try:
        raise exc
    finally:
        exc.__context__ = context
        del exc, context


if TYPE_CHECKING:

    def _conforms(
        transport: WebSocketTransport, connection: _WebSocketConnection
    ) -> tuple[Transport, Connection]:
        """Checked by mypy only: the classes implement the transport protocols."""
        return transport, connection
