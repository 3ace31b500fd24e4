"""Deliveries: user messages for entities, between the regions of one sharded type.

A delivery is the msgpack array ``[entity_id, shard, message]`` (see ``_wire``), encoded
at the tell and queued through the remoting's :class:`~casty_trio.remote._raw.RawSender` for the
home's ``/<type name>/deliveries`` path. Consecutive deliveries of one message type to one node
(the usual case under load) travel as one ``Envelopes`` item whose manifest is the message
type's, and the receiving region decodes the whole run in one call.

:class:`Deliveries` holds what both directions reuse for one region: the senders per node, the
encoded ``[entity_id, shard`` prefix per entity id, the ``Envelopes`` header of the last message
type sent, and the run decoders per manifest.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any

import msgspec

from .._core import NodeAddress
from .._errors import SerializationError
from ..serialization._wire import decode_run, envelopes_header
from ._wire import deliveries_path, delivery_prefix

if TYPE_CHECKING:
    from ..remote import RawSender, RemotingPort

__all__ = ["Deliveries"]

_log = logging.getLogger("casty_trio.sharding")

_CACHE_SIZE = 100_000  # entity ids whose prefix is kept

Delivery = tuple[str, int, Any]
_Decoders = tuple[Callable[[bytes], list[Delivery]], Callable[[Any], Delivery]]


class Deliveries:
    """Encoding, sending and decoding of one region's deliveries (used by its region and
    ``RegionRouting`` only; sync throughout)."""

    __slots__ = (
        "_decoders",
        "_manifest",
        "_prefixes",
        "_senders",
        "codec",
        "encode",
        "header",
        "path",
        "region_path",
        "remoting",
        "sent_type",
    )

    def __init__(self, remoting: RemotingPort, region_path: str) -> None:
        self.remoting = remoting
        self.codec = remoting.codec
        self.region_path = region_path
        self.path = deliveries_path(region_path)
        self._senders: dict[NodeAddress, RawSender] = {}
        self._prefixes: dict[str, bytes] = {}
        self._decoders: dict[str, _Decoders] = {}
        self.encode = self.codec.payload_encoder
        # The last message type sent, its manifest and Envelopes header (one for every node:
        # the path is the same everywhere). ``RegionRouting.deliver`` reads them too: a message
        # of ``sent_type`` for an id it knows the prefix and sender of is encoded there.
        self.sent_type: type | None = None
        self._manifest = ""
        self.header = b""

    # ------------------------------------------------------------------ sending

    def sender_to(self, node: NodeAddress) -> RawSender:
        """What queues deliveries for the region on ``node`` (another node)."""
        sender = self._senders.get(node)
        if sender is None:
            sender = self._senders[node] = self.remoting.raw_sender(node, self.path)
        return sender

    def forget(self, live: Collection[NodeAddress]) -> None:
        """Drop the senders to nodes not in ``live``."""
        for node in [node for node in self._senders if node not in live]:
            del self._senders[node]

    def send(self, sender: RawSender, eid: str, prefix: bytes, message: Any) -> bool:
        """Encode ``message`` for entity ``eid`` behind its ``prefix`` (:meth:`prefix`) and
        queue it on ``sender``.

        How a delivery leaves, from the region (``RegionRoutes.forward``) and from the ref:
        the ref's remote fast path (``RegionRouting.deliver``) encodes a message of
        ``sent_type`` itself and comes here with anything else. Both queue the payload
        with the link's one ``send``, which makes the checks (frame size, shutdown, full
        outbox).

        Returns:
            False when it was not queued: it cannot be encoded or does not fit a frame (logged
            here), or the link refused it (outbox full, shutting down). The caller makes it a
            dead letter.
        """
        cls = type(message)
        if cls is not self.sent_type:
            try:
                manifest = self.codec.manifest(cls)
            except SerializationError as exc:
                return self._unsendable(sender, eid, exc)
            self.sent_type = cls
            self._manifest = manifest
            self.header = envelopes_header(self.path, manifest)
        try:
            payload = prefix + self.encode(message)
        except Exception as exc:
            return self._unsendable(sender, eid, self.codec.encode_failed(self._manifest, exc))
        try:
            return sender.send(self.header, payload)
        except SerializationError as exc:  # too big for a frame
            return self._unsendable(sender, eid, exc)

    def prefix(self, eid: str, shard: int) -> bytes:
        """The encoded ``[entity_id, shard`` that begins every delivery for ``eid``."""
        prefix = self._prefixes.get(eid)
        if prefix is None:
            if len(self._prefixes) >= _CACHE_SIZE:
                self._prefixes.clear()
            prefix = self._prefixes[eid] = delivery_prefix(eid, shard)
        return prefix

    def _unsendable(self, sender: RawSender, eid: str, exc: SerializationError) -> bool:
        _log.error(
            "%s: message for entity %r cannot be sent to %s: %s",
            self.region_path,
            eid,
            sender.node,
            exc,
        )
        return False

    # ------------------------------------------------------------------ receiving

    def decode_run(
        self, peer: NodeAddress, manifest: str, run: msgspec.Raw, count: int
    ) -> tuple[list[Delivery], int]:
        """The deliveries of a run (``count`` of them, a msgpack array) from ``peer`` and how
        many were malformed (dropped, logged naming the peer): one decode for the run, one per
        delivery only if that fails."""
        decoders = self._decoders.get(manifest)
        if decoders is None:
            try:
                decoders = self._decoders[manifest] = self._decoders_for(manifest)
            except SerializationError as exc:
                _log.warning(
                    "%s: %d deliveries from %s dropped: %s",
                    self.region_path,
                    count,
                    peer,
                    exc,
                )
                return [], count
        bad = 0

        def malformed(exc: Exception) -> None:
            nonlocal bad
            bad += 1
            _log.warning(
                "%s: dropped a malformed delivery from %s (%s): %s",
                self.region_path,
                peer,
                manifest,
                exc,
            )

        return decode_run(run, decoders[0], decoders[1], malformed), bad

    def _decoders_for(self, manifest: str) -> _Decoders:
        codec = self.codec
        many = codec.shaped_decoder(manifest, lambda cls: list[tuple[str, int, cls]])  # type: ignore[valid-type]
        one = codec.shaped_decoder(manifest, lambda cls: tuple[str, int, cls])  # type: ignore[valid-type]
        return many.decode, one.decode
