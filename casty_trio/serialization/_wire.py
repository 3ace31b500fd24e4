"""The node-to-node protocol: small frozen msgspec Structs with explicit, stable tags.

A connection carries frames. The first frame each way is a :class:`Hello`; a node that refuses
the other's hello sends :class:`Reject` and closes. After that every frame is one
:class:`Batch`: a sequence number (so a duplicated frame is dropped) and the items the writer
drained from its outbox at once. User messages travel as :class:`Envelope` with the payload
already encoded (``msgspec.Raw``), so nothing on the way decodes them; only the receiving
actor's node does. Consecutive messages of one type for one recipient (the usual case under
load) travel as one :class:`Envelopes` item, which names recipient and type once.
``Batch(0, [])`` is the end marker: a connection that lost a duplicate-link race sends it when
nothing more will come, and readers that do not know it drop it as a duplicate (sequence
numbers start at 1).

On the sending side items are encoded as they are queued (:func:`envelopes_header` gives the
bytes an :class:`Envelopes` item starts with, so a ref can cache them) and a frame is those
bytes joined behind a batch header (:func:`batch_head`, :func:`array_head`): the same bytes as
encoding the :class:`Batch`, without building a Struct per message and encoding everything
again.

Tags are part of the protocol: never reuse or renumber one. Adding a new Struct means a new tag;
changing a field means a new ``PROTOCOL_VERSION``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import TypeVar

import msgspec

__all__ = [
    "PROTOCOL_VERSION",
    "Batch",
    "DeathNotice",
    "Envelope",
    "Envelopes",
    "Hello",
    "Item",
    "Reject",
    "Unwatch",
    "Watch",
    "WireMessage",
    "array_head",
    "batch_frame",
    "batch_head",
    "decode_run",
    "envelope_header",
    "envelopes",
    "envelopes_header",
    "run_length",
    "run_payloads",
]

PROTOCOL_VERSION = 2


class Hello(msgspec.Struct, frozen=True, array_like=True, gc=False, tag=1):
    """First frame on a connection, both ways: who is talking."""

    version: int
    system: str
    host: str
    port: int
    uid: int  # incarnation: random per system start, so a restarted node is a new peer


class Reject(msgspec.Struct, frozen=True, array_like=True, gc=False, tag=2):
    """The handshake failed; the connection is closed after this frame with the same code."""

    code: int
    reason: str


class Envelope(msgspec.Struct, frozen=True, array_like=True, gc=False, tag=3):
    """A user message for the actor at ``recipient`` (a path on the receiving node)."""

    recipient: str
    manifest: str  # the payload's type, as the serializer names it
    payload: msgspec.Raw


class Watch(msgspec.Struct, frozen=True, array_like=True, gc=False, tag=4):
    """Tell me (the sending node) when the actor at ``path`` on your node stops."""

    path: str


class Unwatch(msgspec.Struct, frozen=True, array_like=True, gc=False, tag=5):
    """Forget a :class:`Watch` of ``path``."""

    path: str


class DeathNotice(msgspec.Struct, frozen=True, array_like=True, gc=False, tag=6):
    """The actor at ``path`` on the sending node, which you watch, has stopped."""

    path: str


class Envelopes(msgspec.Struct, frozen=True, array_like=True, gc=False, tag=8):
    """Several user messages of one type for one recipient, in send order: what as many
    :class:`Envelope` items would say, without repeating ``recipient`` and ``manifest``.

    ``payloads`` is the msgpack array of the encoded payloads, kept undecoded as one piece, so
    the receiver decodes a whole run with one ``list[type]`` decode (:func:`run_payloads`
    splits it when one by one is needed). Build one with :func:`envelopes`.
    """

    recipient: str
    manifest: str
    payloads: msgspec.Raw


Item = Envelope | Envelopes | Watch | Unwatch | DeathNotice


class Batch(msgspec.Struct, frozen=True, array_like=True, gc=False, tag=7):
    """Every frame after the handshake: items in send order, numbered per connection."""

    seq: int
    items: list[Item]


WireMessage = Hello | Reject | Batch


T = TypeVar("T")

_ENVELOPE_TAG = 3
_ENVELOPES_TAG = 8
_BATCH_HEAD = b"\x93\x07"  # a 3-element array, then Batch's tag (7)
_ARRAY16 = struct.Struct(">BH")
_ARRAY32 = struct.Struct(">BI")


def envelope_header(recipient: str, manifest: str) -> bytes:
    """The encoded start of an :class:`Envelope`: everything before its payload's bytes.

    ``envelope_header(r, m) + payload`` is exactly ``encode(Envelope(r, m, Raw(payload)))``.
    """
    # (tag, recipient, manifest) encodes as a 3-element array; an Envelope has 4 elements.
    return b"\x94" + msgspec.msgpack.encode((_ENVELOPE_TAG, recipient, manifest))[1:]


def envelopes_header(recipient: str, manifest: str) -> bytes:
    """The encoded start of an :class:`Envelopes` item, up to its list of payloads.

    ``envelopes_header(r, m) + array_head(len(ps)) + b"".join(ps)`` is exactly
    ``encode(envelopes(r, m, ps))``.
    """
    return b"\x94" + msgspec.msgpack.encode((_ENVELOPES_TAG, recipient, manifest))[1:]


def array_head(count: int) -> bytes:
    """The msgpack header of an array of ``count`` elements."""
    if count < 16:
        return bytes((0x90 | count,))
    if count < 0x10000:
        return _ARRAY16.pack(0xDC, count)
    return _ARRAY32.pack(0xDD, count)


def run_length(run: msgspec.Raw) -> int:
    """How many payloads the run ``run`` (an :class:`Envelopes` item's ``payloads``) holds.

    Raises:
        ValueError: ``run`` is not a msgpack array (a malformed item).

    Examples:
        >>> run_length(envelopes("/user/a", "m", [b"\\x01", b"\\x02"]).payloads)
        2
    """
    data = memoryview(run)
    first = data[0] if data else 0
    if 0x90 <= first <= 0x9F:
        return first & 0x0F
    if first == 0xDC and len(data) >= 3:
        return int(_ARRAY16.unpack_from(data)[1])
    if first == 0xDD and len(data) >= 5:
        return int(_ARRAY32.unpack_from(data)[1])
    raise ValueError("the payloads of an Envelopes item are not an array")


_RAWS = msgspec.msgpack.Decoder(list[msgspec.Raw])


def run_payloads(run: msgspec.Raw) -> list[msgspec.Raw]:
    """The payloads of the run ``run``, each still encoded.

    Raises:
        msgspec.ValidationError: ``run`` is not a msgpack array.
    """
    return _RAWS.decode(run)


def decode_run(
    run: msgspec.Raw,
    whole: Callable[[msgspec.Raw], list[T]],
    one: Callable[[msgspec.Raw], T],
    malformed: Callable[[Exception], None],
) -> list[T]:
    """The run ``run`` decoded with ``whole`` in one call; if that fails, each payload with
    ``one``, keeping those that decode and calling ``malformed(exc)`` for each of the others
    (so a bad payload costs only itself). Nothing a payload raises escapes.

    Examples:
        >>> ints = msgspec.msgpack.Decoder(list[int]).decode
        >>> one = msgspec.msgpack.Decoder(int).decode
        >>> run = envelopes("/a", "builtins:int", [b"\\x01", b"\\xa1x", b"\\x02"]).payloads
        >>> bad = []
        >>> decode_run(run, ints, one, bad.append), len(bad)
        ([1, 2], 1)
    """
    try:
        return whole(run)
    except Exception:  # RecursionError too: which ones are malformed? Keep the others.
        pass
    decoded: list[T] = []
    for payload in run_payloads(run):
        try:
            decoded.append(one(payload))
        except Exception as exc:
            malformed(exc)
    return decoded


def envelopes(recipient: str, manifest: str, payloads: list[bytes]) -> Envelopes:
    """The :class:`Envelopes` item carrying ``payloads`` (each an encoded message).

    Examples:
        >>> item = envelopes("/user/a", "builtins:int", [b"\\x01", b"\\x02"])
        >>> [bytes(p) for p in run_payloads(item.payloads)]
        [b'\\x01', b'\\x02']
    """
    run = msgspec.Raw(b"".join((array_head(len(payloads)), *payloads)))
    return Envelopes(recipient, manifest, run)


def batch_head(seq: int, count: int) -> bytes:
    """The encoded start of a :class:`Batch` of ``count`` items, up to its first item."""
    return _BATCH_HEAD + msgspec.msgpack.encode(seq) + array_head(count)


def batch_frame(seq: int, items: list[bytes]) -> bytes:
    """A :class:`Batch` frame from items already encoded one by one (the same bytes as
    encoding ``Batch(seq, decoded items)``)."""
    return b"".join((batch_head(seq, len(items)), *items))
