"""Cluster wire forms: gossip round trips, msgpack round trips, tags, and garbled input refused.

Pure functions only: no trio, no I/O.
"""

from __future__ import annotations

import doctest
import re
from collections.abc import Callable
from random import Random
from types import ModuleType
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from casty_trio import NodeAddress, SerializationError
from casty_trio.cluster import Gossip, Member, MemberStatus, ObserverRecord, VectorClock
from casty_trio.cluster import _wire as wire_module
from casty_trio.cluster._membership import (
    UniqueAddress,
    down,
    join,
    leader_actions,
    leave,
    mark_reachable,
    mark_unreachable,
    merge,
    seen_by,
)
from casty_trio.cluster._wire import (
    CLUSTER_MESSAGES,
    BarrierArrive,
    BarrierRelease,
    GossipPush,
    GossipWire,
    Heartbeat,
    HeartbeatAck,
    Join,
    JoinRefused,
    Leave,
    MemberWire,
    NodeStatus,
    ObserverWire,
    StatusRequest,
    UniqueAddressWire,
    Welcome,
    gossip_from_wire,
    gossip_to_wire,
    member_from_wire,
    member_to_wire,
    unique_address_from_wire,
    unique_address_to_wire,
)
from casty_trio.serialization import MessageCodec
from casty_trio.serialization import _wire as transport_wire
from tests.serialization._messages import FakeRefs, make_ref

S = MemberStatus

# Four addresses; address 0 also has a second incarnation (uid 2): a restarted node.
ADDRESSES = [NodeAddress("10.0.0.1", 25520 + i) for i in range(4)]
UNIQUES = [UniqueAddress(a, 1) for a in ADDRESSES] + [UniqueAddress(ADDRESSES[0], 2)]
ROLES = {0: frozenset({"web"}), 1: frozenset(), 2: frozenset({"web", "db"}), 3: frozenset({"db"})}
A, B, C, D, A2 = UNIQUES


def member_of(unique: UniqueAddress) -> Member:
    index = ADDRESSES.index(unique.node)
    return Member(unique, f"node-{index}", S.joining, ROLES[index])


def ua(unique: UniqueAddress) -> UniqueAddressWire:
    return unique_address_to_wire(unique)


# --------------------------------------------------------------------------- strategies


OPS = ["gossip", "gossip", "gossip", "join", "leave", "down", "unreachable", "reachable", "lead"]


@st.composite
def gossips(draw: st.DrawFn) -> Gossip:
    """States real nodes hold: nodes change their own copies and gossip them to each other.

    Node ``UNIQUES[0]`` forms the cluster; the others join through a running node (restarted
    incarnation ``A2`` included). Each change is made by the node holding the copy, as the
    cluster daemon does; a receiver merges, marks the result seen, then leads if it can.
    """
    first = UNIQUES[0]
    states = {first: leader_actions(join(Gossip(), member_of(first), by=first), first)}
    rnd = Random(draw(st.integers(0, 2**32)))
    steps = [
        (rnd.choice(OPS), rnd.randrange(10), rnd.randrange(10))
        for _ in range(draw(st.integers(1, 40)))
    ]
    for kind, i, j in steps:
        running = sorted(states)
        y = running[j % len(running)]  # the node acting on its copy
        g = states[y]
        if kind == "join":
            x = UNIQUES[i % len(UNIQUES)]
            if x not in states:
                states[y] = join(g, member_of(x), by=y)
                states[x] = seen_by(merge(Gossip(), states[y]), x)  # the Welcome
            continue
        known = sorted(g.members)
        x = known[i % len(known)]
        if kind == "gossip":  # y pushes its copy to x
            if x in states:
                states[x] = leader_actions(seen_by(merge(states[x], g), x), x)
        elif kind == "leave":
            states[y] = leave(g, y, by=y)
        elif kind == "down":
            states[y] = down(g, x, by=y)
        elif kind == "unreachable":
            states[y] = mark_unreachable(g, y, x)
        elif kind == "reachable":
            states[y] = mark_reachable(g, y, x)
        else:
            states[y] = leader_actions(g, y)
    return states[draw(st.sampled_from(sorted(states)))]


