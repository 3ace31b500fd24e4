"""Pre-encoded runs: sending payloads the caller encoded itself, and taking whole runs in.

An upper layer with its own per-message framing (a shard region sends ``(entity id, shard,
message)`` triples) uses these instead of a ref: :class:`RawSender` queues bytes behind a
cached ``Envelopes`` header on the peer link, in order with everything else sent to that node,
so consecutive sends with one header (:func:`~casty_trio.serialization._wire.envelopes_header`)
travel as one ``Envelopes`` item; on the receiving node a
:data:`BulkReceiver` registered for the path (``Remoting.set_bulk_receiver``) gets each such item
whole, undecoded, in the link's reader.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import msgspec

from .._core import NodeAddress

if TYPE_CHECKING:
    from ._remoting import Remoting

__all__ = ["BulkReceiver", "RawSender"]

BulkReceiver = Callable[[NodeAddress, str, msgspec.Raw, int], int]
"""``receiver(peer, manifest, run, count)``: one ``Envelopes`` item from ``peer``, in the
link's reader: ``run`` is the msgpack array of its ``count`` payloads, undecoded (decode it
whole as a ``list`` of what each payload is, or split it with
:func:`~casty_trio.serialization._wire.run_payloads`). Returns how many payloads it refused as
malformed (they count in the link's ``decode_errors``). It must not block; what it raises is
logged and the item dropped."""


class RawSender:
    """Queues pre-encoded payloads for the actor path ``path`` on ``node``.

    Get one with ``Remoting.raw_sender``. Its :attr:`send` is the peer link's own: the path
    every message to that node takes, with the same checks.

    Attributes:
        node: The node the payloads go to.
        path: The actor path on ``node`` they are for.
        send: ``send(header, payload) -> bool``: queue ``payload`` behind ``header``, which
            must be ``envelopes_header(path, manifest)``; keep one ``header`` object per
            manifest (the outbox joins consecutive payloads into one item by the header's
            identity). Returns False when it was not queued (the node is shutting down, the
            outbox is full): the caller makes it a dead letter. Raises
            :class:`~casty_trio.SerializationError` when ``payload`` does not fit a frame.
            Sync, never a checkpoint.

    Examples:
        >>> sender = remoting.raw_sender(node, "/counters/deliveries")  # doctest: +SKIP
        >>> header = envelopes_header(sender.path, "app:Tick")  # doctest: +SKIP
        >>> sender.send(header, payload)  # doctest: +SKIP
        True
    """

    __slots__ = ("node", "path", "send")

    def __init__(self, remoting: Remoting, node: NodeAddress, path: str) -> None:
        self.node = node
        self.path = path
        self.send: Callable[[bytes, bytes], bool] = remoting.link(node).send
