"""The transport seam: how frames of bytes travel between two nodes.

Everything above this module (handshake, peer links, remote refs, the cluster) is written
against these two protocols only. Two implementations exist: WebSocket over TCP (optionally
TLS) in ``_websocket.py`` for production, and the simulated network in
``casty_trio.testing`` for deterministic tests. The code above the seam is identical for both.

A *frame* is one binary message of at most ``max_frame_size`` bytes. Transports deliver frames
whole and in order on a connection, or fail the connection.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Protocol, runtime_checkable

import trio

from .._core import NodeAddress
from .._errors import ConnectionClosed, TransportError

__all__ = [
    "CloseCode",
    "Connection",
    "ConnectionClosed",
    "ConnectionHandler",
    "SupportsSendNowait",
    "Transport",
    "TransportError",
]


class CloseCode:
    """Close codes on the wire (WebSocket close codes; 4000-4999 are ours)."""

    NORMAL = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    ABNORMAL = 1006  # the connection broke without a close frame
    TOO_BIG = 1009
    BAD_HANDSHAKE = 4000
    WRONG_SYSTEM = 4001
    WRONG_VERSION = 4002
    HANDSHAKE_TIMEOUT = 4003
    DUPLICATE_LINK = 4004
    MALFORMED_FRAME = 4005


class Connection(Protocol):
    """One bidirectional, message-oriented connection to a peer."""

    @property
    def peer(self) -> str:
        """Where the other end is, for log lines (``host:port``)."""
        ...

    async def send(self, frame: bytes) -> None:
        """Send one frame. A checkpoint; raises :class:`ConnectionClosed` once closed."""
        ...

    async def receive(self) -> bytes:
        """Wait for the next frame. A checkpoint; raises :class:`ConnectionClosed` once closed."""
        ...

    async def aclose(self, code: int = CloseCode.NORMAL, reason: str = "") -> None:
        """Close with ``code`` and ``reason`` (idempotent). A checkpoint."""
        ...


@runtime_checkable
class SupportsSendNowait(Protocol):
    """What a :class:`Connection` may offer on top: writing a frame from synchronous code.

    Optional (the simulated network does without); a peer link checks for it once per
    connection and then sends a frame straight from a ``tell`` when nothing else is in flight,
    saving the hop through its writer task.
    """

    def send_nowait(self, frame: bytes) -> bool:
        """Write ``frame`` now if that cannot block. Not a checkpoint; never raises.

        True once the frame is on its way, in order before any later frame (written whole, or
        in part with the rest held back until :meth:`flush`: see :attr:`backlogged`); False,
        with nothing written, when it has to go through ``send`` instead.
        """
        ...

    @property
    def backlogged(self) -> bool:
        """Whether part of a frame taken by :meth:`send_nowait` still waits for :meth:`flush`."""
        ...

    async def flush(self) -> None:
        """Write what :meth:`send_nowait` held back. A checkpoint; raises
        :class:`ConnectionClosed` once closed."""
        ...


ConnectionHandler = Callable[[Connection], Awaitable[None]]


class Transport(Protocol):
    """Listens for and dials connections."""

    async def serve(
        self,
        handler: ConnectionHandler,
        *,
        task_status: trio.TaskStatus[NodeAddress] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Accept connections forever, running ``handler(conn)`` for each in its own task.

        Reports the address it actually listens on (port 0 resolved) through ``task_status``.
        The handler's connection is closed when the handler returns. Runs until cancelled.
        """
        ...

    def open_connection(self, address: NodeAddress) -> AbstractAsyncContextManager[Connection]:
        """Dial ``address``: ``async with transport.open_connection(addr) as conn:``.

        The connection (and any task it needs) lives exactly as long as the block. Entering
        raises :class:`TransportError` when the peer cannot be reached.
        """
        ...
