"""The outbox queues encoded messages in runs and cuts frames: whatever the sequence of tells
and watch notices, the frames decode to the same items in the same order, each frame within
the size limit unless it carries a single message, and the counts add up."""

from __future__ import annotations

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from casty_trio.remote._outbox import Outbox, Run, frame, split
from casty_trio.serialization._wire import (
    Batch,
    Envelope,
    Envelopes,
    Watch,
    WireMessage,
    envelopes_header,
    run_payloads,
)

ENCODE = msgspec.msgpack.encode
DECODER = msgspec.msgpack.Decoder(WireMessage)
ITEM_DECODER = msgspec.msgpack.Decoder(Envelope | Envelopes | Watch)
# A few shared headers, as refs cache them: (recipient, manifest) -> the same bytes object.
HEADERS = {key: envelopes_header(*key) for key in [("/a", "m:X"), ("/a", "m:Y"), ("/b", "m:X")]}
OPS = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(sorted(HEADERS)), st.binary(max_size=300)),
        st.builds(lambda path: ("watch", path), st.sampled_from(["/a", "/c"])),
    ),
    max_size=60,
)


def _fill(ops: list[tuple[object, object]]) -> tuple[Outbox, list[tuple[str, str, bytes] | Watch]]:
    outbox = Outbox()
    expected: list[tuple[str, str, bytes] | Watch] = []
    for key, value in ops:
        if key == "watch":
            assert isinstance(value, str)
            outbox.add_control(ENCODE(Watch(value)))
            expected.append(Watch(value))
        else:
            assert isinstance(key, tuple) and isinstance(value, bytes)
            payload = ENCODE(value)
            outbox.add_message(HEADERS[key], payload, len(payload))
            expected.append((key[0], key[1], payload))
    return outbox, expected


def _flatten(items: list[object]) -> list[tuple[str, str, bytes] | Watch]:
    flat: list[tuple[str, str, bytes] | Watch] = []
    for item in items:
        if isinstance(item, Envelopes):
            flat += [(item.recipient, item.manifest, bytes(p)) for p in run_payloads(item.payloads)]
        else:
            assert isinstance(item, Watch)
            flat.append(item)
    return flat


@given(OPS, st.integers(1, 2000))
def test_frames_carry_everything_in_order_within_the_limit(
    ops: list[tuple[object, object]], limit: int
) -> None:
    outbox, expected = _fill(ops)
    received: list[object] = []
    seq = 0
    while outbox:
        before = outbox.count
        entries, count = outbox.take(limit)
        assert entries and count == before - outbox.count
        seq += 1
        data = frame(seq, entries)
        batch = DECODER.decode(data)
        assert isinstance(batch, Batch) and batch.seq == seq
        flat = _flatten(list(batch.items))
        assert len(flat) == count
        if len(data) > limit + 16:  # batch and array headers aside
            assert count == 1, (len(data), limit, count)
        received += flat
    assert received == expected
    assert outbox.count == 0 and outbox.bytes == 0


@given(OPS)
def test_split_gives_notices_and_envelopes_back(ops: list[tuple[object, object]]) -> None:
    outbox, expected = _fill(ops)
    notices, envelopes = split(outbox.drain(), ITEM_DECODER)
    assert [msgspec.msgpack.decode(n, type=Watch) for n in notices] == [
        item for item in expected if isinstance(item, Watch)
    ]
    assert [(e.recipient, e.manifest, bytes(e.payload)) for e in envelopes] == [
        item for item in expected if not isinstance(item, Watch)
    ]
    assert not outbox and outbox.count == 0


def test_messages_for_one_recipient_and_type_share_a_run() -> None:
    outbox, _ = _fill(
        [(("/a", "m:X"), b"1"), (("/a", "m:X"), b"2"), ("watch", "/a"), (("/a", "m:X"), b"3")]
    )
    entries, count = outbox.take(10_000)
    assert count == 4
    assert [type(e) for e in entries] == [Run, bytes, Run]
    first = entries[0]
    assert isinstance(first, Run) and len(first.payloads) == 2
