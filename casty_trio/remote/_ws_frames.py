"""Binary WebSocket data frames, built and read without wsproto's general machinery (the hot
path).

Links send every message as one unfragmented binary frame, with no extension negotiated, so a
frame is a header, for a client the masking key (RFC 6455 §5.3: fresh and unpredictable, from
``os.urandom``), and the payload, masked by a client. Building it here costs a fraction of
``wsproto.Connection.send``, and it changes no protocol state, exactly as wsproto's own
sending of a whole data frame does not. Reading: :func:`frame_extent` finds where a frame
ends, so that the connection can take whole binary frames itself and hand every other frame
to wsproto whole (its parser then never holds part of a frame).
"""

from __future__ import annotations

import os
import struct

__all__ = ["FIN_BINARY", "MASKED", "binary_frame", "frame_extent", "unmask"]

FIN_BINARY = 0x82  # first byte of a whole binary message: FIN, no RSV bit, opcode 2
MASKED = 0x80  # the mask bit of the second byte
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
    flag = MASKED if masked else 0
    if n < 126:
        head = _HEAD_SHORT.pack(FIN_BINARY, flag | n)
    elif n < 65536:
        head = _HEAD_16.pack(FIN_BINARY, flag | 126, n)
    else:
        head = _HEAD_64.pack(FIN_BINARY, flag | 127, n)
    if not masked:
        return head + payload
    key = os.urandom(4)
    return head + key + unmask(payload, key)


def unmask(payload: bytes | bytearray, key: bytes | bytearray) -> bytes:
    """``payload`` XOR the 4-byte masking ``key`` repeated (masking and unmasking alike).

    Examples:
        >>> unmask(unmask(b"payload", b"abcd"), b"abcd")
        b'payload'
    """
    n = len(payload)
    if n <= _XOR_AS_INT_UP_TO:
        mask = int.from_bytes((key * ((n + 3) >> 2))[:n], "little")
        return (int.from_bytes(payload, "little") ^ mask).to_bytes(n, "little")
    data = bytearray(payload)
    for i in range(4):
        data[i::4] = data[i::4].translate(_XOR[key[i]])
    return bytes(data)


def frame_extent(buffer: bytes | bytearray, start: int) -> tuple[int, int] | None:
    """Where the frame beginning at ``buffer[start]`` has its payload: ``(payload_start,
    payload_length)`` (a masking key, if any, is the 4 bytes before the payload), or None while
    its header is incomplete. Any opcode; nothing is validated here.

    Examples:
        >>> frame_extent(b"\\x82\\x05hello", 0)
        (2, 5)
        >>> frame_extent(b"\\x82\\xfe\\x01", 0) is None
        True
    """
    available = len(buffer) - start
    if available < 2:
        return None
    second = buffer[start + 1]
    length = second & 0x7F
    head = 2
    if length == 126:
        if available < 4:
            return None
        length = int.from_bytes(buffer[start + 2 : start + 4], "big")
        head = 4
    elif length == 127:
        if available < 10:
            return None
        length = int.from_bytes(buffer[start + 2 : start + 10], "big")
        head = 10
    if second & MASKED:
        head += 4
    if available < head:
        return None
    return start + head, length
