"""What the decoder refuses: unknown, forbidden and non-message types, and bad payloads."""

from __future__ import annotations

import subprocess  # noqa: F401  (imported so "subprocess:Popen" resolves to a loaded module)
import sys
import types
from typing import Any

import msgspec
import pytest

from casty_trio import CastyError, MsgpackSerializer, SerializationError
from casty_trio.serialization import MessageCodec
from tests.serialization._messages import (
    Deposit,
    FakeRefs,
    FrozenRecord,
    GetBalance,
    Holder,
    Mutable,
    MyInt,
    NotAMessage,
    make_ref,
)

M = "tests.serialization._messages"


def test_serialization_error_is_a_casty_error() -> None:
    assert issubclass(SerializationError, CastyError)


@pytest.mark.parametrize(
    "manifest",
    [
        "subprocess:Popen",
        "os:system",
        "builtins:eval",
        "builtins:exec",
        "builtins:object",
        "builtins:type",
        "builtins:Exception",
        "os:path",
        "os:path.join",
        "msgspec:Struct",
        "enum:Enum",
        f"{M}:NotAMessage",
        f"{M}:MyInt",
        f"{M}:not_a_class",
        f"{M}:make_ref",
    ],
)
def test_non_message_types_are_refused(codec: MessageCodec, manifest: str) -> None:
    with pytest.raises(SerializationError, match="not a message type") as info:
        codec.decode(manifest, msgspec.msgpack.encode([]))
    assert repr(manifest) in str(info.value)


def test_unknown_module_is_not_imported(codec: MessageCodec) -> None:
    assert "this" not in sys.modules  # importing it would print the Zen of Python
    with pytest.raises(SerializationError, match="not imported"):
        codec.decode("this:Anything", b"\x90")
    assert "this" not in sys.modules
    with pytest.raises(SerializationError, match="'no_such_module_xyz' is not imported"):
        codec.decode("no_such_module_xyz:Foo", b"\x90")


def test_unknown_attribute(codec: MessageCodec) -> None:
    with pytest.raises(SerializationError, match="has no attribute 'Nope'"):
        codec.decode(f"{M}:Nope", b"\x90")
    with pytest.raises(SerializationError, match="has no attribute"):
        codec.decode(f"{M}:Outer.Missing", b"\x90")


