"""``ShardEnvelope`` is a small frozen value: equal by content, hashable, immutable, encodable."""

from __future__ import annotations

import pytest

from casty_trio import MsgpackSerializer, ShardEnvelope
from tests.serialization._messages import FakeRefs


def test_an_envelope_is_a_frozen_value() -> None:
    envelope = ShardEnvelope("user-42", "deposit")
    assert envelope == ShardEnvelope("user-42", "deposit")
    assert envelope != ShardEnvelope("user-43", "deposit")
    assert hash(envelope) == hash(ShardEnvelope("user-42", "deposit"))
    assert (envelope.entity_id, envelope.message) == ("user-42", "deposit")
    assert repr(envelope) == "ShardEnvelope(entity_id='user-42', message='deposit')"
    with pytest.raises(AttributeError):
        envelope.entity_id = "user-43"  # type: ignore[misc]


def test_an_envelope_takes_its_fields_by_keyword_too() -> None:
    assert ShardEnvelope(entity_id="a", message=1) == ShardEnvelope("a", 1)
    with pytest.raises(TypeError):
        ShardEnvelope("a")  # type: ignore[call-arg]


def test_an_envelope_survives_the_codec_when_registered() -> None:
    codec = MsgpackSerializer().bind(FakeRefs())
    codec.register(ShardEnvelope)
    manifest, payload = codec.encode(ShardEnvelope("acct-1", [1, 2]))
    assert codec.decode(manifest, payload) == ShardEnvelope("acct-1", [1, 2])
