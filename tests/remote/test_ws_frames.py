"""The links' own binary frames must be what wsproto (and any RFC 6455 peer) reads back."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, BytesMessage, Request

from casty_trio.remote._ws_frames import binary_frame


def _pair() -> tuple[WSConnection, WSConnection]:
    client = WSConnection(ConnectionType.CLIENT)
    server = WSConnection(ConnectionType.SERVER)
    server.receive_data(client.send(Request(host="peer", target="/")))
    list(server.events())
    client.receive_data(server.send(AcceptConnection()))
    list(client.events())
    return client, server


def _read(receiver: WSConnection, data: bytes) -> list[object]:
    receiver.receive_data(data)
    return list(receiver.events())


@pytest.mark.parametrize(
    "size", [0, 1, 3, 4, 5, 125, 126, 127, 1023, 1024, 1025, 65535, 65536, 70_000]
)
def test_every_length_form_reads_back_whole_from_both_sides(size: int) -> None:
    client, server = _pair()
    payload = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    for sender, receiver in ((client, server), (server, client)):
        events = _read(receiver, binary_frame(payload, masked=sender.client))
        assert len(events) == 1
        event = events[0]
        assert isinstance(event, BytesMessage)
        assert event.data == payload and event.message_finished


@given(st.lists(st.binary(max_size=3000), min_size=1, max_size=5))
def test_consecutive_frames_read_back_in_order(payloads: list[bytes]) -> None:
    _, server = _pair()
    data = b"".join(binary_frame(p, masked=True) for p in payloads)
    events = _read(server, data)
    assert [e.data for e in events if isinstance(e, BytesMessage)] == payloads


def test_a_client_frame_is_masked_with_a_fresh_key_each_time() -> None:
    payload = b"\x00" * 64
    first, second = binary_frame(payload, masked=True), binary_frame(payload, masked=True)
    assert first[1] & 0x80 and first[2:6] != second[2:6]
    assert first[6:] != payload  # masked bytes are on the wire, not the payload
    assert binary_frame(payload, masked=False) == b"\x82\x40" + payload


def test_a_handshake_leaves_the_frames_behind_it_to_the_connection() -> None:
    from wsproto.handshake import H11Handshake

    from casty_trio.remote._ws_connection import fresh_protocol

    client = H11Handshake(ConnectionType.CLIENT)
    server = H11Handshake(ConnectionType.SERVER)
    request = client.send(Request(host="peer", target="/"))
    behind = binary_frame(b"first", masked=True) + binary_frame(b"sec", masked=True)[:3]
    server.receive_data(request + behind)  # the frames came in the same read as the request
    list(server.events())
    server.send(AcceptConnection())
    protocol, buffered = fresh_protocol(server)
    assert buffered == behind
    protocol.receive_data(b"")
    assert list(protocol.events()) == []  # the fresh protocol holds none of them
