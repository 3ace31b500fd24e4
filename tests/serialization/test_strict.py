"""Strict mode, registration, and one registry per bound codec (no globals)."""

from __future__ import annotations

from typing import Any

import attrs
import msgspec
import pytest

from casty_trio import MsgpackSerializer, NodeAddress, SerializationError
from casty_trio.serialization import MessageCodec
from tests.serialization._messages import (
    Color,
    Deposit,
    FakeRefs,
    GetBalance,
    Nested,
    NotAMessage,
    Point,
    make_ref,
)

M = "tests.serialization._messages"


def _strict(*types: type) -> MessageCodec:
    return MsgpackSerializer(types=types, strict=True).bind(FakeRefs())


def test_serializer_is_a_frozen_value() -> None:
    serializer = MsgpackSerializer(types=[Deposit], strict=True)
    assert serializer.types == (Deposit,)
    assert serializer.strict
    assert MsgpackSerializer() == MsgpackSerializer(types=())
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        serializer.strict = False  # type: ignore[misc]


@pytest.mark.parametrize("bad", [object, NotAMessage, len, "app:Deposit", msgspec.Struct])
def test_serializer_rejects_non_message_types(bad: Any) -> None:
    with pytest.raises(TypeError, match="not a message type"):
        MsgpackSerializer(types=[bad])


def test_strict_allows_registered_types_builtins_and_refs() -> None:
    codec = _strict(Deposit, GetBalance)
    assert codec.strict
    for message in (Deposit(1), GetBalance(make_ref()), 5, "s", None, [1, {"a": [2]}], make_ref()):
        assert codec.decode(*codec.encode(message)) == message


def test_strict_refuses_unregistered_types_both_ways() -> None:
    codec = _strict(Deposit)
    lenient = MsgpackSerializer().bind(FakeRefs())
    manifest, payload = lenient.encode(Point(1, 2))
    with pytest.raises(SerializationError, match=f"'{M}:Point' is not a registered message type"):
        codec.decode(manifest, payload)
    with pytest.raises(SerializationError, match=f"{M}:Point: it is not registered"):
        codec.encode(Point(1, 2))


def test_nested_annotated_types_need_no_registration() -> None:
    codec = _strict(Nested)
    message = Nested(Point(0, 0), [Deposit(1)], {}, None, (1, "a"), Color.RED)
    assert codec.decode(*codec.encode(message)) == message


def test_register_allows_framework_types_later() -> None:
    codec = _strict()
    with pytest.raises(SerializationError):
        codec.encode(Deposit(1))
    with pytest.raises(SerializationError):
        codec.decode(f"{M}:Deposit", b"\x81\xa6amount\x01")
    codec.register(Deposit, Deposit, int)  # repeats and builtins are harmless
    assert codec.decode(*codec.encode(Deposit(1))) == Deposit(1)


def test_register_rejects_non_message_types_and_name_clashes() -> None:
    codec = _strict()
    with pytest.raises(TypeError, match="not a message type"):
        codec.register(NotAMessage)

    def make_clash() -> type:
        @attrs.frozen
        class Deposit:  # same module, different qualname: no clash
            amount: int

        return Deposit

    codec.register(make_clash())
    first, second = make_clash(), make_clash()
    codec2 = _strict(first)
    with pytest.raises(ValueError, match="another class is registered"):
        codec2.register(second)


def test_registered_local_class_round_trips() -> None:
    @attrs.frozen
    class Local:
        n: int

    codec = MsgpackSerializer(types=[Local]).bind(FakeRefs())
    manifest, payload = codec.encode(Local(3))
    assert "<locals>" in manifest
    assert codec.decode(manifest, payload) == Local(3)
    # an unregistered local class cannot be resolved by name
    with pytest.raises(SerializationError, match="register classes defined inside functions"):
        MsgpackSerializer().bind(FakeRefs()).decode(manifest, payload)


def test_each_bound_codec_has_its_own_registry() -> None:
    serializer = MsgpackSerializer(strict=True)
    a = serializer.bind(FakeRefs(NodeAddress("a", 1)))
    b = serializer.bind(FakeRefs(NodeAddress("b", 2)))
    a.register(Deposit)
    assert a.decode(*a.encode(Deposit(1))) == Deposit(1)
    with pytest.raises(SerializationError):
        b.encode(Deposit(1))
    assert serializer.types == ()


def test_non_strict_resolves_loaded_modules_without_registration() -> None:
    codec = MsgpackSerializer().bind(FakeRefs())
    assert not codec.strict
    payload = msgspec.msgpack.encode({"x": 1, "y": 2})
    assert codec.decode(f"{M}:Point", payload) == Point(1, 2)