def test_module_getattr_is_never_called(
    codec: MessageCodec, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    module = types.ModuleType("lazy_mod_for_test")

    def __getattr__(name: str) -> Any:
        calls.append(name)
        return Deposit

    module.__getattr__ = __getattr__  # type: ignore[method-assign]
    monkeypatch.setitem(sys.modules, "lazy_mod_for_test", module)
    with pytest.raises(SerializationError, match="no attribute"):
        codec.decode("lazy_mod_for_test:Deposit", b"\x90")
    assert calls == []


def test_alias_is_not_a_manifest(codec: MessageCodec) -> None:
    with pytest.raises(SerializationError, match=f"it is '{M}:Deposit'"):
        codec.decode(f"{M}:Alias", msgspec.msgpack.encode({"amount": 1}))


@pytest.mark.parametrize("manifest", ["nocolon", ":Deposit", f"{M}:", ""])
def test_malformed_manifest(codec: MessageCodec, manifest: str) -> None:
    with pytest.raises(SerializationError, match="malformed manifest"):
        codec.decode(manifest, b"\x90")


@pytest.mark.parametrize(
    "payload", [b"", b"\xc1", b"\x92\x01", b"\x81\xa6amount", b"\xff" * 3 + b"\x00"]
)
def test_malformed_payload(codec: MessageCodec, payload: bytes) -> None:
    with pytest.raises(SerializationError, match=f"cannot decode '{M}:Deposit'"):
        codec.decode(f"{M}:Deposit", payload)


@pytest.mark.parametrize(
    ("manifest", "value"),
    [
        (f"{M}:Deposit", "hello"),
        (f"{M}:Deposit", {"amount": "ten"}),
        (f"{M}:Deposit", {}),
        (f"{M}:GetBalance", {"reply_to": 5}),
        ("builtins:int", "1"),
        ("builtins:bool", 1),
        ("builtins:NoneType", 0),
        ("casty_trio:ActorRef", "ref"),
    ],
)
def test_wrong_payload_shape(codec: MessageCodec, manifest: str, value: Any) -> None:
    with pytest.raises(SerializationError, match=f"cannot decode {manifest!r}"):
        codec.decode(manifest, msgspec.msgpack.encode(value))


def test_unknown_extension_and_garbage_ref(codec: MessageCodec) -> None:
    other_ext = msgspec.msgpack.encode({"thing": msgspec.msgpack.Ext(5, b"x")})
    with pytest.raises(SerializationError, match="unknown msgpack extension type 5"):
        codec.decode(f"{M}:Holder", other_ext)
    bad_ref = msgspec.msgpack.encode({"reply_to": msgspec.msgpack.Ext(1, b"\xc1")})
    with pytest.raises(SerializationError, match=f"{M}:GetBalance"):
        codec.decode(f"{M}:GetBalance", bad_ref)
    wrong_shape = msgspec.msgpack.encode(
        msgspec.msgpack.Ext(1, msgspec.msgpack.encode(["s", "/p"]))
    )
    with pytest.raises(SerializationError):
        codec.decode("casty_trio:ActorRef", wrong_shape)


def test_deep_nesting_is_an_error_not_a_crash(codec: MessageCodec) -> None:
    with pytest.raises(SerializationError):
        codec.decode("builtins:list", b"\x91" * 200_000 + b"\x01")


def test_failed_lookups_are_not_cached(codec: MessageCodec) -> None:
    codec.decode(*codec.encode(Deposit(1)))
    cached = dict(codec._decoders)
    for i in range(1000):
        with pytest.raises(SerializationError):
            codec.decode(f"garbage{i}:X{i}", b"\x90")
    assert codec._decoders == cached


def test_a_ref_codec_failure_is_a_serialization_error() -> None:
    class Broken(FakeRefs):
        def ref_from_wire(self, system: str, path: str, host: str, port: int) -> Any:
            raise RuntimeError("no such node")

    codec = MsgpackSerializer().bind(Broken())
    manifest, payload = codec.encode(GetBalance(make_ref()))
    with pytest.raises(SerializationError, match="no such node"):
        codec.decode(manifest, payload)


# ---------------------------------------------------------------------------------- encoding


@pytest.mark.parametrize(
    ("message", "named"),
    [
        (Holder(lambda: None), f"{M}:Holder"),
        (Holder(object()), f"{M}:Holder"),
        (FrozenRecord("x", ref=NotAMessage()), f"{M}:FrozenRecord"),  # type: ignore[arg-type]
        ([1, NotAMessage()], "builtins:list"),
        (Mutable([1, 2**70]), f"{M}:Mutable"),
    ],
)
def test_unencodable_content_names_the_type(codec: MessageCodec, message: Any, named: str) -> None:
    with pytest.raises(SerializationError, match=f"cannot encode a message of type {named}"):
        codec.encode(message)


def test_unencodable_reason_names_the_culprit(codec: MessageCodec) -> None:
    with pytest.raises(SerializationError, match=r"builtins\.function values are not serializable"):
        codec.encode(Holder(lambda: None))


@pytest.mark.parametrize("message", [NotAMessage(), MyInt(3), object(), print, Deposit])
def test_non_message_types_are_not_encoded(codec: MessageCodec, message: Any) -> None:
    with pytest.raises(SerializationError, match="not a message type"):
        codec.encode(message)


def test_encode_error_leaves_the_codec_usable(codec: MessageCodec) -> None:
    with pytest.raises(SerializationError):
        codec.encode(Holder(lambda: None))
    assert codec.decode(*codec.encode(Holder([1]))) == Holder([1])
