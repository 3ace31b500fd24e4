"""The sending side builds frames from items encoded one by one: the bytes must be exactly
those of encoding the protocol Structs, so any reader (ours or another implementation) decodes
them as the protocol says."""

from __future__ import annotations

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from casty_trio.serialization._wire import (
    Batch,
    DeathNotice,
    Envelope,
    Item,
    Unwatch,
    Watch,
    WireMessage,
    array_head,
    batch_frame,
    envelope_header,
    envelopes,
    envelopes_header,
)

TEXT = st.text(max_size=300)
PAYLOADS = st.one_of(st.integers(-(2**63), 2**64 - 1), st.text(), st.binary(max_size=70_000)).map(
    msgspec.msgpack.encode
)
ITEMS = st.one_of(
    st.builds(lambda r, m, p: Envelope(r, m, msgspec.Raw(p)), TEXT, TEXT, PAYLOADS),
    st.builds(
        envelopes,
        TEXT,
        TEXT,
        st.lists(PAYLOADS, max_size=20),
    ),
    st.builds(Watch, TEXT),
    st.builds(Unwatch, TEXT),
    st.builds(DeathNotice, TEXT),
)
SEQS = st.integers(0, 2**63 - 1)


@given(TEXT, TEXT, PAYLOADS)
def test_envelope_header_plus_payload_is_the_encoded_envelope(
    recipient: str, manifest: str, payload: bytes
) -> None:
    expected = msgspec.msgpack.encode(Envelope(recipient, manifest, msgspec.Raw(payload)))
    assert envelope_header(recipient, manifest) + payload == expected


@given(TEXT, TEXT, st.lists(PAYLOADS, max_size=40))
def test_envelopes_header_plus_payloads_is_the_encoded_item(
    recipient: str, manifest: str, payloads: list[bytes]
) -> None:
    expected = msgspec.msgpack.encode(envelopes(recipient, manifest, payloads))
    encoded = envelopes_header(recipient, manifest) + array_head(len(payloads))
    assert encoded + b"".join(payloads) == expected


@given(SEQS, st.lists(ITEMS, max_size=20))
def test_batch_frame_is_the_encoded_batch(seq: int, items: list[Item]) -> None:
    frame = batch_frame(seq, [msgspec.msgpack.encode(item) for item in items])
    assert frame == msgspec.msgpack.encode(Batch(seq, items))
    assert msgspec.msgpack.Decoder(WireMessage).decode(frame) == Batch(seq, items)


def test_batch_frame_array_header_sizes() -> None:
    watch = msgspec.msgpack.encode(Watch("/a"))
    for count in (0, 15, 16, 0xFFFF, 0x10000):
        frame = batch_frame(7, [watch] * count)
        assert frame == msgspec.msgpack.encode(Batch(7, [Watch("/a")] * count))
