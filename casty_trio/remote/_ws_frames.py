"""Binary WebSocket data frames, built without wsproto's general machinery (the hot path).

Links send every message as one unfragmented binary frame, with no extension negotiated, so a
frame is a header, for a client the masking key (RFC 6455 §5.3: fresh and unpredictable, from
``os.urandom``), and the payload, masked by a client. Building it here costs a fraction of
``wsproto.Connection.send``, and it changes no protocol state, exactly as wsproto's own
sending of a whole data frame does not.
"""

from __future__ import annotations

import os
import struct

__all__ = ["binary_frame"]

_FIN_BINARY = 0x82
_MASKED = 0x80
_HEAD_SHORT = struct.Struct("!BB")
_HEAD_16 = struct.Struct("!BBH")
_HEAD_64 = struct.Struct("!BBQ")
# Masking: small payloads as one big-integer XOR, larger ones with four bytes.translate calls
# (_XOR[k] maps each byte b to b ^ k), whichever is faster for the size.
_XOR = tuple(bytes(b ^ k for b in range(256)) for k in range(256))
_XOR_AS_INT_UP_TO = 1024


def binary_frame(payload: bytes, masked: bool) -> bytes:
    """The frame carrying ``payload`` as one whole binary message (masked if ``masked``).

    Examples:
        >>> binary_frame(b"hi", masked=False)
        b'\\x82\\x02hi'
        >>> frame = binary_frame(b"hi", masked=True)
        >>> frame[:2], len(frame)
        (b'\\x82\\x82', 8)
    """
    n = len(payload)
    flag = _MASKED if masked else 0
    if n < 126:
        head = _HEAD_SHORT.pack(_FIN_BINARY, flag | n)
    elif n < 65536:
        head = _HEAD_16.pack(_FIN_BINARY, flag | 126, n)
    else:
        head = _HEAD_64.pack(_FIN_BINARY, flag | 127, n)
    if not masked:
        return head + payload
    key = os.urandom(4)
    if n <= _XOR_AS_INT_UP_TO:
        mask = int.from_bytes((key * ((n + 3) >> 2))[:n], "little")
        return head + key + (int.from_bytes(payload, "little") ^ mask).to_bytes(n, "little")
    data = bytearray(payload)
    for i in range(4):
        data[i::4] = data[i::4].translate(_XOR[key[i]])
    return head + key + data
