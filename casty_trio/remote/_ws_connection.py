"""One WebSocket connection of the production transport, driven by its callers' tasks.

:class:`WebSocketConnection` speaks RFC 6455 with wsproto on a trio stream that
``_websocket.py`` opened and upgraded: ``receive()`` reads and parses frames in the calling task
(answering pings and the peer's close frame as they come), ``send()`` writes, and on plain TCP
``send_nowait()`` writes a frame from synchronous code when nothing else is in flight.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections import deque

import trio
from wsproto.connection import Connection as _Protocol
from wsproto.connection import ConnectionState, ConnectionType
from wsproto.events import (
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    TextMessage,
)
from wsproto.handshake import H11Handshake
from wsproto.utilities import LocalProtocolError

from ._transport import CloseCode, ConnectionClosed
from ._ws_frames import FIN_BINARY, MASKED, binary_frame, frame_extent, unmask

__all__ = ["WebSocketConnection", "fresh_protocol"]

_log = logging.getLogger("casty_trio.remote")

# Bytes asked of the stream per read: a batched frame is often far larger than 4 KiB.
_RECEIVE_BUFFER = 64 * 1024
_BROKEN = (trio.BrokenResourceError, trio.ClosedResourceError)
_ABNORMAL = 1006  # WebSocket "closed without a close frame"; never sent on the wire
_OPEN = ConnectionState.OPEN
# The opcodes RFC 6455 defines: continuation, text, binary, close, ping, pong.
_OPCODES = frozenset((0x0, 0x1, 0x2, 0x8, 0x9, 0xA))
_CLOSED = ConnectionState.CLOSED
# Writing to a socket's file descriptor from synchronous code (send_nowait) needs write(2) on
# sockets, which Windows does not have; there every frame goes through the async send.
_DIRECT_WRITES = os.name == "posix"


class WebSocketConnection:
    """:class:`~casty_trio.remote.Connection` over one WebSocket, driven by its callers' tasks.

    :meth:`receive` reads the stream and parses frames in the calling task; :meth:`send` and
    :meth:`aclose` write in theirs. Writes never interleave (one writer at a time, in the order
    they asked); one task at a time may receive. Every async method is a checkpoint. Closing
    rules are described on :class:`WebSocketTransport`.

    Besides the :class:`~casty_trio.remote.Connection` protocol it implements
    ``SupportsSendNowait`` (see ``_transport.py``): :meth:`send_nowait` writes a frame from
    synchronous code when the socket takes it at once.
    """

    __slots__ = (
        "_client",
        "_close_timeout",
        "_closed",
        "_finished",
        "_idle",
        "_inbox",
        "_max_frame_size",
        "_parts",
        "_pending",
        "_protocol",
        "_receiving",
        "_rest",
        "_sending",
        "_size",
        "_socket",
        "_stream",
        "_unparsed",
        "_waiter",
        "peer",
    )

    def __init__(
        self,
        stream: trio.abc.Stream,
        protocol: _Protocol,
        peer: str,
        max_frame_size: int,
        close_timeout: float,
        buffered: bytes = b"",
    ) -> None:
        # ``protocol`` must hold no unparsed bytes: what the handshake read past its end comes
        # as ``buffered`` (see fresh_protocol).
        self._stream = stream
        self._protocol = protocol
        self._client = protocol.client  # a client masks the frames it sends
        self.peer = peer
        self._max_frame_size = max_frame_size
        self._close_timeout = close_timeout
        # The socket send_nowait writes to: plain TCP only (TLS needs the SSL object's state).
        self._socket = (
            stream.socket if _DIRECT_WRITES and isinstance(stream, trio.SocketStream) else None
        )
        # Set once the connection is closed or closing: (code, reason, local); every later call
        # raises ConnectionClosed from it.
        self._closed: tuple[int, str, bool] | None = None
        self._finished = False  # nothing more will be read: the peer's close, EOF or a failure
        self._inbox: deque[bytes] = deque()  # whole messages read but not yet received
        self._parts: list[bytes] = []  # the fragments of a message still arriving
        self._size = 0  # their total size
        self._pending = bytearray(buffered)  # the start of a frame not yet read whole
        self._unparsed = bool(buffered)  # the handshake read frames past its end
        self._receiving = False  # a task is reading the stream
        self._sending = False  # a task is writing the stream
        self._rest = b""  # the end of a frame send_nowait could not write at once
        self._idle: trio.Event | None = None  # set when the writing task is done
        self._waiter: trio.Event | None = None  # set when the reading task is done

    def __repr__(self) -> str:
        return f"<WebSocket connection with {self.peer}>"

    # -- sending ---------------------------------------------------------------------------------

    async def send(self, frame: bytes) -> None:
        """Send one binary message; refuse (close with 1009) a frame over ``max_frame_size``."""
        if len(frame) > self._max_frame_size:
            if self._closed is None:
                reason = f"frame of {len(frame)} bytes exceeds max_frame_size"
                await self._close(CloseCode.TOO_BIG, reason)
                raise ConnectionClosed(CloseCode.TOO_BIG, reason, local=True)
            await trio.lowlevel.checkpoint()
            raise self._error()
        if self._closed is not None:
            await trio.lowlevel.checkpoint()
            raise self._error()
        if type(frame) is not bytes:
            frame = bytes(frame)  # bytearray / memoryview
        await self._write(BytesMessage(frame))

    def send_nowait(self, frame: bytes) -> bool:
        """Write one binary message now, from synchronous code, if nothing stands in the way.

        Not a checkpoint; never blocks and never raises. Returns False, having written nothing,
        when the frame has to go through :meth:`send` instead: another task is writing, the
        connection is closed or uses TLS, the frame is over ``max_frame_size``, or the socket
        takes no byte right now. Returns True once the frame is on its way: written whole, or
        written in part with the rest held back (:attr:`backlogged`); held-back bytes go out
        first on the next :meth:`send`, :meth:`flush` or close.
        """
        sock = self._socket
        if (
            sock is None
            or self._sending
            or self._rest
            or self._closed is not None
            or len(frame) > self._max_frame_size
            or self._protocol.state is not _OPEN
        ):
            return False
        fd = sock.fileno()
        if fd < 0:  # the socket is closed: let send() report it
            return False
        data = binary_frame(frame, self._client)  # a data frame changes no protocol state
        try:
            sent = os.write(fd, data)
        except OSError:
            # Would block, or the connection broke: the async path waits, or reports the break.
            return False
        if sent < len(data):
            self._rest = data[sent:]
        return True

    @property
    def backlogged(self) -> bool:
        """Whether part of a frame written by :meth:`send_nowait` waits for :meth:`flush`."""
        return bool(self._rest)

    async def flush(self) -> None:
        """Write what :meth:`send_nowait` held back. A checkpoint.

        Raises:
            ConnectionClosed: The connection is closed or broke.
        """
        await self._write(None)

    async def _write(self, event: Event | None, data: bytes = b"") -> None:
        """Write ``data`` then ``event``'s bytes, after any bytes held back. A checkpoint.

        One task writes at a time; the others wait their turn. ``event``'s bytes are made only
        once it is this task's turn, so that nothing follows a close frame on the wire.
        """
        while self._sending:
            idle = self._idle
            if idle is None:
                idle = self._idle = trio.Event()
            await idle.wait()
        if event is not None:
            if type(event) is BytesMessage and self._protocol.state is _OPEN:
                # One whole binary message (the links' only kind): built here, not by wsproto.
                data += binary_frame(bytes(event.data), self._client)
            else:
                try:
                    data += self._protocol.send(event)
                except LocalProtocolError:  # a message after a close: closed meanwhile
                    await trio.lowlevel.checkpoint()
                    raise self._error() from None
        if self._rest:
            data = self._rest + data
            self._rest = b""
        if not data:
            await trio.lowlevel.checkpoint()
            return
        self._sending = True
        try:
            await self._stream.send_all(data)
        except _BROKEN as exc:
            self._lost()
            raise self._error() from exc
        finally:
            self._sending = False
            idle = self._idle
            if idle is not None:
                self._idle = None
                idle.set()

    # -- receiving -------------------------------------------------------------------------------

    async def receive(self) -> bytes:
        """Wait for the next binary message; a text message closes the connection (1002).

        Reads the stream in the calling task; pings are answered and the peer's close frame is
        echoed on the way. Messages that arrived before the peer closed are still returned;
        after this side closed, none are.

        Raises:
            ConnectionClosed: The connection is closed; see :class:`WebSocketTransport`.
            trio.BusyResourceError: Another task is receiving on this connection.
        """
        inbox = self._inbox
        closed = self._closed
        if inbox and (closed is None or not closed[2]):
            await trio.lowlevel.checkpoint()
            return inbox.popleft()
        if closed is not None:
            await trio.lowlevel.checkpoint()
            raise self._error()
        if self._receiving:
            await trio.lowlevel.checkpoint()
            raise trio.BusyResourceError("another task is receiving on this connection")
        self._receiving = True
        try:
            while True:
                if self._unparsed:
                    self._unparsed = False
                    data = b""
                else:
                    try:
                        raw = await self._stream.receive_some(_RECEIVE_BUFFER)
                    except _BROKEN as exc:
                        self._lost()
                        raise self._error() from exc
                    if not raw:
                        self._lost()
                        raise self._error()
                    data = raw if isinstance(raw, bytes) else bytes(raw)
                answer = self._absorb(data)
                if answer:
                    # A failure is recorded in _closed by _write: raised below, after the inbox.
                    with contextlib.suppress(ConnectionClosed):
                        await self._write(None, answer)
                closed = self._closed
                if inbox and (closed is None or not closed[2]):
                    return inbox.popleft()
                if closed is not None:
                    raise self._error()
        finally:
            self._receiving = False
            waiter = self._waiter
            if waiter is not None:
                self._waiter = None
                waiter.set()

    def _absorb(self, data: bytes) -> bytes:
        """Parse ``data`` read from the peer; queue the messages it completes (synchronous).

        Returns what this side must write in answer (pongs, the reply to a close frame, a close
        frame of ours after a protocol violation), possibly nothing.
        """
        protocol = self._protocol
        if protocol.state is _CLOSED:
            return b""  # the closing handshake is over: nothing more is parsed
        pending = self._pending
        if pending:
            pending += data
            buffer: bytes | bytearray = pending
        else:
            buffer = data
        size = len(buffer)
        start = 0
        answer = b""
        inbox = self._inbox
        masked = 0 if self._client else MASKED  # what the peer must send: RFC 6455 §5.1
        limit = self._max_frame_size
        while start < size:
            if buffer[start] & 0x70 or buffer[start] & 0x0F not in _OPCODES:
                # Reserved bits or opcode: wsproto reports the violation from this byte on.
                protocol.receive_data(bytes(buffer[start:]))
                answer += self._events()
                start = size
                break
            extent = frame_extent(buffer, start)
            if extent is None:
                break
            body, length = extent
            if length > limit:  # refused before it is read whole
                return answer + self._refuse(CloseCode.TOO_BIG, self._too_big())
            end = body + length
            if end > size:
                break
            if (
                buffer[start] == FIN_BINARY
                and buffer[start + 1] & MASKED == masked
                and not self._parts
                and protocol.state is _OPEN
            ):
                # A whole binary message, the usual frame: read here, not by wsproto.
                # (One copy of the payload: unmasking makes it, or bytes() of a bytearray slice.)
                payload = buffer[body:end]
                if masked:
                    inbox.append(unmask(payload, buffer[body - 4 : body]))
                else:
                    inbox.append(payload if type(payload) is bytes else bytes(payload))
            else:
                # Anything else (control frames, fragments, protocol errors) goes to wsproto,
                # one whole frame at a time.
                protocol.receive_data(bytes(buffer[start:end]))
                answer += self._events()
                if self._finished or protocol.state is _CLOSED:
                    return answer
            start = end
        if pending:
            del pending[:start]
        elif start < size:
            pending += buffer[start:]
        return answer

    def _events(self) -> bytes:
        """Handle what wsproto parsed of the frame just handed to it; returns what this side
        must write in answer."""
        protocol = self._protocol
        answer = b""
        for event in protocol.events():
            kind = type(event)
            if kind is BytesMessage:
                assert isinstance(event, BytesMessage)
                payload = event.data
                if not self._parts and event.message_finished:  # the usual case: one frame
                    if len(payload) > self._max_frame_size:
                        return answer + self._refuse(CloseCode.TOO_BIG, self._too_big())
                    self._inbox.append(payload if type(payload) is bytes else bytes(payload))
                    continue
                self._parts.append(bytes(payload))
                self._size += len(payload)
                if self._size > self._max_frame_size:
                    self._parts.clear()
                    return answer + self._refuse(CloseCode.TOO_BIG, self._too_big())
                if event.message_finished:
                    self._inbox.append(b"".join(self._parts))
                    self._parts.clear()
                    self._size = 0
            elif kind is Ping:
                assert isinstance(event, Ping)
                if protocol.state is _OPEN:
                    answer += protocol.send(event.response())
            elif kind is CloseConnection:
                assert isinstance(event, CloseConnection)
                state = protocol.state
                if state is ConnectionState.REMOTE_CLOSING:
                    answer += protocol.send(event.response())  # the reply to the peer's close
                elif state is _OPEN:
                    # wsproto reports a frame it cannot parse as a close (code 1002, 1007, ...)
                    # without sending one: tell the peer why.
                    answer += protocol.send(CloseConnection(event.code, event.reason))
                if self._closed is None:
                    self._closed = (event.code, event.reason or "", False)
                self._finish()
                return answer
            elif kind is TextMessage:
                _log.warning("closing the connection with %s: it sent a text message", self.peer)
                return answer + self._refuse(
                    CloseCode.PROTOCOL_ERROR, "text messages are not allowed"
                )
            # Pong: nothing to do (this side sends no pings).
        return answer

    def _too_big(self) -> str:
        return f"message over max_frame_size ({self._max_frame_size} bytes)"

    def _refuse(self, code: int, reason: str) -> bytes:
        """Close because of what the peer sent; returns the close frame to write."""
        if self._closed is None:
            self._closed = (code, reason, False)
        self._finish()  # nothing more is read: the peer's reply is not awaited
        if self._protocol.state is _OPEN:
            return self._protocol.send(CloseConnection(code, reason))
        return b""

    # -- closing ---------------------------------------------------------------------------------

    async def aclose(self, code: int = CloseCode.NORMAL, reason: str = "") -> None:
        """Send a close frame and wait (at most the handshake timeout) for the peer's reply.

        Idempotent. Cancellation closes the socket without waiting. Reasons longer than
        123 UTF-8 bytes are truncated by the WebSocket protocol.
        """
        await self._close(code, reason)

    async def _close(self, code: int, reason: str) -> None:
        if self._closed is not None:
            await trio.lowlevel.checkpoint()  # already closed or closing: nothing to send
            return
        self._closed = (code, reason, True)
        try:
            # Bounded: a peer that never answers the close frame gets its socket closed.
            with trio.move_on_after(self._close_timeout):
                try:
                    await self._write(CloseConnection(code, reason))
                except ConnectionClosed:
                    return  # it broke meanwhile: no reply to wait for
                await self._await_reply()
        finally:
            self._finished = True
            await trio.aclose_forcefully(self._stream)

    async def _await_reply(self) -> None:
        """Wait for the peer's reply to our close frame, reading the stream if nobody else is."""
        while not self._finished:
            if self._receiving:
                # receive() in another task reads on; it tells us when it has seen the reply
                # (or when it stops reading).
                waiter = self._waiter
                if waiter is None:
                    waiter = self._waiter = trio.Event()
                await waiter.wait()
                continue
            self._receiving = True
            try:
                raw = await self._stream.receive_some(_RECEIVE_BUFFER)
            except _BROKEN:
                return  # broke before replying: the close is done all the same
            finally:
                self._receiving = False
            if not raw:
                return
            self._absorb(bytes(raw))  # messages after our close frame are dropped with the inbox

    def _finish(self) -> None:
        """Nothing more will be read: wake a close waiting for the peer's reply."""
        self._finished = True
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            waiter.set()

    def _lost(self) -> None:
        """The stream broke or ended without a closing handshake."""
        if self._closed is None:
            self._closed = (_ABNORMAL, "connection lost", False)
        self._finish()

    def _error(self) -> ConnectionClosed:
        closed = self._closed
        if closed is None:  # pragma: no cover - callers record the close first
            return ConnectionClosed(_ABNORMAL, "connection lost")
        code, reason, local = closed
        return ConnectionClosed(code, reason, local=local)


def fresh_protocol(handshake: H11Handshake) -> tuple[_Protocol, bytes]:
    """What :class:`WebSocketConnection` takes of a finished handshake: a wsproto connection of
    the same side holding no unparsed bytes, and the bytes the handshake read past its end
    (frames the peer sent right behind it), for the connection to parse itself.

    Raises:
        RuntimeError: The handshake did not open a connection.
    """
    protocol = handshake.connection
    if protocol is None:
        raise RuntimeError("the WebSocket handshake opened no connection")
    # wsproto has no public accessor for them; its h11 connection has (h11's trailing_data,
    # from which wsproto itself fed them to ``protocol``). tests/remote/test_ws_frames.py
    # checks this still holds for the installed wsproto.
    trailing: tuple[bytes, bool] = handshake._h11_connection.trailing_data
    side = ConnectionType.CLIENT if protocol.client else ConnectionType.SERVER
    return _Protocol(side), bytes(trailing[0])
