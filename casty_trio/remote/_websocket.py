"""The production transport: frames as binary WebSocket messages over TCP, optionally TLS.

The WebSocket protocol (RFC 6455) is spoken with wsproto, the sans-I/O protocol engine, right on
a trio stream that this module opens itself (TCP, then TLS when configured). A connection has
no task of its own: the task that calls :meth:`~casty_trio.remote.Connection.receive` reads the
socket and parses frames in place (answering pings and the peer's close frame as they come), and
the task that calls :meth:`~casty_trio.remote.Connection.send` writes. A message that arrives is
therefore handed to its reader without a hop through a reader task and a channel, which is one
scheduler pass per message fewer than a connection of trio-websocket.

The connections themselves (``WebSocketConnection``) live in ``_ws_connection.py``. On plain
TCP a connection can also write a frame without waiting at all (``send_nowait``): the peer link
uses it to send straight from a ``tell`` when nothing else is in flight (see ``_links.py``).

Doing the TCP, TLS and WebSocket steps here, rather than through a library's ``serve``/``open``
helpers, buys three more things:

* a TLS or WebSocket handshake that fails ends at once with the real reason (for instance a
  server refusing a client certificate under TLS 1.3, which the client only learns after its own
  handshake finished), instead of waiting out a timeout;
* every failure is reported as a :class:`~casty_trio.remote.TransportError` naming the peer, and
  failures on the accepting side are logged and never stop the listener;
* the dialing block never wraps the caller's exceptions in an :class:`ExceptionGroup`.

The wire is plain RFC 6455 on the resource path ``/casty``: any WebSocket client may connect (only
binary messages are accepted; ping, pong, fragmented messages and the closing handshake work as
the RFC says), and a connection to another path is refused with HTTP 404.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING

import trio
import trio_websocket
from wsproto.connection import ConnectionType
from wsproto.events import (
    AcceptConnection,
    Event,
    RejectConnection,
    Request,
)
from wsproto.handshake import H11Handshake
from wsproto.utilities import RemoteProtocolError

from .._core import NodeAddress
from ..tls import TlsConfig
from ._transport import Connection, ConnectionHandler, TransportError
from ._ws_connection import _BROKEN, _RECEIVE_BUFFER, fresh_protocol
from ._ws_connection import WebSocketConnection as _WebSocketConnection

if TYPE_CHECKING:
    from ._transport import SupportsSendNowait, Transport

__all__ = ["WebSocketTransport"]

_log = logging.getLogger("casty_trio.remote")

_RESOURCE = "/casty"
_HANGUP = "the peer closed the connection"


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
        try:
            conn = await self._accept(stream, peer)
        except TransportError as exc:
            _log.warning("refused a connection from %s: %s", peer, exc)
            return
        if conn is None:
            return
        try:
            await handler(conn)
        except TransportError as exc:
            _log.info("connection from %s ended: %s", peer, exc)
        finally:
            await conn.aclose()

    async def _accept(self, stream: trio.SocketStream, peer: str) -> _WebSocketConnection | None:
        wire: trio.abc.Stream = stream
        if self._tls is not None:
            tls_stream = trio.SSLStream(
                stream, self._tls.server_context, server_side=True, https_compatible=True
            )
            await self._tls_handshake(tls_stream, peer)
            wire = tls_stream
        handshake = H11Handshake(ConnectionType.SERVER)
        with trio.move_on_after(self._handshake_timeout):
            try:
                request = await _handshake_event(wire, handshake, _HANGUP)
                if not isinstance(request, Request):  # pragma: no cover - wsproto yields Requests
                    raise _HandshakeFailed(f"unexpected {type(request).__name__}")
                if request.target != _RESOURCE:
                    _log.warning(
                        "refused a WebSocket connection from %s for path %r (expected %r)",
                        peer,
                        request.target,
                        _RESOURCE,
                    )
                    await wire.send_all(handshake.send(RejectConnection(status_code=404)))
                    return None
                await wire.send_all(handshake.send(AcceptConnection()))
            except _HandshakeFailed as exc:
                if exc.answer is not None:
                    # The peer broke the protocol: tell it why (HTTP 400) if it still listens.
                    with trio.move_on_after(0), contextlib.suppress(*_BROKEN):
                        await wire.send_all(handshake.send(exc.answer))
                raise TransportError(f"WebSocket handshake with {peer} failed: {exc}") from (
                    exc.__cause__
                )
            except _BROKEN as exc:
                raise TransportError(
                    f"WebSocket handshake with {peer} failed: {_describe(exc)}"
                ) from exc
            protocol, buffered = fresh_protocol(handshake)
            return _WebSocketConnection(
                wire, protocol, peer, self._max_frame_size, self._handshake_timeout, buffered
            )
        await trio.lowlevel.checkpoint_if_cancelled()  # an enclosing scope's cancel wins
        raise TransportError(
            f"WebSocket handshake with {peer} timed out after {self._handshake_timeout}s"
        )

    # -- dialing ---------------------------------------------------------------------------------

    @asynccontextmanager
    async def open_connection(self, address: NodeAddress) -> AsyncIterator[Connection]:
        """Dial ``address``: ``async with transport.open_connection(address) as conn: ...``.

        Entering connects TCP (within ``connect_timeout``), then runs the TLS handshake when
        configured and the WebSocket handshake (each within ``handshake_timeout``); all of it is
        a checkpoint. The connection starts no task. Leaving the block closes the connection
        with code 1000 (waiting at most ``handshake_timeout`` for the peer's reply); leaving it
        by cancellation closes the socket abruptly (the peer sees 1006). Exceptions raised in
        the block propagate unchanged (never wrapped in a group).

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
        stream = await self._connect_tcp(address)
        try:
            conn = await self._client_handshakes(stream, address)
            try:
                yield conn
            finally:
                await conn.aclose()
        finally:
            await trio.aclose_forcefully(stream)

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
        self, stream: trio.SocketStream, address: NodeAddress
    ) -> _WebSocketConnection:
        peer = str(address)
        wire: trio.abc.Stream = stream
        hangup = _HANGUP
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
            hangup = f"{_HANGUP} (it may have refused our certificate)"
        handshake = H11Handshake(ConnectionType.CLIENT)
        with trio.move_on_after(self._handshake_timeout):
            try:
                host = _join(address.host, address.port)
                await wire.send_all(handshake.send(Request(host=host, target=_RESOURCE)))
                answer = await _handshake_event(wire, handshake, hangup)
            except _HandshakeFailed as exc:
                raise TransportError(f"WebSocket handshake with {peer} failed: {exc}") from (
                    exc.__cause__
                )
            except _BROKEN as exc:
                raise TransportError(
                    f"WebSocket handshake with {peer} failed: {_describe(exc)}"
                ) from exc
            if isinstance(answer, RejectConnection):
                status = answer.status_code
                raise TransportError(
                    f"{self._scheme()}://{peer}{_RESOURCE} refused the WebSocket upgrade: "
                    f"HTTP {status}"
                ) from trio_websocket.ConnectionRejected(status, tuple(answer.headers), None)
            if not isinstance(answer, AcceptConnection) or handshake.connection is None:
                raise TransportError(  # pragma: no cover - wsproto yields accept or reject
                    f"WebSocket handshake with {peer} failed: unexpected {answer!r}"
                )
            protocol, buffered = fresh_protocol(handshake)
            return _WebSocketConnection(
                wire, protocol, peer, self._max_frame_size, self._handshake_timeout, buffered
            )
        await trio.lowlevel.checkpoint_if_cancelled()  # an enclosing scope's cancel wins
        raise TransportError(
            f"WebSocket handshake with {peer} timed out after {self._handshake_timeout}s"
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


class _HandshakeFailed(Exception):
    """The opening handshake cannot go on; ``answer`` is what to tell the peer, if anything."""

    def __init__(self, reason: str, answer: Event | None = None) -> None:
        super().__init__(reason)
        self.answer = answer


async def _handshake_event(wire: trio.abc.Stream, handshake: H11Handshake, hangup: str) -> Event:
    """The next event of the opening handshake, reading ``wire`` as long as needed.

    A checkpoint when it reads. Raises :class:`_HandshakeFailed` when the peer hangs up
    (``hangup`` says how to put it) or breaks the HTTP protocol, and what the stream raises
    when it breaks.
    """
    while True:
        for event in handshake.events():
            return event
        data = await wire.receive_some(_RECEIVE_BUFFER)
        if not data:
            raise _HandshakeFailed(hangup)
        try:
            handshake.receive_data(bytes(data))
        except RemoteProtocolError as exc:
            raise _HandshakeFailed(f"bad upgrade request ({exc})", exc.event_hint) from exc


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


if TYPE_CHECKING:

    def _conforms(
        transport: WebSocketTransport, connection: _WebSocketConnection
    ) -> tuple[Transport, Connection, SupportsSendNowait]:
        """Checked by mypy only: the classes implement the transport protocols."""
        return transport, connection, connection