@st.composite
def mutated_wires(draw: st.DrawFn) -> GossipWire:
    """The wire form of a real gossip with one random change: often garbled, sometimes not."""
    w = gossip_to_wire(draw(gossips()))
    replace = msgspec.structs.replace
    stranger = draw(st.sampled_from([UniqueAddressWire("10.9.9.9", 1, 1), *map(ua, UNIQUES)]))
    kind = draw(
        st.sampled_from(
            ["member", "drop", "dup", "seen", "observer", "subject", "version", "clock"]
        )
    )
    if kind in ("member", "drop", "dup"):
        k = draw(st.integers(0, len(w.members) - 1))
        members = list(w.members)
        if kind == "drop":
            del members[k]
        elif kind == "dup":
            members.append(members[k])
        else:
            field, value = draw(
                st.sampled_from(
                    [
                        ("status", "gone"),
                        ("status", "up"),
                        ("status", "joining"),
                        ("status", "removed"),
                        ("host", ""),
                        ("port", 0),
                        ("port", 65536),
                        ("uid", -1),
                        ("uid", 3),
                        ("up_number", -1),
                        ("up_number", 0),
                        ("up_number", 9),
                        ("roles", ["db", "db"]),
                        ("roles", ["z"]),
                    ]
                )
            )
            members[k] = replace(members[k], **{field: value})
        return replace(w, members=members)
    if kind == "seen":
        return replace(w, seen=[*w.seen, stranger])
    if kind == "observer":
        version = draw(st.sampled_from([-1, 0, 5]))
        observer = ObserverWire(stranger, version, draw(st.lists(st.sampled_from(UNIQUES).map(ua))))
        return replace(w, reachability=[*w.reachability, observer])
    if kind == "subject" and w.reachability:
        k = draw(st.integers(0, len(w.reachability) - 1))
        records = list(w.reachability)
        records[k] = replace(records[k], unreachable=[*records[k].unreachable, stranger])
        return replace(w, reachability=records)
    key = draw(st.sampled_from(["", "x", *w.version]))
    return replace(w, version={**w.version, key: draw(st.integers(-2, 2))})


# Arbitrary wire values over small domains, so that entries collide, repeat and reference each
# other; mostly valid values, so that some pass and the rest fail in many different places.
hosts = st.sampled_from(["10.0.0.1"] * 4 + ["10.0.0.2"] * 4 + [""])
ports = st.sampled_from([25520] * 4 + [25521] * 4 + [0, 70000])
uids = st.sampled_from([1] * 4 + [2] * 4 + [-1])
address_wires = st.builds(UniqueAddressWire, hosts, ports, uids)
member_wires = st.builds(
    MemberWire,
    hosts,
    ports,
    uids,
    st.sampled_from(["a", "b"]),
    st.sampled_from([*(s.value for s in S)] * 2 + ["UP", ""]),
    st.lists(st.sampled_from(["web", "db"]), max_size=2, unique=True) | st.just(["x", "x"]),
    st.sampled_from([1, 2, 3, 0, -1]),
)
observer_wires = st.builds(
    ObserverWire, address_wires, st.sampled_from([1, 2, 0, -1]), st.lists(address_wires, max_size=2)
)
gossip_wires = st.builds(
    GossipWire,
    st.lists(member_wires, max_size=4),
    st.lists(observer_wires, max_size=2),
    st.dictionaries(st.sampled_from(["10.0.0.1:25520#1", "x", "x", ""]), st.integers(-1, 3)),
    st.lists(address_wires, max_size=2),
)


# --------------------------------------------------------------------------- round trips


