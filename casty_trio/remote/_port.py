"""The remoting port: what the layers above remoting may use of a system's remoting.

Membership and sharding need more than refs: a shard region takes its peers' deliveries in
the link's reader (a receiver per path), sends pre-encoded runs (a raw sender), encodes with
the system's codec, and membership tells remoting when a node is gone for good. This Protocol
names exactly that surface; :attr:`RemoteActorSystem.remoting
<casty_trio.remote.RemoteActorSystem.remoting>` returns it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from .._core import NodeAddress
from ..serialization import MessageCodec
from ._raw import BulkReceiver, RawSender

__all__ = ["RemotingPort"]


class RemotingPort(Protocol):
    """The part of a system's remoting that upper layers build on.

    Attributes:
        codec: The system's message codec (encodes and decodes user messages and refs).
        closing: True once the system is shutting down; sends then become dead letters.

    Examples:
        >>> port = system.remoting                                  # doctest: +SKIP
        >>> port.set_receiver("/orders", handle)                    # doctest: +SKIP
    """

    codec: MessageCodec
    closing: bool

    def set_receiver(self, path: str, receiver: Callable[[Any], None] | None) -> None:
        """Hand messages from peers for ``path`` to ``receiver`` (in the link's reader, in
        arrival order) instead of the local actor's mailbox; ``None`` undoes it. Sync."""
        ...

    def set_bulk_receiver(self, path: str, receiver: BulkReceiver | None) -> None:
        """Hand runs of pre-encoded payloads for ``path`` to ``receiver`` whole; ``None``
        undoes it. Sync."""
        ...

    def raw_sender(self, node: NodeAddress, path: str) -> RawSender:
        """A sender of pre-encoded payloads to ``path`` on ``node``. Sync."""
        ...

    def node_gone(self, node: NodeAddress) -> None:
        """Every actor of ``node`` is gone: watchers get ``Terminated``. Sync."""
        ...
