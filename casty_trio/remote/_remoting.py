"""Remoting: peer links, the handshake, remote refs and remote death watch for one system.

One :class:`Remoting` belongs to one actor system. It listens through its transport, dials
peers on demand (one logical link per node pair), hands out remote refs (their targets, which
encode a message at the ``tell`` so that an unencodable one fails right there, live in
:mod:`._targets`), and delivers incoming envelopes to local actors, decoding the payload only
once the recipient is known to exist.
"""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

import attrs
import msgspec
import trio

from .._core import ActorAddress, ActorRef, NodeAddress, dead_letter, local_target
from .._errors import SerializationError
from ..serialization import MessageCodec, MsgpackSerializer
from ..serialization._wire import (
    PROTOCOL_VERSION,
    DeathNotice,
    Envelope,
    Envelopes,
    Hello,
    Item,
    Reject,
    Unwatch,
    Watch,
    WireMessage,
    array_head,
    decode_run,
    run_length,
    run_payloads,
)
from ._links import LinkStatistics, PeerLink
from ._raw import BulkReceiver, RawSender
from ._targets import _GoneTarget, _RemoteTarget, _Watcher
from ._transport import CloseCode, Connection, ConnectionClosed, Transport, TransportError

if TYPE_CHECKING:
    from .._core import ActorSystem

__all__ = ["RemoteSettings", "Remoting"]

_log = logging.getLogger("casty_trio.remote")


@attrs.frozen
class RemoteSettings:
    """Tunables of the remoting layer.

    Attributes:
        max_frame_size: Largest frame sent or accepted, in bytes.
        outbox_capacity: Most items queued for one peer; more become dead letters.
        handshake_timeout: Seconds a new connection has to complete the handshake.
        reconnect_min: First delay before re-dialing a peer after a failed dial.
        reconnect_max: Longest delay between dials.
    """

    max_frame_size: int = 8 * 1024 * 1024
    outbox_capacity: int = 100_000
    handshake_timeout: float = 5.0
    reconnect_min: float = 0.1
    reconnect_max: float = 5.0


_REMOTE_REFS_KEPT = 4096  # decoded remote refs kept for reuse (all dropped when full)


