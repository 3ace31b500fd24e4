"""One peer link: the outbox for a remote node and the reader/writer of its connection.

The outbox outlives connections: items wait there while the link (re)connects. When connected,
one writer task drains everything queued into one frame (batching under load, immediate send
when idle) and one reader task hands incoming items to the :class:`Remoting` without ever
blocking on an actor (``tell`` is synchronous), so a slow actor never stalls the link.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import TYPE_CHECKING, Any

import attrs
import msgspec
import trio

from .._core import NodeAddress
from ..serialization._wire import Batch, Envelope, Item
from ._transport import CloseCode, Connection, ConnectionClosed

if TYPE_CHECKING:
    from ._remoting import Remoting

__all__ = ["LinkStatistics", "PeerLink"]

_log = logging.getLogger("casty_trio.remote")

_ITEM_OVERHEAD = 16  # msgpack framing per envelope, a generous estimate


@attrs.frozen
class LinkStatistics:
    """Counters of one peer link, as returned by ``RemoteActorSystem.link_statistics()``.

    Attributes:
        peer: The remote node.
        connected: Whether a connection is up right now.
        frames_out: Frames written (each is one batch).
        frames_in: Frames read.
        messages_out: Items written (user envelopes and watch notices).
        messages_in: Items read.
        bytes_out: Frame bytes written.
        bytes_in: Frame bytes read.
        dropped: Items that became dead letters on this link (outbox full, peer unreachable).
        decode_errors: Frames or payloads from this peer that could not be decoded.
        duplicates: Frames dropped because their sequence number was already seen.
        connections: Connections established over the link's life.
    """

    peer: NodeAddress
    connected: bool
    frames_out: int
    frames_in: int
    messages_out: int
    messages_in: int
    bytes_out: int
    bytes_in: int
    dropped: int
    decode_errors: int
    duplicates: int
    connections: int


class PeerLink:
    """The link to one remote node. Owned by :class:`Remoting`; tasks run in its nursery."""

    def __init__(self, remoting: Remoting, peer: NodeAddress) -> None:
        self.remoting = remoting
        self.peer = peer
        self.outbox: deque[Item] = deque()
        self.connection: Connection | None = None
        self.outbound = False  # whether the current connection was dialed by us
        self.peer_uid: int | None = None
        self.dialing = False
        self.failures = 0  # consecutive failed dials, for the backoff
        self._wakeup: trio.Event | None = None
        self._flushed: trio.Event | None = None
        self._send_seq = 0
        self._recv_seq = 0
        self.frames_out = self.frames_in = self.messages_out = self.messages_in = 0
        self.bytes_out = self.bytes_in = self.dropped = self.decode_errors = 0
        self.duplicates = self.connections = 0

    # ------------------------------------------------------------------ sending (sync)

    def enqueue(self, item: Item) -> bool:
        """Queue ``item`` for the peer; False when the outbox is full (caller dead-letters)."""
        if len(self.outbox) >= self.remoting.settings.outbox_capacity:
            self.dropped += 1
            return False
        self.outbox.append(item)
        wakeup = self._wakeup
        if wakeup is not None:
            self._wakeup = None
            wakeup.set()
        elif self.connection is None and not self.dialing:
            self.remoting.dial(self)
        return True

    def drop_outbox(self, reason: str) -> None:
        """Turn everything queued into dead letters (peer unreachable)."""
        if not self.outbox:
            return
        items, self.outbox = self.outbox, deque()
        self.dropped += len(items)
        _log.warning("%d messages to %s dropped: %s", len(items), self.peer, reason)
        for item in items:
            if isinstance(item, Envelope):
                self.remoting.undeliverable(self.peer, item)

    async def wait_flushed(self) -> None:
        """Wait until everything queued has been written (or the connection is gone)."""
        while self.outbox and self.connection is not None:
            self._flushed = trio.Event()
            await self._flushed.wait()
        await trio.lowlevel.checkpoint()

    def statistics(self) -> LinkStatistics:
        return LinkStatistics(
            peer=self.peer,
            connected=self.connection is not None,
            frames_out=self.frames_out,
            frames_in=self.frames_in,
            messages_out=self.messages_out,
            messages_in=self.messages_in,
            bytes_out=self.bytes_out,
            bytes_in=self.bytes_in,
            dropped=self.dropped,
            decode_errors=self.decode_errors,
            duplicates=self.duplicates,
            connections=self.connections,
        )

    # ------------------------------------------------------------------ a connection's life

    async def run(self, conn: Connection, peer_uid: int, *, outbound: bool) -> None:
        """Serve ``conn`` as this link's connection until it closes. A checkpoint."""
        if self.peer_uid is not None and peer_uid != self.peer_uid:
            self.remoting.peer_restarted(self.peer)
        if self.peer_uid != peer_uid:
            self._recv_seq = 0
        self.peer_uid = peer_uid
        self.connection = conn
        self.outbound = outbound
        self.failures = 0
        self.connections += 1
        _log.info("link to %s up (%s)", self.peer, "dialed" if outbound else "accepted")
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._write_loop, conn, nursery.cancel_scope)
                await self._read_loop(conn)
                nursery.cancel_scope.cancel()
        finally:
            if self.connection is conn:
                self.connection = None
                self._wakeup = None
                if self._flushed is not None:
                    self._flushed.set()

    async def _write_loop(self, conn: Connection, scope: trio.CancelScope) -> None:
        encode = self.remoting.frame_encoder.encode
        limit = self.remoting.settings.max_frame_size - 64
        outbox = self.outbox
        try:
            while True:
                if not outbox:
                    if self._flushed is not None:
                        self._flushed.set()
                    self._wakeup = wakeup = trio.Event()
                    await wakeup.wait()
                    continue
                items: list[Item] = []
                size = 0
                while outbox:
                    item = outbox[0]
                    item_size = _estimate(item)
                    if items and size + item_size > limit:
                        break
                    items.append(outbox.popleft())
                    size += item_size
                self._send_seq += 1
                frame = encode(Batch(self._send_seq, items))
                await conn.send(frame)
                self.frames_out += 1
                self.messages_out += len(items)
                self.bytes_out += len(frame)
        except ConnectionClosed as exc:
            _log.info("link to %s: writer stopped: %s", self.peer, exc)
            scope.cancel()

    async def _read_loop(self, conn: Connection) -> None:
        decode = self.remoting.frame_decoder.decode
        remoting = self.remoting
        while True:
            try:
                data = await conn.receive()
            except ConnectionClosed as exc:
                _log.info("link to %s: connection ended: %s", self.peer, exc)
                return
            self.frames_in += 1
            self.bytes_in += len(data)
            try:
                frame = decode(data)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                await self._malformed(conn, f"undecodable frame ({exc})")
                return
            if not isinstance(frame, Batch):
                await self._malformed(conn, f"unexpected {type(frame).__name__} after handshake")
                return
            if frame.seq <= self._recv_seq:
                self.duplicates += 1
                continue
            self._recv_seq = frame.seq
            self.messages_in += len(frame.items)
            for item in frame.items:
                remoting.receive_item(self, item)

    async def _malformed(self, conn: Connection, reason: str) -> None:
        self.decode_errors += 1
        _log.warning("peer %s sent a malformed frame: %s; closing the link", self.peer, reason)
        await conn.aclose(CloseCode.MALFORMED_FRAME, reason[:120])


def _estimate(item: Any) -> int:
    if type(item) is Envelope:
        return len(item.payload) + len(item.recipient) + len(item.manifest) + _ITEM_OVERHEAD
    return len(item.path) + _ITEM_OVERHEAD