def test_docstring_examples() -> None:
    result = doctest.testmod(wire_module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


@settings(max_examples=100, deadline=None)
@given(gossips())
def test_gossip_round_trip(g: Gossip) -> None:
    wire = gossip_to_wire(g)
    assert gossip_from_wire(wire) == g
    # ... through msgpack too, inside the message that carries it
    data = msgspec.msgpack.encode(GossipPush(wire, reply=False))
    decoded = msgspec.msgpack.decode(data, type=GossipPush)
    assert decoded.gossip == wire and gossip_from_wire(decoded.gossip) == g


@settings(max_examples=20, deadline=None)
@given(gossips(), st.randoms(use_true_random=False))
def test_encoding_is_canonical(g: Gossip, rnd: Random) -> None:
    """Equal gossips built in another order encode to the same bytes."""
    members = list(g.members.values())
    rnd.shuffle(members)
    records = list(g.reachability.items())
    rnd.shuffle(records)
    shuffled = Gossip(members, dict(records), VectorClock(dict(g.version.entries)), g.seen)
    assert shuffled == g
    assert msgspec.msgpack.encode(gossip_to_wire(shuffled)) == msgspec.msgpack.encode(
        gossip_to_wire(g)
    )
    wire = gossip_to_wire(g)
    assert [m.roles for m in wire.members] == [sorted(m.roles) for m in wire.members]
    assert all(o.unreachable == sorted(o.unreachable, key=_wire_key) for o in wire.reachability)


def _wire_key(w: UniqueAddressWire) -> tuple[str, int, int]:
    return (w.host, w.port, w.uid)


def test_reachable_gossip_example() -> None:
    """A hand-built state with every part: tombstone, down, reachability record, seen."""
    g = leader_actions(join(Gossip(), member_of(B), by=B), B)
    g = leader_actions(seen_by(merge(g, seen_by(join(g, member_of(C), by=B), C)), B), B)
    g = join(seen_by(g, C), member_of(D), by=C)
    g = mark_unreachable(g, B, D)
    g = down(g, D, by=B)
    g = leader_actions(seen_by(g, C), B)
    g = mark_unreachable(join(g, member_of(A), by=C), C, A)
    g = seen_by(g, B)
    assert g.members[D].status is S.removed and g.reachability == {
        B: ObserverRecord(1, frozenset()),  # its record about D was dropped with D
        C: ObserverRecord(1, frozenset({A})),
    }
    wire = gossip_to_wire(g)
    assert [m.status for m in wire.members] == ["joining", "up", "up", "removed"]
    assert gossip_from_wire(wire) == g


def test_members_and_addresses() -> None:
    m = Member(A2, "n", S.leaving, {"x", "a"}, 3)
    w = member_to_wire(m)
    assert w == MemberWire("10.0.0.1", 25520, 2, "n", "leaving", ["a", "x"], 3)
    assert member_from_wire(w) == m
    assert unique_address_from_wire(ua(D)) == D
    assert unique_address_to_wire(D) == UniqueAddressWire("10.0.0.1", 25523, 1)
    big = UniqueAddress(NodeAddress("h", 65535), 2**62)
    assert unique_address_from_wire(ua(big)) == big


def test_decoded_addresses_are_shared_with_members() -> None:
    g = join(leader_actions(join(Gossip(), member_of(A), by=A), A), member_of(B), by=A)
    g = mark_unreachable(g, A, B)
    decoded = gossip_from_wire(gossip_to_wire(g))
    (record,) = decoded.reachability.values()
    (subject,) = record.unreachable
    assert subject is decoded.members[B].unique


# --------------------------------------------------------------------------- msgpack and tags

_U = UniqueAddressWire("10.0.0.1", 25520, 2**62)
_M = MemberWire("10.0.0.1", 25520, 7, "node-1", "up", ["db", "web"], 1)
_G = GossipWire([_M], [ObserverWire(_U, 2, [UniqueAddressWire("h", 1, 0)])], {"a": 1, "b": 2}, [_U])
SAMPLES: list[msgspec.Struct] = [
    _U,
    _M,
    ObserverWire(_U, 3, [_U]),
    _G,
    Join(_M),
    Welcome(_G),
    GossipPush(_G, reply=True),
    Heartbeat(_U, 17),
    HeartbeatAck(_U, 17),
    Leave(_U),
    JoinRefused("incompatible configuration"),
    NodeStatus(_U, _G),
    BarrierRelease("round-1", 7, ""),
]
# Messages carrying actor refs: they travel only through a system's codec.
REF_SAMPLES: list[msgspec.Struct] = [
    BarrierArrive("round-1", 3, 7, make_ref("/$barrier", system="test", host="h", port=1)),
    BarrierArrive("round-1", 3, 7, make_ref("/$barrier", port=2), withdraw=True),
    StatusRequest(make_ref("/$ask/1", port=3)),
]


def _structs(module: ModuleType) -> list[type[msgspec.Struct]]:
    return [
        v
        for v in vars(module).values()
        if isinstance(v, type) and issubclass(v, msgspec.Struct) and v.__module__ == module.__name__
    ]


def test_every_struct_has_a_sample() -> None:
    assert {type(s) for s in [*SAMPLES, *REF_SAMPLES]} == set(_structs(wire_module))
    assert set(CLUSTER_MESSAGES) == {
        Join,
        Welcome,
        GossipPush,
        Heartbeat,
        HeartbeatAck,
        Leave,
        JoinRefused,
        BarrierArrive,
        BarrierRelease,
        StatusRequest,
        NodeStatus,
    }


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: type(s).__name__)
def test_msgpack_round_trip(sample: msgspec.Struct) -> None:
    cls = type(sample)
    config = cls.__struct_config__
    assert config.frozen and config.array_like and not config.gc
    data = msgspec.msgpack.encode(sample)
    assert msgspec.msgpack.decode(data, type=cls) == sample
    assert msgspec.msgpack.decode(data)[0] == config.tag  # the tag leads the array


