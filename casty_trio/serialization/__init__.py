"""Serialization: the msgpack message codec, its type registry and the wire protocol Structs.

Imports only ``_core``, ``_errors`` and ``config``.
"""

from .._errors import SerializationError
from ._codec import REF_EXT_CODE, MessageCodec, RefCodec
from ._serializer import MsgpackSerializer
from ._wire import (
    PROTOCOL_VERSION,
    Batch,
    DeathNotice,
    Envelope,
    Hello,
    Item,
    Reject,
    Unwatch,
    Watch,
    WireMessage,
)

__all__ = [
    "PROTOCOL_VERSION",
    "REF_EXT_CODE",
    "Batch",
    "DeathNotice",
    "Envelope",
    "Hello",
    "Item",
    "MessageCodec",
    "MsgpackSerializer",
    "RefCodec",
    "Reject",
    "SerializationError",
    "Unwatch",
    "Watch",
    "WireMessage",
]
