"""Every kind of message survives encode -> decode with its type and manifest."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from casty_trio.serialization import MessageCodec
from tests.serialization._messages import (
    Box,
    Color,
    Compact,
    Counter,
    Deposit,
    FrozenRecord,
    Mutable,
    Nested,
    Outer,
    PlainRecord,
    Point,
    Priority,
)

M = "tests.serialization._messages"


@pytest.mark.parametrize(
    ("value", "manifest"),
    [
        (0, "builtins:int"),
        (-(2**63), "builtins:int"),
        (2**64 - 1, "builtins:int"),
        (1.5, "builtins:float"),
        ("héllo", "builtins:str"),
        (b"\x00\xff", "builtins:bytes"),
        (True, "builtins:bool"),
        (False, "builtins:bool"),
        (None, "builtins:NoneType"),
        ([1, "a", None], "builtins:list"),
        ({"a": 1, "b": [2]}, "builtins:dict"),
        ((1, "a"), "builtins:tuple"),
        ({1, 2}, "builtins:set"),
        (frozenset({"x"}), "builtins:frozenset"),
    ],
)
def test_builtins(codec: MessageCodec, value: Any, manifest: str) -> None:
    got_manifest, payload = codec.encode(value)
    assert got_manifest == manifest
    decoded = codec.decode(manifest, payload)
    assert decoded == value
    assert type(decoded) is type(value)


@pytest.mark.parametrize(
    ("message", "manifest"),
    [
        (Point(1, 2), f"{M}:Point"),
        (Compact("c", [1.0, 2.5]), f"{M}:Compact"),
        (Mutable([1, 2]), f"{M}:Mutable"),
        (Deposit(10), f"{M}:Deposit"),
        (Counter(3, "x"), f"{M}:Counter"),
        (Counter(), f"{M}:Counter"),
        (FrozenRecord("r"), f"{M}:FrozenRecord"),
        (PlainRecord(["a"], 2.0), f"{M}:PlainRecord"),
        (Color.GREEN, f"{M}:Color"),
        (Priority.HIGH, f"{M}:Priority"),
        (Outer.Inner(4), f"{M}:Outer.Inner"),
        (Outer(Outer.Inner(5)), f"{M}:Outer"),
    ],
)
def test_message_types(codec: MessageCodec, message: Any, manifest: str) -> None:
    got_manifest, payload = codec.encode(message)
    assert got_manifest == manifest
    decoded = codec.decode(manifest, payload)
    assert decoded == message
    assert type(decoded) is type(message)


def test_nested_types_decode_by_annotation(codec: MessageCodec) -> None:
    message = Nested(
        point=Point(0, -1),
        deposits=[Deposit(1), Deposit(2)],
        by_name={"a": FrozenRecord("a"), "b": FrozenRecord("b")},
        maybe=Deposit(3),
        pair=(7, "seven"),
        color=Color.RED,
        records=(PlainRecord(["t"]),),
    )
    decoded = codec.decode(*codec.encode(message))
    assert decoded == message
    assert type(decoded.deposits[0]) is Deposit
    assert type(decoded.by_name["a"]) is FrozenRecord
    assert type(decoded.pair) is tuple
    assert type(decoded.records[0]) is PlainRecord


def test_optional_none(codec: MessageCodec) -> None:
    message = Nested(Point(0, 0), [], {}, None, (0, ""), Color.RED)
    assert codec.decode(*codec.encode(message)) == message


def test_generic_container_message(codec: MessageCodec) -> None:
    message = Box([1, 2, 3])
    assert codec.decode(*codec.encode(message)) == message


def test_user_object_in_any_field_arrives_as_plain_data(codec: MessageCodec) -> None:
    # Documented limitation: Any-typed fields carry builtins and refs; give nested messages
    # a typed field to keep their type.
    decoded = codec.decode(*codec.encode(Box(Deposit(5))))
    assert decoded == Box({"amount": 5})


def test_decoder_is_built_once_per_manifest(codec: MessageCodec) -> None:
    manifest, payload = codec.encode(Deposit(1))
    codec.decode(manifest, payload)
    decoder = codec._decoders[manifest]
    for _ in range(3):
        codec.decode(manifest, payload)
    assert codec._decoders[manifest] is decoder


def test_decode_accepts_raw_and_memoryview(codec: MessageCodec) -> None:
    manifest, payload = codec.encode(Deposit(9))
    assert codec.decode(manifest, msgspec.Raw(payload)) == Deposit(9)
    assert codec.decode(manifest, memoryview(payload)) == Deposit(9)
