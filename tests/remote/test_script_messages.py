"""A message class of the script run as ``__main__``, told to another node: a clear error at
the tell, unless every node registered it; local tells never encode, so they are unaffected."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from casty_trio import MsgpackSerializer, SerializationError
from casty_trio.remote import RemoteActorSystem
from casty_trio.testing import SimNetwork, TestProbe
from tests.remote._messages import Note
from tests.remote._support import nodes, remote


def script_class() -> type:
    """A message class as if defined at the top of a script run as ``python app.py``."""

    @attrs.frozen
    class Order:
        n: int

    Order.__module__ = "__main__"
    Order.__qualname__ = "Order"
    return Order


async def test_a_script_class_fails_at_the_remote_tell(autojump_clock: Any) -> None:
    order = script_class()
    net = SimNetwork(seed=30)
    async with nodes(net, "a", "b") as (a, b):
        sink = TestProbe(b, "sink")
        ref = remote(a, "/sink", b)
        with pytest.raises(SerializationError, match="__main__:Order") as info:
            ref.tell(order(1))
        assert "define it in a module every node imports" in str(info.value)
        with pytest.raises(SerializationError, match="__main__:Order"):  # every time
            ref.tell(order(2))
        ref.tell(Note("fine"))
        await sink.expect_message(Note("fine"), within=5)
        local = TestProbe(a, "local")
        local.ref.tell(order(3))  # a local tell does not encode
        await local.expect_message(order(3), within=5)


async def test_a_script_class_registered_on_every_node_is_delivered(
    autojump_clock: Any,
) -> None:
    order = script_class()
    net = SimNetwork(seed=31)
    serializer = MsgpackSerializer(types=[order])
    async with (
        RemoteActorSystem("app", transport=net.transport("a"), serializer=serializer) as a,
        RemoteActorSystem("app", transport=net.transport("b"), serializer=serializer) as b,
    ):
        sink = TestProbe(b, "sink")
        remote(a, "/sink", b).tell(order(1))
        await sink.expect_message(order(1), within=5)
