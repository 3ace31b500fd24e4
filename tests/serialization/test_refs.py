"""Actor refs anywhere inside a message arrive as working refs of the receiving system."""

from __future__ import annotations

from typing import Any

import attrs
import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from casty_trio import ActorAddress, ActorRef, MsgpackSerializer, NodeAddress
from casty_trio.serialization import REF_EXT_CODE, Batch, Envelope, MessageCodec, WireMessage
from tests.serialization._messages import (
    FakeRefs,
    FakeTarget,
    Forest,
    FrozenRecord,
    GetBalance,
    Refs,
    Tree,
    make_ref,
)


def _walk_refs(value: Any) -> list[ActorRef[Any]]:
    """Every ActorRef inside ``value`` (messages, containers), in no particular order."""
    if isinstance(value, ActorRef):
        return [value]
    if isinstance(value, dict):
        return [r for k, v in value.items() for r in _walk_refs(k) + _walk_refs(v)]
    if isinstance(value, list | tuple | set | frozenset):
        return [r for item in value for r in _walk_refs(item)]
    if isinstance(value, msgspec.Struct):
        return [r for f in value.__struct_fields__ for r in _walk_refs(getattr(value, f))]
    if attrs.has(type(value)):
        return [r for f in attrs.fields(type(value)) for r in _walk_refs(getattr(value, f.name))]
    if hasattr(value, "__dataclass_fields__"):
        return [r for f in value.__dataclass_fields__ for r in _walk_refs(getattr(value, f))]
    return []


def _owned_by(refs: FakeRefs, decoded: Any) -> bool:
    owned = {id(t) for t in refs.targets}
    return all(id(ref._target) in owned for ref in _walk_refs(decoded))


def test_ref_field_round_trips_to_a_working_ref(codec: MessageCodec, refs: FakeRefs) -> None:
    sender = make_ref("/user/asker", system="bank", host="10.0.0.1", port=25520)
    decoded = codec.decode(*codec.encode(GetBalance(sender)))
    assert decoded == GetBalance(sender)
    assert decoded.reply_to.address == ActorAddress(
        "bank", "/user/asker", NodeAddress("10.0.0.1", 25520)
    )
    decoded.reply_to.tell(42)
    assert refs.targets[-1].delivered == [42]


def test_refs_in_every_position(codec: MessageCodec, refs: FakeRefs) -> None:
    a, b, c = make_ref("/a"), make_ref("/b", port=2), make_ref("/c", host="other")
    message = Refs(
        one=a,
        maybe=b,
        many=[a, b, c],
        pair=("p", c),
        by_key={"x": a},
        anything={"list": [a, 1], "nested": {"deep": [b]}, "ref": c},
    )
    decoded = codec.decode(*codec.encode(message))
    assert decoded == message
    assert len(_walk_refs(decoded)) == 10
    assert _owned_by(refs, decoded)


def test_optional_ref_absent(codec: MessageCodec) -> None:
    message = Refs(make_ref(), None, [], ("", make_ref()), {}, None)
    assert codec.decode(*codec.encode(message)) == message


def test_bare_ref_as_message(codec: MessageCodec, refs: FakeRefs) -> None:
    ref = make_ref("/solo")
    manifest, payload = codec.encode(ref)
    assert manifest == "casty_trio:ActorRef"
    decoded = codec.decode(manifest, payload)
    assert decoded == ref
    assert decoded._target is refs.targets[-1]


@pytest.mark.parametrize("container", [list, tuple, set, frozenset])
def test_refs_in_builtin_containers(codec: MessageCodec, container: Any) -> None:
    value = container([make_ref("/a"), make_ref("/b")])
    decoded = codec.decode(*codec.encode(value))
    assert decoded == value


def test_refs_as_dict_keys_and_values(codec: MessageCodec) -> None:
    value = {make_ref("/k"): make_ref("/v"), "plain": [make_ref("/w")]}
    assert codec.decode(*codec.encode(value)) == value


def test_local_ref_gets_the_sending_node() -> None:
    sender = MsgpackSerializer().bind(FakeRefs(NodeAddress("sender", 7)))
    receiver_refs = FakeRefs(NodeAddress("receiver", 8))
    receiver = MsgpackSerializer().bind(receiver_refs)
    local = ActorRef(ActorAddress("sys", "/me"), FakeTarget())
    decoded = receiver.decode(*sender.encode(FrozenRecord("r", local)))
    assert decoded.ref.address == ActorAddress("sys", "/me", NodeAddress("sender", 7))


def test_ref_wire_form_is_an_ext_of_system_path_host_port(codec: MessageCodec) -> None:
    _, payload = codec.encode(make_ref("/p", system="s", host="h", port=9))
    ext = msgspec.msgpack.decode(payload)
    assert isinstance(ext, msgspec.msgpack.Ext)
    assert ext.code == REF_EXT_CODE
    assert msgspec.msgpack.decode(ext.data) == ["s", "/p", "h", 9]


def test_payload_travels_raw_inside_wire_batch(codec: MessageCodec) -> None:
    """The remote layer's path: payload as msgspec.Raw in an Envelope, decoded at the end."""
    manifest, payload = codec.encode(GetBalance(make_ref("/reply")))
    frame = msgspec.msgpack.encode(Batch(1, [Envelope("/acc", manifest, msgspec.Raw(payload))]))
    batch = msgspec.msgpack.Decoder(WireMessage).decode(frame)
    assert isinstance(batch, Batch)
    envelope = batch.items[0]
    assert isinstance(envelope, Envelope)
    assert codec.decode(envelope.manifest, envelope.payload) == GetBalance(make_ref("/reply"))


# ---------------------------------------------------------------------------------- property

_refs = st.builds(
    make_ref,
    st.text("abc/", min_size=1, max_size=6).map(lambda p: "/" + p),
    system=st.sampled_from(["sys", "other"]),
    host=st.sampled_from(["h1", "h2"]),
    port=st.integers(0, 65535),
)
_text = st.text("aé/\x00", max_size=4)
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | _text
    | st.binary(max_size=4)
)
# Any-typed values: msgpack arrays decode as lists, so no tuples or sets here.
_any = st.recursive(
    _scalars | _refs,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=8,
)
_trees: st.SearchStrategy[Tree] = st.recursive(
    st.builds(Tree, _text, st.none() | _refs, st.just([]), st.just({})),
    lambda inner: st.builds(
        Tree,
        _text,
        st.none() | _refs,
        st.lists(inner, max_size=3),
        st.dictionaries(_text, _any, max_size=3),
    ),
    max_leaves=4,
)
_forests = st.builds(
    Forest,
    st.lists(_trees, max_size=2),
    st.lists(_refs, max_size=3).map(tuple),
    _any,
    st.none() | st.builds(FrozenRecord, _text, st.none() | _refs),
)


@settings(max_examples=300, deadline=None)
@given(_forests)
def test_nested_messages_with_refs_round_trip(message: Forest) -> None:
    sender = MsgpackSerializer().bind(FakeRefs(NodeAddress("sender", 1)))
    receiver_refs = FakeRefs(NodeAddress("receiver", 2))
    receiver = MsgpackSerializer().bind(receiver_refs)
    decoded = receiver.decode(*sender.encode(message))
    assert decoded == message
    assert len(_walk_refs(decoded)) == len(_walk_refs(message))
    assert _owned_by(receiver_refs, decoded)
