"""The targets behind refs that remoting hands out: a remote actor's, and a gone local one's.

:class:`_RemoteTarget` is the fast path of every remote ``tell``: it encodes the message at
once (so an unencodable message fails at the ``tell``), caching the manifest and envelopes
header of the last message type, and queues the encoded envelope with the peer link's
:meth:`~casty_trio.remote._links.PeerLink.send`.
:class:`_GoneTarget` stands behind a ref to an actor of this node that no longer exists.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._core import ActorAddress, ActorRef, dead_letter
from ..serialization._wire import envelopes_header

if TYPE_CHECKING:
    from .._core import ActorSystem
    from ._remoting import Remoting

_Watcher = Callable[[ActorRef[Any]], None]


class _RemoteTarget:
    """What stands behind a ref to an actor on another node."""

    __slots__ = (
        "_encode",
        "_header",
        "_link",
        "_manifest",
        "_path",
        "_remoting",
        "_type",
        "ref",
    )

    def __init__(self, remoting: Remoting, address: ActorAddress) -> None:
        assert address.node is not None
        self._remoting = remoting
        self._link = remoting.link(address.node)  # links live as long as the remoting
        self._path = address.path
        self._encode = remoting.codec.payload_encoder
        # The last message type sent, its manifest and envelopes header (most refs only ever
        # see one type): a tell of the same type skips the codec's lookups.
        self._type: type | None = None
        self._manifest = ""
        self._header = b""
        self.ref: ActorRef[Any] = ActorRef(address, self)

    def deliver(self, message: Any) -> None:
        # The hot path of every remote tell: encode here, so that an unencodable message
        # raises at the tell, then queue the encoded envelope on the link (which raises for
        # one too big for a frame).
        if type(message) is not self._type:
            self._prepare(type(message))
        try:
            payload = self._encode(message)
        except Exception as exc:
            raise self._remoting.codec.encode_failed(self._manifest, exc) from exc
        if not self._link.send(self._header, payload):
            dead_letter(self._remoting.system, message, self.ref)

    def _prepare(self, cls: type) -> None:
        manifest = self._remoting.codec.manifest(cls)  # raises if cls may not be sent
        self._type = cls
        self._manifest = manifest
        self._header = envelopes_header(self._path, manifest)

    def add_watcher(self, watcher: _Watcher) -> None:
        self._remoting.watch_remote(self.ref, watcher)

    def remove_watcher(self, watcher: _Watcher) -> None:
        self._remoting.unwatch_remote(self.ref, watcher)


class _GoneTarget:
    """A ref to an actor of this node that no longer exists: everything is a dead letter."""

    __slots__ = ("_system", "ref")

    def __init__(self, system: ActorSystem, address: ActorAddress) -> None:
        self._system = system
        self.ref: ActorRef[Any] = ActorRef(address, self)

    def deliver(self, message: Any) -> None:
        self._system._dead_letter(message, self.ref)

    def add_watcher(self, watcher: _Watcher) -> None:
        watcher(self.ref)

    def remove_watcher(self, watcher: _Watcher) -> None:
        pass