class Remoting:
    """The remoting service of one actor system (see module docstring)."""

    def __init__(
        self,
        system: ActorSystem,
        transport: Transport,
        serializer: MsgpackSerializer,
        settings: RemoteSettings,
    ) -> None:
        self.system = system
        self.transport = transport
        self.settings = settings
        self.envelope_limit = settings.max_frame_size - 1024
        self.uid = random.getrandbits(62)
        self.node: NodeAddress | None = None
        self.codec: MessageCodec = serializer.bind(self)
        self.frame_encoder = msgspec.msgpack.Encoder()
        self.frame_decoder = msgspec.msgpack.Decoder(WireMessage)
        self.item_decoder = msgspec.msgpack.Decoder(Item)  # the outbox's items, when dropped
        self._hello_decoder = msgspec.msgpack.Decoder(Hello | Reject)
        self._links: dict[NodeAddress, PeerLink] = {}
        self._exports: dict[str, Any] = {}
        # Refs to other nodes' actors decoded lately, by their wire form (see ref_from_wire).
        self._remote_refs: dict[tuple[str, str, str, int], ActorRef[Any]] = {}
        # Receivers of incoming messages for a path, taking them before its actor does (a shard
        # region takes its peers' deliveries this way, see ``set_receiver``).
        self._receivers: dict[str, Callable[[Any], None]] = {}
        self._bulk: dict[str, BulkReceiver] = {}  # paths whose items arrive whole, undecoded
        # remote actors watched from here: (node, path) -> local watcher callbacks
        self._watching: dict[tuple[NodeAddress, str], list[_Watcher]] = {}
        # local actors watched by peers: (peer, path) -> the callback registered on the cell
        self._watched_by: dict[tuple[NodeAddress, str], _Watcher] = {}
        self._nursery: trio.Nursery | None = None
        self.closing = False

    # ------------------------------------------------------------------ lifecycle

    async def start(self, nursery: trio.Nursery) -> NodeAddress:
        """Listen for peers; returns the address other nodes reach this one at."""
        self._nursery = nursery
        node: NodeAddress = await nursery.start(self.transport.serve, self._accept)
        self.node = node
        return node

    async def aclose(self) -> None:
        """Close every link (after a short flush); later sends become dead letters."""
        self.closing = True
        with trio.move_on_after(1.0):
            for link in tuple(self._links.values()):
                await link.wait_flushed()
        for link in self._links.values():
            # What could not be written in time would vanish with the node: dead letters.
            link.drop_outbox("node shutting down")
            conn = link.connection
            if conn is not None:
                with trio.move_on_after(1.0):
                    await conn.aclose(CloseCode.GOING_AWAY, "node shutting down")
        await trio.lowlevel.checkpoint()

    def statistics(self) -> dict[NodeAddress, LinkStatistics]:
        return {node: link.statistics() for node, link in self._links.items()}

    # ------------------------------------------------------------------ refs (RefCodec)

    def ref_to_wire(self, ref: ActorRef[Any]) -> tuple[str, str, str, int]:
        address = ref.address
        node = address.node
        if node is None or node == self.node:
            node = self.node
            assert node is not None
            path = address.path
            if local_target(self.system, path) is None and path not in self._exports:
                self._export(path, ref)
        return (address.system, address.path, node.host, node.port)

    def ref_from_wire(self, system: str, path: str, host: str, port: int) -> ActorRef[Any]:
        key = (system, path, host, port)
        known = self._remote_refs.get(key)
        if known is not None:
            return known
        node = NodeAddress(host, port)
        if node == self.node:
            target = self.local_target(path)
            if target is not None:
                ref: ActorRef[Any] = target.ref
                return ref
            return _GoneTarget(self.system, ActorAddress(system, path, node)).ref
        ref = _RemoteTarget(self, ActorAddress(system, path, node)).ref
        if self.node is not None and not path.startswith("/$"):
            # A ref that comes again and again (a reply_to in every message) is built once.
            # Temporary actors (an ask's reply ref, "/$ask/...") are decoded once each: not kept.
            refs = self._remote_refs
            if len(refs) >= _REMOTE_REFS_KEPT:
                refs.clear()
            refs[key] = ref
        return ref

    def remote_ref(self, node: NodeAddress, path: str) -> ActorRef[Any]:
        """A ref to the actor at ``path`` on ``node`` (same system name as ours)."""
        return self.ref_from_wire(self.system.name, path, node.host, node.port)

    def local_target(self, path: str) -> Any:
        cell = local_target(self.system, path)
        if cell is not None:
            return cell
        return self._exports.get(path)

    def set_receiver(self, path: str, receiver: Callable[[Any], None] | None) -> None:
        """Hand messages from peers for the local actor at ``path`` to ``receiver`` instead of
        the actor's mailbox (``None`` undoes it). Sync.

        The receiver is called in the link's reader task, once per message, in arrival order;
        it must not block, and whatever it raises is treated like a refused delivery (logged,
        the message dropped). Refs and death watch are unaffected: only delivery changes.
        """
        if receiver is None:
            self._receivers.pop(path, None)
        else:
            self._receivers[path] = receiver

    def set_bulk_receiver(self, path: str, receiver: BulkReceiver | None) -> None:
        """Hand every item from peers for ``path`` (no actor needs to live there) to
        ``receiver`` whole and undecoded (see :data:`~casty_trio.remote._raw.BulkReceiver`);
        ``None`` undoes it. Sync. Peers send such items with :meth:`raw_sender`."""
        if receiver is None:
            self._bulk.pop(path, None)
        else:
            self._bulk[path] = receiver

    def raw_sender(self, node: NodeAddress, path: str) -> RawSender:
        """A sender of pre-encoded payloads to ``path`` on ``node`` (see :class:`RawSender`)."""
        return RawSender(self, node, path)

    def _deliverer(self, path: str) -> Callable[[Any], None] | None:
        """What takes incoming messages for ``path``: its receiver, else the local target."""
        receiver = self._receivers.get(path)
        if receiver is not None:
            return receiver
        target = self.local_target(path)
        return None if target is None else target.deliver

    def _export(self, path: str, ref: ActorRef[Any]) -> None:
        """Make a non-actor local ref (an ask's reply slot) reachable from peers while alive."""
        target = ref._target
        self._exports[path] = target
        target.add_watcher(lambda _ref: self._exports.pop(path, None))

    # ------------------------------------------------------------------ sending

    def link(self, node: NodeAddress) -> PeerLink:
        link = self._links.get(node)
        if link is None:
            link = self._links[node] = PeerLink(self, node)
        return link

    def too_big(self, manifest: str, payload: bytes) -> NoReturn:
        """Refuse, at the send, a message whose envelope would not fit one frame."""
        raise SerializationError(
            f"message of type {manifest} is {len(payload)} bytes once encoded; with its "
            f"envelope it does not fit a frame of {self.settings.max_frame_size} bytes"
        )

    def undeliverable(self, node: NodeAddress, envelope: Envelope) -> None:
        """An envelope that will never leave: publish it as a dead letter (still encoded)."""
        ref = _RemoteTarget(self, ActorAddress(self.system.name, envelope.recipient, node)).ref
        try:
            message = self.codec.decode(envelope.manifest, envelope.payload)
        except SerializationError:
            message = envelope
        dead_letter(self.system, message, ref)

    # ------------------------------------------------------------------ connections

    def dial(self, link: PeerLink) -> None:
        """Start connecting ``link`` in the background (sync; one dial at a time per link)."""
        if self._nursery is None or self.closing or link.dialing:
            return
        link.dialing = True
        self._nursery.start_soon(self._dial, link)

    async def _dial(self, link: PeerLink) -> None:
        try:
            if link.failures:
                delay = min(
                    self.settings.reconnect_max,
                    self.settings.reconnect_min * 2 ** (link.failures - 1),
                )
                await trio.sleep(delay)
            try:
                async with self.transport.open_connection(link.peer) as conn:
                    hello = await self._handshake(conn, expect=link.peer)
                    if hello is None:
                        raise TransportError(f"handshake with {link.peer} failed")
                    current = self._keep_new_connection(link, hello.uid, outbound=True)
                    link.dialing = False
                    await link.run(conn, hello.uid, outbound=True, current=current)
            except TransportError as exc:
                link.failures += 1
                _log.warning("cannot reach %s: %s", link.peer, exc)
                self._link_lost(link, f"unreachable: {exc}")
                return
        finally:
            link.dialing = False
            link.flush_progress()
        self._connection_ended(link)

    async def _accept(self, conn: Connection) -> None:
        hello = await self._handshake(conn, expect=None)
        if hello is None:
            return
        link = self.link(NodeAddress(hello.host, hello.port))
        current = self._keep_new_connection(link, hello.uid, outbound=False)
        await link.run(conn, hello.uid, outbound=False, current=current)
        self._connection_ended(link)

    def _connection_ended(self, link: PeerLink) -> None:
        """A connection closed: re-dial at once if anything depends on the peer.

        If that dial fails the link is declared lost: queued messages become dead letters and
        watchers of the peer's actors receive ``Terminated``.
        """
        if self.closing or link.connection is not None:
            return
        if link.outbox or any(node == link.peer for node, _path in self._watching):
            self.dial(link)

    def _keep_new_connection(self, link: PeerLink, uid: int, *, outbound: bool) -> bool:
        """Whether a new connection becomes the link's current one.

        Two nodes dialing each other at once: both keep the connection dialed by the smaller
        node; the other one is wound down by ``PeerLink.run`` without losing frames (closing
        it at once would lose what the peer had already written on it).

        A connection from a new incarnation of the peer always wins, and the old one is closed
        at once: it leads to a node that no longer exists, though its close has not reached us
        yet (otherwise a quickly restarted peer would be refused as a "duplicate" until then).
        """
        old = link.connection
        if old is None:
            return True
        if link.peer_uid is not None and uid != link.peer_uid:
            if self._nursery is not None:
                self._nursery.start_soon(
                    _close_quietly, old, "stale connection to an earlier incarnation"
                )
            return True
        assert self.node is not None
        return (self.node < link.peer) == outbound

    async def _handshake(self, conn: Connection, *, expect: NodeAddress | None) -> Hello | None:
        """Exchange hellos; None (after closing with a reason) when the peer is refused."""
        assert self.node is not None
        mine = Hello(PROTOCOL_VERSION, self.system.name, self.node.host, self.node.port, self.uid)
        with trio.move_on_after(self.settings.handshake_timeout) as scope:
            try:
                await conn.send(self.frame_encoder.encode(mine))
                data = await conn.receive()
            except ConnectionClosed as exc:
                _log.warning("handshake with %s failed: %s", conn.peer, exc)
                return None
        if scope.cancelled_caught:
            _log.warning("peer %s did not complete the handshake in time", conn.peer)
            await _close_quietly(conn, "handshake timeout", CloseCode.HANDSHAKE_TIMEOUT)
            return None
        if len(data) > self.settings.max_frame_size:
            # The transport may accept larger frames than this node does: enforce our limit.
            reason = (
                f"hello of {len(data)} bytes exceeds max_frame_size {self.settings.max_frame_size}"
            )
            _log.warning("refusing peer %s: %s", conn.peer, reason)
            await _close_quietly(conn, reason, CloseCode.TOO_BIG)
            return None
        try:
            theirs: Hello | Reject = self._hello_decoder.decode(data)
        except Exception as exc:  # any decoding failure (RecursionError too) is a bad hello
            await self._refuse(conn, CloseCode.BAD_HANDSHAKE, f"malformed hello ({exc})")
            return None
        # Strings from the peer are clipped before they reach a log line or a Reject frame.
        if isinstance(theirs, Reject):
            reason = _clip(theirs.reason)
            _log.warning("peer %s refused us: %s (%d)", conn.peer, reason, theirs.code)
            # Echo the peer's code only if it is one of ours (4000-4999): closing a WebSocket
            # with a code outside 0..65535 raises struct.error, not ConnectionClosed, and a
            # hand-made Reject(70000, ...) would take the whole node down.
            code = theirs.code if 4000 <= theirs.code <= 4999 else CloseCode.BAD_HANDSHAKE
            await _close_quietly(conn, reason, code)
            return None
        if theirs.version != PROTOCOL_VERSION:
            await self._refuse(
                conn,
                CloseCode.WRONG_VERSION,
                f"protocol version {theirs.version} is not {PROTOCOL_VERSION}",
            )
            return None
        if theirs.system != self.system.name:
            await self._refuse(
                conn,
                CloseCode.WRONG_SYSTEM,
                f"system {_clip(theirs.system)!r} is not {self.system.name!r}",
            )
            return None
        if expect is not None and (theirs.host, theirs.port) != (expect.host, expect.port):
            _log.info(
                "peer dialed as %s calls itself %s:%d", expect, _clip(theirs.host), theirs.port
            )
        return theirs

    async def _refuse(self, conn: Connection, code: int, reason: str) -> None:
        _log.warning("refusing peer %s: %s", conn.peer, reason)
        with trio.move_on_after(1.0), contextlib.suppress(ConnectionClosed):
            await conn.send(self.frame_encoder.encode(Reject(code, reason)))
        await _close_quietly(conn, reason, code)

    # ------------------------------------------------------------------ receiving

    def receive_batch(self, link: PeerLink, items: list[Item]) -> None:
        """Handle the items of one frame, in order (sync; never blocks on an actor).

        The per-message path of remoting: messages for one recipient, or of one type (the usual
        case under load, most of them in one ``Envelopes`` item), look the recipient or the
        payload decoder up once, and a run of one ``Envelopes`` item is decoded in one call.
        """
        last_path: str | None = None
        deliver: Any = None
        for item in items:
            if type(item) is Envelopes:
                run = item.payloads
                try:
                    count = run_length(run)
                except ValueError as exc:
                    link.decode_errors += 1
                    _log.warning("bad item from %s for %s: %s", link.peer, item.recipient, exc)
                    continue
            elif type(item) is Envelope:  # not sent by this implementation: a run of one
                run = msgspec.Raw(array_head(1) + bytes(item.payload))
                count = 1
            else:
                link.messages_in += 1
                self.receive_item(link, item)
                last_path = None  # a watch notice may have changed what lives where
                continue
            link.messages_in += count
            path = item.recipient
            if path != last_path:
                bulk = self._bulk.get(path)
                if bulk is not None:
                    self._bulk_run(link, bulk, item.manifest, run, count)
                    continue
                deliver = self._deliverer(path)
                if deliver is None:
                    self.receive_item(link, item)  # the slow path logs and dead-letters it
                    continue
                last_path = path
            for message in self._decoded(link, path, item.manifest, run, count):
                try:
                    deliver(message)
                except Exception as exc:  # a full "reject" mailbox: already a dead letter
                    _log.debug("message from %s to %s refused: %s", link.peer, path, exc)

    def _decoded(
        self, link: PeerLink, path: str, manifest: str, run: msgspec.Raw, count: int
    ) -> list[Any]:
        """The messages of a run of ``count`` that decode; the others are counted and logged."""
        try:
            decode_whole = self.codec.run_decoder(manifest)
        except SerializationError as exc:  # unknown manifest: the whole run
            self._undecodable(link, path, exc, count)
            return []
        decode = self.codec.payload_decoder(manifest)

        def malformed(exc: Exception) -> None:
            self._undecodable(link, path, self.codec.decode_failed(manifest, exc))

        return decode_run(run, decode_whole, decode, malformed)

    def _bulk_run(
        self, link: PeerLink, bulk: BulkReceiver, manifest: str, run: msgspec.Raw, count: int
    ) -> None:
        try:
            link.decode_errors += bulk(link.peer, manifest, run, count)
        except Exception:  # nothing from a peer may escape the link
            link.decode_errors += count
            _log.exception(
                "messages from %s (%s) dropped: their receiver failed", link.peer, manifest
            )

    def _undecodable(
        self, link: PeerLink, path: str, exc: SerializationError, count: int = 1
    ) -> None:
        link.decode_errors += count
        _log.warning("undecodable message from %s for %s: %s", link.peer, path, exc)

    def receive_item(self, link: PeerLink, item: Item) -> None:
        """Handle one item of a frame from ``link`` (sync; never blocks on an actor)."""
        if type(item) is Envelopes:
            for payload in run_payloads(item.payloads):
                self.receive_item(link, Envelope(item.recipient, item.manifest, payload))
        elif type(item) is Envelope:
            deliver = self._deliverer(item.recipient)
            if deliver is None:
                _log.debug("message from %s for unknown %s dropped", link.peer, item.recipient)
                self._dead_on_arrival(item)
                return
            try:
                message = self.codec.decode(item.manifest, item.payload)
            except SerializationError as exc:
                self._undecodable(link, item.recipient, exc)
                return
            try:
                deliver(message)
            except Exception as exc:  # a full "reject" mailbox: already a dead letter
                _log.debug("message from %s to %s refused: %s", link.peer, item.recipient, exc)
        elif type(item) is Watch:
            self._peer_watches(link.peer, item.path)
        elif type(item) is Unwatch:
            self._peer_unwatches(link.peer, item.path)
        elif type(item) is DeathNotice:
            self._remote_died(link.peer, item.path)

    def _dead_on_arrival(self, envelope: Envelope) -> None:
        """A message for no actor of this node (stopped, never existed, an expired ask).

        Published like a local dead letter: the decoded message (the envelope itself if it
        cannot be decoded) and a ref with this node's full address, so that a late reply to an
        ask carries the asker's reply ref. Decoded only when someone listens for dead letters.
        """
        ref = _GoneTarget(
            self.system, ActorAddress(self.system.name, envelope.recipient, self.node)
        ).ref
        message: Any = envelope
        if self.system.event_stream.has_subscribers():
            with contextlib.suppress(SerializationError):
                message = self.codec.decode(envelope.manifest, envelope.payload)
        dead_letter(self.system, message, ref)

    # ------------------------------------------------------------------ death watch

    def watch_remote(self, ref: ActorRef[Any], watcher: _Watcher) -> None:
        node = ref.address.node
        assert node is not None
        key = (node, ref.address.path)
        watchers = self._watching.get(key)
        if watchers is None:
            self._watching[key] = [watcher]
            if not self.link(node).enqueue_control(Watch(ref.address.path)):
                self._remote_died(node, ref.address.path)
        elif watcher not in watchers:
            watchers.append(watcher)

    def unwatch_remote(self, ref: ActorRef[Any], watcher: _Watcher) -> None:
        node = ref.address.node
        assert node is not None
        key = (node, ref.address.path)
        watchers = self._watching.get(key)
        if watchers is not None and watcher in watchers:
            watchers.remove(watcher)
            if not watchers:
                del self._watching[key]
                self.link(node).enqueue_control(Unwatch(ref.address.path))

    def _remote_died(self, node: NodeAddress, path: str) -> None:
        watchers = self._watching.pop((node, path), None)
        if watchers:
            ref = self.remote_ref(node, path)
            for watcher in watchers:
                watcher(ref)

    def _peer_watches(self, peer: NodeAddress, path: str) -> None:
        key = (peer, path)
        if key in self._watched_by:
            return

        def notify(_ref: ActorRef[Any]) -> None:
            self._watched_by.pop(key, None)
            self.link(peer).enqueue_control(DeathNotice(path))

        self._watched_by[key] = notify
        target = self.local_target(path)
        if target is None:
            notify(_GoneTarget(self.system, ActorAddress(self.system.name, path, self.node)).ref)
        else:
            target.add_watcher(notify)

    def _peer_unwatches(self, peer: NodeAddress, path: str) -> None:
        notify = self._watched_by.pop((peer, path), None)
        target = self.local_target(path)
        if notify is not None and target is not None:
            target.remove_watcher(notify)

    def peer_restarted(self, node: NodeAddress) -> None:
        """The peer came back as a new incarnation: its old actors are all gone."""
        _log.info("peer %s restarted (new incarnation)", node)
        self.node_gone(node)

    def _link_lost(self, link: PeerLink, reason: str) -> None:
        link.drop_outbox(reason)
        self.node_gone(link.peer)

    def node_gone(self, node: NodeAddress) -> None:
        """Every actor of ``node`` is gone (it was downed or removed): watchers of its actors
        get ``Terminated``, and its watches of local actors are dropped. Sync."""
        for key in [key for key in self._watching if key[0] == node]:
            self._remote_died(*key)
        for key in [key for key in self._watched_by if key[0] == node]:
            notify = self._watched_by.pop(key)
            target = self.local_target(key[1])
            if target is not None:
                target.remove_watcher(notify)


def _clip(text: str, limit: int = 80) -> str:
    """A peer-supplied string, shortened for a log line or a close reason."""
    return text if len(text) <= limit else text[:limit] + "..."


async def _close_quietly(conn: Connection, reason: str, code: int = CloseCode.NORMAL) -> None:
    with trio.move_on_after(1.0):
        await conn.aclose(code, reason[:120])