@pytest.mark.parametrize(
    "message",
    [s for s in [*SAMPLES, *REF_SAMPLES] if type(s) in CLUSTER_MESSAGES],
    ids=lambda s: type(s).__name__,
)
def test_messages_go_through_a_strict_codec(message: msgspec.Struct) -> None:
    codec = MessageCodec(FakeRefs(), strict=True)
    codec.register(*CLUSTER_MESSAGES)
    manifest, payload = codec.encode(message)
    assert manifest == f"casty_trio.cluster._wire:{type(message).__name__}"
    assert codec.decode(manifest, payload) == message
    assert codec.decode(manifest, msgspec.Raw(payload)) == message
    assert msgspec.msgpack.decode(payload)[0] == type(message).__struct_config__.tag


def test_a_strict_codec_refuses_garbled_messages() -> None:
    codec = MessageCodec(FakeRefs(), strict=True)
    codec.register(*CLUSTER_MESSAGES)
    manifest = "casty_trio.cluster._wire:Heartbeat"
    with pytest.raises(SerializationError, match="Heartbeat"):
        codec.decode(manifest, msgspec.msgpack.encode([33, [20, "h", 1, 1], "x"]))
    with pytest.raises(SerializationError, match="Heartbeat"):
        codec.decode(manifest, msgspec.msgpack.encode(HeartbeatAck(_U, 1)))
    with pytest.raises(SerializationError, match="GossipWire"):
        codec.decode("casty_trio.cluster._wire:GossipWire", msgspec.msgpack.encode(_G))


def test_tags_are_explicit_unique_and_clear_of_the_transport() -> None:
    ours = {cls: cls.__struct_config__.tag for cls in _structs(wire_module)}
    theirs = {cls: cls.__struct_config__.tag for cls in _structs(transport_wire)}
    assert len(ours) == 15 and len(theirs) >= 7
    tags = [*ours.values(), *theirs.values()]
    assert len(set(tags)) == len(tags)
    assert all(isinstance(t, int) and 20 <= t <= 39 for t in ours.values())
    assert all(isinstance(t, int) and 1 <= t < 20 for t in theirs.values())


def test_a_message_of_another_type_is_refused() -> None:
    data = msgspec.msgpack.encode(Heartbeat(_U, 1))
    with pytest.raises(msgspec.ValidationError):
        msgspec.msgpack.decode(data, type=HeartbeatAck)  # same fields, other tag
    with pytest.raises(msgspec.ValidationError):
        msgspec.msgpack.decode(msgspec.msgpack.encode([30, [21, "h", "1", 1]]), type=Join)
    with pytest.raises(msgspec.DecodeError):
        msgspec.msgpack.decode(b"\xc1garbage", type=GossipPush)


# --------------------------------------------------------------------------- garbled gossip

_GOOD = gossip_to_wire(
    mark_unreachable(
        seen_by(join(leader_actions(join(Gossip(), member_of(A), by=A), A), member_of(B), by=A), B),
        A,
        B,
    )
)
_MA, _MB = _GOOD.members
_OA = _GOOD.reachability[0]
_X = UniqueAddressWire("10.9.9.9", 1, 1)


