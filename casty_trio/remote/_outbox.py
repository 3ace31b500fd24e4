"""The outbox of one peer link: what waits to be written, already encoded.

A tell encodes its message at once and queues the payload here behind the ref's cached
:func:`~casty_trio.serialization._wire.envelopes_header`. Consecutive messages with the same
header (one recipient, one type: the usual case under load) share one :class:`Run`, which
travels as one ``Envelopes`` item; watch notices are queued as encoded items and close the run
before them, so the send order is kept. The writer takes what fits a frame (:meth:`Outbox.take`)
and joins it behind a batch header (:func:`frame`); nothing is encoded twice and no Struct is
built per message.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import msgspec

from ..serialization._wire import Envelope, Envelopes, array_head, batch_head

__all__ = ["Entry", "Outbox", "Run", "frame", "single_frame", "split"]


class Run:
    """Consecutive messages for one recipient, of one type: an ``Envelopes`` item."""

    __slots__ = ("header", "payloads")

    def __init__(self, header: bytes, payloads: list[bytes]) -> None:
        self.header = header  # envelopes_header(recipient, manifest)
        self.payloads = payloads


Entry = bytes | Run  # an encoded watch notice, or a run of messages


class Outbox:
    """Entries queued for one peer, with the counts the link needs (all synchronous)."""

    __slots__ = ("_entries", "_open", "bytes", "count")

    def __init__(self) -> None:
        self._entries: deque[Entry] = deque()
        self._open: Run | None = None  # the run at the tail that new messages may join
        self.count = 0  # messages and notices queued
        self.bytes = 0  # their encoded size, about (array headers left out)

    def __bool__(self) -> bool:
        return bool(self._entries)

    def add_message(self, header: bytes, payload: bytes, size: int) -> None:
        """Queue ``payload`` (``size`` bytes) behind ``header``."""
        run = self._open
        if run is not None and run.header is header:  # refs cache their header: `is` suffices
            run.payloads.append(payload)
        else:
            self._open = run = Run(header, [payload])
            self._entries.append(run)
            self.bytes += len(header)
        self.count += 1
        self.bytes += size

    def add_control(self, data: bytes) -> None:
        self._entries.append(data)
        self._open = None
        self.count += 1
        self.bytes += len(data)

    def take(self, limit: int) -> tuple[list[Entry], int]:
        """The entries of the next frame, about ``limit`` bytes but at least one message,
        and how many messages and notices they hold."""
        if self.bytes <= limit:  # all of it (the usual case): no loop per message
            count = self.count
            return self.drain(), count
        queue = self._entries
        entries: list[Entry] = []
        count = size = 0
        while queue:
            entry = queue[0]
            if type(entry) is bytes:
                if entries and size + len(entry) > limit:
                    break
                entries.append(queue.popleft())
                count += 1
                size += len(entry)
                continue
            assert isinstance(entry, Run)
            payloads = entry.payloads
            room = limit - size - len(entry.header)
            n = used = 0
            for payload in payloads:
                if used + len(payload) > room and (entries or n):
                    break
                used += len(payload)
                n += 1
            if not n:
                break
            count += n
            size += len(entry.header) + used
            if n == len(payloads):
                entries.append(queue.popleft())
                if entry is self._open:
                    self._open = None
                continue
            # Split the run: the rest stays queued (and open to new messages if it was).
            entries.append(Run(entry.header, payloads[:n]))
            del payloads[:n]
            size -= len(entry.header)  # still counted for the rest
            break
        self.count -= count
        self.bytes -= size
        return entries, count

    def put_back(self, notices: list[bytes]) -> None:
        """Queue encoded notices again, at the front (a connection closed under them)."""
        self._entries.extendleft(reversed(notices))
        self.count += len(notices)
        self.bytes += sum(map(len, notices))

    def clear(self) -> None:
        # Emptied in place: a writer may hold the deque.
        self._entries.clear()
        self._open = None
        self.count = self.bytes = 0

    def drain(self) -> list[Entry]:
        """Take everything queued."""
        entries = list(self._entries)
        self.clear()
        return entries


def frame(seq: int, entries: list[Entry]) -> bytes:
    """The ``Batch`` frame numbered ``seq`` carrying ``entries``."""
    pieces = [batch_head(seq, len(entries))]
    for entry in entries:
        if type(entry) is bytes:
            pieces.append(entry)
        else:
            assert isinstance(entry, Run)
            pieces.append(entry.header)
            pieces.append(array_head(len(entry.payloads)))
            pieces += entry.payloads
    return b"".join(pieces)


def single_frame(seq: int, header: bytes, payload: bytes) -> bytes:
    """The ``Batch`` frame numbered ``seq`` carrying one message: ``frame(seq, [Run(header,
    [payload])])``, without building the run."""
    return b"".join((batch_head(seq, 1), header, _ONE, payload))


_ONE = array_head(1)


def split(
    entries: list[Entry], decoder: msgspec.msgpack.Decoder[Any]
) -> tuple[list[bytes], list[Envelope]]:
    """Entries as encoded notices and as the envelopes of their messages (for dead letters)."""
    notices: list[bytes] = []
    envelopes: list[Envelope] = []
    for entry in entries:
        if type(entry) is bytes:
            notices.append(entry)
            continue
        assert isinstance(entry, Run)
        head = decoder.decode(entry.header + b"\x90")  # the run without its payloads
        assert isinstance(head, Envelopes)
        for payload in entry.payloads:
            envelopes.append(Envelope(head.recipient, head.manifest, msgspec.Raw(payload)))
    return notices, envelopes
