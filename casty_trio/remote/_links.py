"""One peer link: the outbox for a remote node and the reader/writer of its connection.

The outbox outlives connections: items wait there while the link (re)connects. When connected,
one writer task drains everything queued into one frame (batching under load) and one reader
task hands incoming items to the :class:`Remoting` without ever blocking on an actor (``tell``
is synchronous), so a slow actor never stalls the link.

When the link is idle (the writer parked, the outbox empty) and the connection can write from
synchronous code (:class:`~casty_trio.remote._transport.SupportsSendNowait`, plain TCP
WebSockets), a message is sent straight from its ``tell`` as a frame of its own, without
waiting for the writer task: the latency of a lone message (an ask, its reply) is one scheduler
pass lower per side. The writer is woken all the same and, until it has run, later messages
queue behind that one, so a burst of tells is still batched and the order is kept.

Items are queued already encoded (a tell encodes its message at once, see ``_outbox.py``), so
a frame is the queued bytes joined behind a batch header; the rare paths that need the items
back (dead letters, re-queueing watch notices) decode them. Every message for the peer is
queued by :meth:`PeerLink.send`, whoever encoded it (a remote ref, a
:class:`~casty_trio.remote.RawSender`), so the checks on the way in are made in one place.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, NoReturn

import attrs
import trio

from .._core import NodeAddress
from ..serialization._wire import (
    Batch,
    DeathNotice,
    Envelopes,
    Hello,
    Unwatch,
    Watch,
    batch_frame,
)
from ._outbox import Entry, Outbox, frame, single_frame, split
from ._transport import CloseCode, Connection, ConnectionClosed, SupportsSendNowait

if TYPE_CHECKING:
    from ._remoting import Remoting

__all__ = ["LinkStatistics", "PeerLink"]

_log = logging.getLogger("casty_trio.remote")

# With at least _STREAM messages queued when it wakes, the writer lets the producers run up to
# _GATHER more scheduling rounds, as long as each adds to the outbox, before it cuts a frame.
# Under a stream of tells (a producer yielding every hundred tells) frames then carry several
# rounds' worth rather than one: each frame has a fixed cost (the writer, the socket calls on
# both sides, the peer's reader) worth many messages, so fewer, fuller frames carry more
# messages per second. A link with less queued (asks, replies, sparse tells) writes at once.
_STREAM = 64
_GATHER = 3
_FRAME_TARGET = 256 * 1024  # bytes per frame the writer aims for under load

# The last frame a node writes on a connection it no longer uses (a duplicate link, see
# PeerLink.run): an empty batch numbered 0. Writers number their frames from 1, so a reader
# that does not know the convention drops it as a duplicate.
_END = batch_frame(0, [])


@attrs.frozen
class LinkStatistics:
    """Counters of one peer link, as returned by ``RemoteActorSystem.link_statistics()``.

    Attributes:
        peer: The remote node.
        connected: Whether a connection is up right now.
        frames_out: Frames written (each is one batch).
        frames_in: Frames read.
        messages_out: Messages written (user envelopes and watch notices).
        messages_in: Messages read (the same units: a run of envelopes in one frame item
            counts each of them).
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
        self.outbox = Outbox()
        self.capacity = remoting.settings.outbox_capacity
        # The most an envelope's header and payload may take: with the array header between
        # them (5 bytes at most) it must fit one frame, even alone in its item. ``_room`` is
        # what is left for a payload behind ``_sized``, the header of the last send (senders
        # keep one header object per recipient and type, so it rarely changes).
        self.envelope_room = remoting.envelope_limit - 5
        self._sized = b""
        self._room = self.envelope_room
        self.connection: Connection | None = None
        self.outbound = False  # whether the current connection was dialed by us
        self.peer_uid: int | None = None
        self.dialing = False
        self.failures = 0  # consecutive failed dials, for the backoff
        self._wakeup: trio.Event | None = None
        self._flushed: trio.Event | None = None
        # The current connection when it can send from a tell (see the module docstring).
        self._direct: SupportsSendNowait | None = None
        # The number of the last frame written on the current connection: frames are numbered
        # per connection (as the wire protocol says), so that the reader of each connection
        # drops duplicates of its own frames only. A number shared by the link would make the
        # reader of one connection drop the frames of another (two connections live at once
        # while a duplicate link is resolved) as "duplicates".
        self._seq = 0
        self.frames_out = self.frames_in = self.messages_out = self.messages_in = 0
        self.bytes_out = self.bytes_in = self.dropped = self.decode_errors = 0
        self.duplicates = self.connections = 0

    # ------------------------------------------------------------------ sending (sync)

    def send(self, header: bytes, payload: bytes) -> bool:
        """Queue a message for the peer: its encoded ``payload`` behind ``header``, which is
        ``envelopes_header(recipient, manifest)``. Sync, never a checkpoint.

        The one way a message is queued for a peer: it refuses a payload that cannot fit a
        frame, then a send while the node shuts down or while the outbox is full, then queues
        the payload (or, on an idle link, writes it at once, see the module docstring). Keep
        one ``header`` object per recipient and manifest: consecutive payloads behind the same
        object travel as one ``Envelopes`` item.

        Returns:
            False when it was not queued (the node is shutting down, or the outbox is full,
            counted in ``dropped``): the caller makes the message a dead letter.

        Raises:
            SerializationError: ``payload`` does not fit a frame behind ``header``.
        """
        size = len(payload)
        if header is not self._sized:
            self._sized = header
            self._room = self.envelope_room - len(header)
        if size > self._room:
            self._too_big(header, payload)
        if self.remoting.closing:
            return False
        outbox = self.outbox
        if outbox.count >= self.capacity:
            self.dropped += 1
            return False
        wakeup = self._wakeup
        direct = self._direct
        if wakeup is not None and direct is not None and not outbox.count:
            # Idle: the writer is parked (so nothing is in flight) and nothing is queued. Send
            # this message at once as a frame of its own, in the caller's task.
            seq = self._seq + 1
            data = single_frame(seq, header, payload)
            if direct.send_nowait(data):
                self._seq = seq
                self.frames_out += 1
                self.messages_out += 1
                self.bytes_out += len(data)
                # Wake the writer all the same: until it has run, later tells queue behind
                # this one and it batches them (a burst of tells is not a frame per message),
                # and it writes the rest of this frame if the socket took only part of it.
                # It runs once the caller yields, off the message's way.
                self._wakeup = None
                wakeup.set()
                return True
        outbox.add_message(header, payload, size)
        # The wake-up, inlined (as in enqueue_control): this is the path of every remote tell.
        if wakeup is not None:
            self._wakeup = None
            wakeup.set()
        elif self.connection is None and not self.dialing:
            self.remoting.dial(self)
        return True

    def _too_big(self, header: bytes, payload: bytes) -> NoReturn:
        head = self.remoting.item_decoder.decode(header + b"\x90")  # the item without payloads
        assert isinstance(head, Envelopes)
        self.remoting.too_big(head.manifest, payload)

    def enqueue_control(self, item: Watch | Unwatch | DeathNotice) -> bool:
        """Queue a watch notice (see :meth:`send`)."""
        outbox = self.outbox
        if outbox.count >= self.capacity:
            self.dropped += 1
            return False
        outbox.add_control(self.remoting.frame_encoder.encode(item))
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
        notices, envelopes = split(self.outbox.drain(), self.remoting.item_decoder)
        count = len(notices) + len(envelopes)
        self.dropped += count
        _log.warning("%d messages to %s dropped: %s", count, self.peer, reason)
        for envelope in envelopes:
            self.remoting.undeliverable(self.peer, envelope)

    async def wait_flushed(self) -> None:
        """Wait until everything queued has been written (or no connection is coming)."""
        # A dial in progress counts too: at shutdown, messages queued while the link was still
        # connecting were neither sent nor dead-lettered (the dial was cancelled under them).
        while self.outbox and (self.connection is not None or self.dialing):
            self._flushed = trio.Event()
            await self._flushed.wait()
        await trio.lowlevel.checkpoint()

    def flush_progress(self) -> None:
        """Wake :meth:`wait_flushed`: the outbox emptied, or a connection or dial ended."""
        if self._flushed is not None:
            self._flushed.set()

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

    async def run(
        self, conn: Connection, peer_uid: int, *, outbound: bool, current: bool = True
    ) -> None:
        """Serve ``conn`` until it closes. A checkpoint.

        ``current`` makes ``conn`` the link's connection, the one the outbox drains to.
        Otherwise (or once a newer connection replaces it) ``conn`` is a duplicate that is
        wound down without losing a frame: both nodes dial each other at once, both write on
        whatever connection they have, and closing one of them outright would discard the
        frames the peer had already written on it. Instead each node stops writing on the
        duplicate and sends an end marker (``_END``), keeps reading it until the peer's end
        marker arrives, and only then closes it.
        """
        ending = _Ending()
        if not current:
            _log.info("link to %s: winding down a duplicate connection", self.peer)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._write_loop, conn, nursery.cancel_scope, ending)
                await self._read_loop(conn, peer_uid, ending)
                nursery.cancel_scope.cancel()
            return
        if self.peer_uid is not None and peer_uid != self.peer_uid:
            self.remoting.peer_restarted(self.peer)
        self.peer_uid = peer_uid
        self.connection = conn
        self._seq = 0
        self._direct = conn if isinstance(conn, SupportsSendNowait) else None
        # This connection may replace another one (a duplicate link, a stale connection to
        # an earlier incarnation): wake the old writer so it sees that and stops taking items
        # from the outbox, which belongs to this connection's writer from now on.
        replaced = self._wakeup
        if replaced is not None:
            self._wakeup = None
            replaced.set()
        self.outbound = outbound
        self.failures = 0
        self.connections += 1
        _log.info("link to %s up (%s)", self.peer, "dialed" if outbound else "accepted")
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._write_loop, conn, nursery.cancel_scope, ending)
                await self._read_loop(conn, peer_uid, ending)
                nursery.cancel_scope.cancel()
        finally:
            if self.connection is conn:
                self.connection = None
                self._direct = None
                self._wakeup = None
                if self._flushed is not None:
                    self._flushed.set()

    async def _write_loop(self, conn: Connection, scope: trio.CancelScope, ending: _Ending) -> None:
        # Frames are cut at a modest size even when much more is queued, so that the peer
        # starts decoding the first frame while later ones are still on the way; an item
        # larger than that still travels alone, up to max_frame_size.
        limit = min(self.remoting.settings.max_frame_size - 64, _FRAME_TARGET)
        outbox = self.outbox
        direct = conn if isinstance(conn, SupportsSendNowait) else None
        try:
            while True:
                if self.connection is not conn:
                    # Not (or no longer) the current connection: only the current one's writer
                    # drains the outbox. Tell the peer nothing more comes on this one.
                    await conn.send(_END)
                    ending.sent = True
                    if ending.received:
                        await conn.aclose(CloseCode.DUPLICATE_LINK, "duplicate link")
                    return
                if not outbox:
                    if direct is not None and direct.backlogged:
                        # The rest of a frame sent from a tell (see send).
                        await direct.flush()
                        continue
                    if self._flushed is not None:
                        self._flushed.set()
                    self._wakeup = wakeup = trio.Event()
                    await wakeup.wait()
                    continue
                if outbox.count >= _STREAM:
                    await _gather(outbox, limit)
                    if self.connection is not conn or not outbox:
                        continue  # replaced (the new writer drains) or emptied meanwhile
                entries, count = outbox.take(limit)
                self._seq = seq = self._seq + 1
                data = frame(seq, entries)
                try:
                    await conn.send(data)
                except BaseException:
                    # Taken from the outbox but not sent (closed or cancelled): without this
                    # the items would vanish silently.
                    self._unsent(entries)
                    raise
                self.frames_out += 1
                self.messages_out += count
                self.bytes_out += len(data)
        except ConnectionClosed as exc:
            _log.info("link to %s: writer stopped: %s", self.peer, exc)
            scope.cancel()

    def _unsent(self, entries: list[Entry]) -> None:
        """Items a writer took but could not send: messages become dead letters (at most once:
        the transport may have delivered part of them); watch notices, which are idempotent,
        go back to the front of the outbox for the next connection."""
        notices, envelopes = split(entries, self.remoting.item_decoder)
        self.outbox.put_back(notices)
        if envelopes:
            self.dropped += len(envelopes)
            _log.warning(
                "%d messages to %s dropped: the connection closed while sending",
                len(envelopes),
                self.peer,
            )
            for envelope in envelopes:
                self.remoting.undeliverable(self.peer, envelope)

    async def _read_loop(self, conn: Connection, peer_uid: int, ending: _Ending) -> None:
        decode = self.remoting.frame_decoder.decode
        remoting = self.remoting
        max_frame_size = remoting.settings.max_frame_size
        recv_seq = 0  # the last frame number read on this connection (see _write_loop)
        while True:
            try:
                data = await conn.receive()
            except ConnectionClosed as exc:
                if exc.code == CloseCode.TOO_BIG and not exc.local:
                    # The transport refused a frame of the peer's over its max_frame_size
                    # (the WebSocket transport and the simulated network both close with 1009).
                    self.decode_errors += 1
                    _log.warning("peer %s sent a frame over max_frame_size: %s", self.peer, exc)
                else:
                    _log.info("link to %s: connection ended: %s", self.peer, exc)
                return
            self.frames_in += 1
            self.bytes_in += len(data)
            if len(data) > max_frame_size:
                # The transport may accept larger frames than this node does (a transport
                # built without our settings): enforce the node's own limit here too.
                self.decode_errors += 1
                reason = f"frame of {len(data)} bytes exceeds max_frame_size {max_frame_size}"
                _log.warning("peer %s sent a frame too big: %s; closing it", self.peer, reason)
                await conn.aclose(CloseCode.TOO_BIG, reason)
                return
            try:
                frame = decode(data)
            except Exception as exc:
                # Not only DecodeError/ValidationError: a deeply nested payload raises
                # RecursionError, and nothing a peer sends may escape the link (it would take
                # the listener, and with it the whole node, down).
                await self._malformed(conn, f"undecodable frame ({type(exc).__name__}: {exc})")
                return
            if type(frame) is Hello and frame.uid == peer_uid:
                # The peer's hello again: a duplicated handshake frame (the simulated network
                # duplicates frames), not a protocol error.
                self.duplicates += 1
                continue
            if not isinstance(frame, Batch):
                await self._malformed(conn, f"unexpected {type(frame).__name__} after handshake")
                return
            if frame.seq == 0 and not frame.items and not ending.received:
                # The peer's end marker (see run): it writes nothing more on this connection.
                ending.received = True
                if ending.sent:
                    await conn.aclose(CloseCode.DUPLICATE_LINK, "duplicate link")
                    return
                continue
            if frame.seq <= recv_seq:
                self.duplicates += 1
                continue
            recv_seq = frame.seq
            remoting.receive_batch(self, frame.items)  # counts messages_in

    async def _malformed(self, conn: Connection, reason: str) -> None:
        self.decode_errors += 1
        _log.warning("peer %s sent a malformed frame: %s; closing the link", self.peer, reason)
        await conn.aclose(CloseCode.MALFORMED_FRAME, reason[:120])


async def _gather(outbox: Outbox, limit: int) -> None:
    """Let the producers add to ``outbox`` for up to ``_GATHER`` scheduling rounds, while each
    round adds something and the frame is not full. A checkpoint."""
    for _ in range(_GATHER):
        before = outbox.count
        await trio.lowlevel.checkpoint()
        if outbox.count == before or outbox.bytes >= limit:
            return


class _Ending:
    """How far winding down one connection got: end marker sent, end marker received."""

    __slots__ = ("received", "sent")

    def __init__(self) -> None:
        self.sent = False
        self.received = False