def _evolve(**changes: Any) -> Callable[[], GossipWire]:
    return lambda: msgspec.structs.replace(_GOOD, **changes)


def _member(**changes: Any) -> Callable[[], GossipWire]:
    return _evolve(members=[_MA, msgspec.structs.replace(_MB, **changes)])


def _observer(**changes: Any) -> Callable[[], GossipWire]:
    return _evolve(reachability=[msgspec.structs.replace(_OA, **changes)])


GARBLED: dict[str, tuple[Callable[[], GossipWire], str]] = {
    "unknown status": (_member(status="UP"), "member 10.0.0.1:25521#1: unknown status 'UP'"),
    "empty status": (_member(status=""), "unknown status ''"),
    "empty host": (_member(host=""), "empty host"),
    "port 0": (_member(port=0), "port 0 not in 1..65535"),
    "port too high": (_member(port=65536), "port 65536 not in"),
    "negative uid": (_member(uid=-1), "negative uid -1"),
    "negative up number": (_member(up_number=-1, status="leaving"), "negative up number -1"),
    "joining with up number": (_member(up_number=2), "joining with up number 2"),
    "up without up number": (_member(status="up"), "up without an up number"),
    "repeated role": (_member(roles=["db", "db"]), "repeated role"),
    "member twice": (_evolve(members=[_MA, _MB, _MB]), "member 10.0.0.1:25521#1 listed twice"),
    "negative clock": (_evolve(version={"a": -1}), "'a': negative counter -1"),
    "empty clock key": (_evolve(version={"": 1}), "empty vector clock key"),
    "seen stranger": (_evolve(seen=[_X]), "seen entry 10.9.9.9:1#1 is not a member"),
    "seen twice": (_evolve(seen=[_OA.observer, _OA.observer]), "listed twice"),
    "seen bad address": (
        _evolve(seen=[UniqueAddressWire("", 0, -1)]),
        "seen entry :0#-1 is not a member",
    ),
    "observer stranger": (_observer(observer=_X), "observer 10.9.9.9:1#1 is not a member"),
    "observer twice": (_evolve(reachability=[_OA, _OA]), "observer 10.0.0.1:25520#1 listed twice"),
    "negative observer version": (_observer(version=-1), "negative version -1"),
    "subject stranger": (
        _observer(unreachable=[_X]),
        "unreachable subject 10.9.9.9:1#1 of observer 10.0.0.1:25520#1 is not a member",
    ),
    "subject twice": (_observer(unreachable=[ua(B), ua(B)]), "listed twice"),
    "observes itself": (_observer(unreachable=[ua(A)]), "reports itself unreachable"),
    "removed observer": (
        _evolve(members=[msgspec.structs.replace(_MA, status="removed"), _MB]),
        "observer 10.0.0.1:25520#1 is removed",
    ),
    "removed subject": (
        _member(status="removed", up_number=2),
        "reports removed member 10.0.0.1:25521#1",
    ),
}


@pytest.mark.parametrize("name", list(GARBLED))
def test_garbled_gossip_is_refused(name: str) -> None:
    assert gossip_from_wire(_GOOD).members  # the base value is fine
    build, message = GARBLED[name]
    with pytest.raises(ValueError, match="^invalid gossip: .*" + re.escape(message)):
        gossip_from_wire(build())


def test_garbled_addresses_and_members_alone() -> None:
    with pytest.raises(ValueError, match="empty host"):
        unique_address_from_wire(UniqueAddressWire("", 1, 1))
    with pytest.raises(ValueError, match="negative uid"):
        unique_address_from_wire(UniqueAddressWire("h", 1, -5))
    with pytest.raises(ValueError, match="unknown status 'gone'"):
        member_from_wire(msgspec.structs.replace(_MA, status="gone"))


@settings(max_examples=100, deadline=None)
@given(gossip_wires | mutated_wires())
def test_random_wires_are_refused_or_round_trip(wire: GossipWire) -> None:
    """Any wire value gives a ValueError or a gossip that survives the round trip."""
    try:
        g = gossip_from_wire(wire)
    except ValueError as exc:
        assert str(exc).startswith("invalid gossip: ")
        return
    assert gossip_from_wire(gossip_to_wire(g)) == g
    assert merge(g, g) == g  # already normalized
    assert g.seen <= g.members.keys()
