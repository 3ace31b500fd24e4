"""Fixtures: a codec bound to a fake RefCodec, and a second one standing for another node."""

from __future__ import annotations

import pytest

from casty_trio import MsgpackSerializer, NodeAddress
from casty_trio.serialization import MessageCodec
from tests.serialization._messages import FakeRefs


@pytest.fixture
def refs() -> FakeRefs:
    return FakeRefs(NodeAddress("receiver", 2))


@pytest.fixture
def codec(refs: FakeRefs) -> MessageCodec:
    return MsgpackSerializer().bind(refs)
