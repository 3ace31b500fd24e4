"""The cluster protocol: wire forms of the membership state and the cluster daemon's messages.

The cluster daemons of two nodes talk through ordinary framework messages: each message below
is a msgspec Struct, travels inside an :class:`~casty_trio.serialization._wire.Envelope` like any
other message and is decoded by the receiving system's codec (register them with
``codec.register(*CLUSTER_MESSAGES)``). The membership state itself (:class:`Gossip` and its
parts, attrs classes with frozensets and read-only mappings) travels as the plain Structs
:class:`GossipWire`, :class:`MemberWire`, :class:`ObserverWire` and :class:`UniqueAddressWire`;
the pure functions ``*_to_wire`` and ``*_from_wire`` convert between the two.

Encoding is canonical: collections are written sorted (members, observers and ``seen`` by
unique address, roles and subjects sorted), so equal gossips encode to equal bytes.

Decoding validates. The codec already checks the shape and the types of every field; the
``*_from_wire`` functions then check what a type cannot express, and raise :class:`ValueError`
naming the offending entry for anything a correct node never sends:

* an unknown status string, an empty host, a port outside ``1..65535``, a negative ``uid``,
  up number, observer version or clock counter, an empty clock key;
* a ``joining`` member with an up number, an ``up`` member without one;
* a member, role, observer, unreachable subject or ``seen`` entry listed twice;
* an observer, unreachable subject or ``seen`` entry that is not among the members;
* an observer reporting itself, or a reachability record by or about a ``removed`` member
  (the membership functions drop those).

So the receiving daemon wraps ``gossip_from_wire`` in ``except ValueError`` and drops (and logs)
the message; a gossip that passes is a value the membership functions accept. The rules hold
for every gossip built with the functions of :mod:`casty_trio.cluster._membership` by members
of it (``by=`` and the observer are the node itself, a member once it has joined), so a node
must not gossip before it is a member of its own state.

Besides the daemons' protocol, the module holds the cluster's other wire messages: the
barrier's (:class:`BarrierArrive`, :class:`BarrierRelease`, checked by
:func:`check_barrier_arrive` and :func:`check_barrier_release`) and the status query any
remoting endpoint of the same system name may send to a daemon, member or not
(:class:`StatusRequest`, answered with a :class:`NodeStatus`).

Tags are part of the protocol, like those of :mod:`casty_trio.serialization._wire` (which uses
1-7): the cluster owns tags 20-39 (state 20-29, messages 30-39); never reuse or renumber one.
Adding a Struct means a new tag; changing a field changes the protocol. Tags 25-29 are free.

Examples:
    >>> from casty_trio import NodeAddress
    >>> from casty_trio.cluster._membership import join, leader_actions
    >>> me = Member(UniqueAddress(NodeAddress("10.0.0.1", 25520), 7), "a", roles={"web"})
    >>> g = leader_actions(join(Gossip(), me, by=me.unique), me.unique)
    >>> wire = gossip_to_wire(g)
    >>> wire.members[0].status, wire.members[0].roles, wire.members[0].up_number
    ('up', ['web'], 1)
    >>> data = msgspec.msgpack.encode(GossipPush(wire, reply=True))
    >>> gossip_from_wire(msgspec.msgpack.decode(data, type=GossipPush).gossip) == g
    True
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

from .._core import ActorRef, NodeAddress
from ._membership import Gossip, Member, MemberStatus, ObserverRecord, UniqueAddress
from ._vector_clock import VectorClock

__all__ = [
    "CLUSTER_MESSAGES",
    "MAX_BARRIER_NAME",
    "BarrierArrive",
    "BarrierRelease",
    "ClusterMessage",
    "GossipPush",
    "GossipWire",
    "Heartbeat",
    "HeartbeatAck",
    "Join",
    "JoinRefused",
    "Leave",
    "MemberWire",
    "NodeStatus",
    "ObserverWire",
    "StatusRequest",
    "UniqueAddressWire",
    "Welcome",
    "check_barrier_arrive",
    "check_barrier_release",
    "gossip_from_wire",
    "gossip_to_wire",
    "member_from_wire",
    "member_to_wire",
    "unique_address_from_wire",
    "unique_address_to_wire",
]

# --------------------------------------------------------------------------- state (tags 20-29)


class UniqueAddressWire(msgspec.Struct, frozen=True, array_like=True, gc=False, tag=20):
    """A :class:`UniqueAddress`: one incarnation of a node."""

    host: str
    port: int
    uid: int


class MemberWire(msgspec.Struct, frozen=True, array_like=True, gc=False, tag=21):
    """A :class:`Member`; ``status`` is a :class:`MemberStatus` value, ``roles`` are sorted."""

    host: str
    port: int
    uid: int
    node_id: str
    status: str
    roles: list[str]
    up_number: int


class ObserverWire(msgspec.Struct, frozen=True, array_like=True, gc=False, tag=22):
    """One observer's :class:`ObserverRecord`: what it reports unreachable, and its version."""

    observer: UniqueAddressWire
    version: int
    unreachable: list[UniqueAddressWire]


class GossipWire(msgspec.Struct, frozen=True, array_like=True, gc=False, tag=23):
    """A :class:`Gossip`: members (tombstones included), reachability, vector clock, seen."""

    members: list[MemberWire]
    reachability: list[ObserverWire]
    version: dict[str, int]
    seen: list[UniqueAddressWire]


class NodeStatus(msgspec.Struct, frozen=True, array_like=True, gc=False, tag=24):
    """Answer to :class:`StatusRequest`: the answering node and its current gossip."""

    node: UniqueAddressWire
    gossip: GossipWire


# --------------------------------------------------------------------------- messages (tags 30-39)


class Join(msgspec.Struct, frozen=True, array_like=True, gc=False, tag=30):
    """To a seed node's cluster daemon: let ``member`` (the sender, ``joining``) in."""

    member: MemberWire


class Welcome(msgspec.Struct, frozen=True, array_like=True, gc=False, tag=31):
    """Answer to :class:`Join`: the gossip that now holds the joining member."""

    gossip: GossipWire


class GossipPush(msgspec.Struct, frozen=True, array_like=True, gc=False, tag=32):
    """The sender's gossip; ``reply`` asks the receiver to push its merged state back."""

    gossip: GossipWire
    reply: bool


class Heartbeat(msgspec.Struct, frozen=True, array_like=True, gc=False, tag=33):
    """Failure detection probe from ``sender``; answered with a :class:`HeartbeatAck`."""

    sender: UniqueAddressWire
    sequence: int


class HeartbeatAck(msgspec.Struct, frozen=True, array_like=True, gc=False, tag=34):
    """Answer to the :class:`Heartbeat` numbered ``sequence``; ``sender`` is the one answering."""

    sender: UniqueAddressWire
    sequence: int


class Leave(msgspec.Struct, frozen=True, array_like=True, gc=False, tag=35):
    """``member`` leaves the cluster gracefully (sent to the leader or any member)."""

    member: UniqueAddressWire


class JoinRefused(msgspec.Struct, frozen=True, array_like=True, gc=False, tag=36):
    """Answer to :class:`Join` when the node cannot be let in; ``reason`` says why."""

    reason: str


class BarrierArrive(msgspec.Struct, frozen=True, array_like=True, gc=False, tag=37):
    """To the barrier host: call ``call`` of the node whose barrier actor is ``reply_to`` waits
    at barrier ``name`` for ``n`` participants; with ``withdraw`` it stops waiting (timeout or
    cancellation). Re-sent (same ``call``) until released, each re-send renewing the call's
    lease at the host (an arrival not renewed within the lease stops counting); the host
    counts a call once."""

    name: str
    n: int
    call: int
    reply_to: ActorRef[Any]
    withdraw: bool = False


class BarrierRelease(msgspec.Struct, frozen=True, array_like=True, gc=False, tag=38):
    """From the barrier host to a participant's barrier actor: call ``call`` at ``name`` is
    released (``error`` empty) or refused (``error`` says why, e.g. another ``n``)."""

    name: str
    call: int
    error: str


class StatusRequest(msgspec.Struct, frozen=True, array_like=True, gc=False, tag=39):
    """To a cluster daemon, from anyone with the same system name (members or tools such as
    ``casty-trio status``): answer with a :class:`NodeStatus` to ``reply_to``."""

    reply_to: ActorRef[NodeStatus]


ClusterMessage = (
    Join
    | Welcome
    | GossipPush
    | Heartbeat
    | HeartbeatAck
    | Leave
    | JoinRefused
    | BarrierArrive
    | BarrierRelease
    | StatusRequest
    | NodeStatus
)
"""Every message of the cluster protocol."""

CLUSTER_MESSAGES: tuple[type[msgspec.Struct], ...] = (
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
)
"""The message types of :data:`ClusterMessage`, for ``codec.register(*CLUSTER_MESSAGES)``."""

MAX_BARRIER_NAME = 256
"""Longest barrier name (in characters) a node accepts."""

# --------------------------------------------------------------------------- to wire

_Key = tuple[str, int, int]
"""``(host, port, uid)``: a unique address as a plain, hashable key."""


def unique_address_to_wire(unique: UniqueAddress) -> UniqueAddressWire:
    """The wire form of a unique address.

    Examples:
        >>> unique_address_to_wire(UniqueAddress(NodeAddress("h", 1), 9))
        UniqueAddressWire(host='h', port=1, uid=9)
    """
    return UniqueAddressWire(unique.node.host, unique.node.port, unique.uid)


def member_to_wire(member: Member) -> MemberWire:
    """The wire form of a member: the status as its value, the roles sorted.

    Examples:
        >>> m = Member(UniqueAddress(NodeAddress("h", 1), 9), "n1", roles={"b", "a"})
        >>> w = member_to_wire(m)
        >>> w.status, w.roles, w.up_number
        ('joining', ['a', 'b'], 0)
    """
    node = member.unique.node
    return MemberWire(
        node.host,
        node.port,
        member.unique.uid,
        member.node_id,
        member.status.value,
        sorted(member.roles),
        member.up_number,
    )


def gossip_to_wire(gossip: Gossip) -> GossipWire:
    """The wire form of a gossip, canonical: equal gossips give equal wire values.

    Never fails for a gossip built with the membership functions; the result passes
    :func:`gossip_from_wire` and converts back to an equal gossip.

    Examples:
        >>> gossip_to_wire(Gossip())
        GossipWire(members=[], reachability=[], version={}, seen=[])
    """
    members = gossip.members
    reachability = gossip.reachability
    return GossipWire(
        [member_to_wire(members[u]) for u in sorted(members)],
        [
            ObserverWire(
                unique_address_to_wire(observer),
                reachability[observer].version,
                [unique_address_to_wire(u) for u in sorted(reachability[observer].unreachable)],
            )
            for observer in sorted(reachability)
        ],
        dict(gossip.version.entries),
        [unique_address_to_wire(u) for u in sorted(gossip.seen)],
    )


# --------------------------------------------------------------------------- from wire

_STATUSES: dict[str, MemberStatus] = {status.value: status for status in MemberStatus}
_MAX_PORT = 65535


def _label(host: str, port: int, uid: int) -> str:
    return f"{host}:{port}#{uid}"


def _check_address(host: str, port: int, uid: int, what: str) -> None:
    if not host:
        raise ValueError(f"{what} {_label(host, port, uid)}: empty host")
    if not 1 <= port <= _MAX_PORT:
        raise ValueError(f"{what} {_label(host, port, uid)}: port {port} not in 1..{_MAX_PORT}")
    if uid < 0:
        raise ValueError(f"{what} {_label(host, port, uid)}: negative uid {uid}")


def unique_address_from_wire(wire: UniqueAddressWire) -> UniqueAddress:
    """The unique address a wire value names.

    Raises:
        ValueError: Empty host, port outside ``1..65535`` or negative uid.

    Examples:
        >>> unique_address_from_wire(UniqueAddressWire("h", 1, 9))
        UniqueAddress(node=NodeAddress(host='h', port=1), uid=9)
        >>> unique_address_from_wire(UniqueAddressWire("h", 0, 9))
        Traceback (most recent call last):
        ...
        ValueError: address h:0#9: port 0 not in 1..65535
    """
    _check_address(wire.host, wire.port, wire.uid, "address")
    return UniqueAddress(NodeAddress(wire.host, wire.port), wire.uid)


def member_from_wire(wire: MemberWire) -> Member:
    """The member a wire value describes.

    Raises:
        ValueError: Bad address (see :func:`unique_address_from_wire`), unknown status,
            repeated role, negative up number, a ``joining`` member with an up number or an
            ``up`` member without one.

    Examples:
        >>> member_from_wire(MemberWire("h", 1, 9, "n1", "up", ["web"], 1)).status
        <MemberStatus.up: 'up'>
        >>> member_from_wire(MemberWire("h", 1, 9, "n1", "upp", [], 1))
        Traceback (most recent call last):
        ...
        ValueError: member h:1#9: unknown status 'upp'
    """
    _check_address(wire.host, wire.port, wire.uid, "member")
    label = _label(wire.host, wire.port, wire.uid)
    status = _STATUSES.get(wire.status)
    if status is None:
        raise ValueError(f"member {label}: unknown status {wire.status!r}")
    roles = frozenset(wire.roles)
    if len(roles) != len(wire.roles):
        raise ValueError(f"member {label}: repeated role in {wire.roles!r}")
    up_number = wire.up_number
    if up_number < 0:
        raise ValueError(f"member {label}: negative up number {up_number}")
    if status is MemberStatus.joining and up_number:
        raise ValueError(f"member {label}: joining with up number {up_number}")
    if status is MemberStatus.up and not up_number:
        raise ValueError(f"member {label}: up without an up number")
    unique = UniqueAddress(NodeAddress(wire.host, wire.port), wire.uid)
    return Member(unique, wire.node_id, status, roles, up_number)


def _lookup(
    known: dict[_Key, Member], wire: UniqueAddressWire, what: str, where: str = ""
) -> tuple[_Key, UniqueAddress]:
    key = (wire.host, wire.port, wire.uid)
    member = known.get(key)
    if member is None:
        raise ValueError(f"{what} {_label(*key)}{where} is not a member")
    return key, member.unique


def _distinct(
    known: dict[_Key, Member], wires: Iterable[UniqueAddressWire], what: str, where: str = ""
) -> frozenset[UniqueAddress]:
    found: dict[_Key, UniqueAddress] = {}
    for wire in wires:
        key, unique = _lookup(known, wire, what, where)
        if key in found:
            raise ValueError(f"{what} {_label(*key)}{where} listed twice")
        found[key] = unique
    return frozenset(found.values())


def gossip_from_wire(wire: GossipWire) -> Gossip:
    """The gossip a wire value describes, after checking it is one a correct node could send.

    Unique addresses in the result are shared with the members (one object per incarnation).

    Raises:
        ValueError: The wire value breaks a rule listed in the module docstring; the message
            names the offending entry.

    Examples:
        >>> member = MemberWire("h", 1, 9, "n1", "up", [], 1)
        >>> me = UniqueAddressWire("h", 1, 9)
        >>> g = gossip_from_wire(GossipWire([member], [], {"h:1#9": 2}, [me]))
        >>> g.sorted_members()[0].node_id, g.version
        ('n1', VectorClock({'h:1#9': 2}))
        >>> gossip_from_wire(GossipWire([], [], {}, [me]))
        Traceback (most recent call last):
        ...
        ValueError: invalid gossip: seen entry h:1#9 is not a member
    """
    try:
        return _gossip_from_wire(wire)
    except ValueError as exc:
        raise ValueError(f"invalid gossip: {exc}") from None


def _gossip_from_wire(wire: GossipWire) -> Gossip:
    known: dict[_Key, Member] = {}
    for member_wire in wire.members:
        key = (member_wire.host, member_wire.port, member_wire.uid)
        if key in known:
            raise ValueError(f"member {_label(*key)} listed twice")
        known[key] = member_from_wire(member_wire)

    records: dict[UniqueAddress, ObserverRecord] = {}
    for observer_wire in wire.reachability:
        key, observer = _lookup(known, observer_wire.observer, "observer")
        label = _label(*key)
        if observer in records:
            raise ValueError(f"observer {label} listed twice")
        if known[key].status is MemberStatus.removed:
            raise ValueError(f"observer {label} is removed")
        if observer_wire.version < 0:
            raise ValueError(f"observer {label}: negative version {observer_wire.version}")
        subjects = _distinct(
            known, observer_wire.unreachable, "unreachable subject", f" of observer {label}"
        )
        if observer in subjects:
            raise ValueError(f"observer {label} reports itself unreachable")
        for subject in subjects:
            if known[_key(subject)].status is MemberStatus.removed:
                raise ValueError(f"observer {label} reports removed member {subject}")
        records[observer] = ObserverRecord(observer_wire.version, subjects)

    for node_key, counter in wire.version.items():
        if not node_key:
            raise ValueError("empty vector clock key")
        if counter < 0:
            raise ValueError(f"vector clock entry {node_key!r}: negative counter {counter}")

    return Gossip(
        known.values(),
        records,
        VectorClock(wire.version),
        _distinct(known, wire.seen, "seen entry"),
    )


def _key(unique: UniqueAddress) -> _Key:
    return (unique.node.host, unique.node.port, unique.uid)


def _check_barrier_name(name: str) -> None:
    if not name:
        raise ValueError("barrier: empty name")
    if len(name) > MAX_BARRIER_NAME:
        raise ValueError(f"barrier: name of {len(name)} characters (at most {MAX_BARRIER_NAME})")


def check_barrier_arrive(msg: BarrierArrive) -> None:
    """Check what the types of a :class:`BarrierArrive` cannot express.

    Raises:
        ValueError: Empty or overlong name, a negative call id, or (unless withdrawing) fewer
            than one participant.

    Examples:
        >>> check_barrier_arrive(BarrierArrive("", 2, 1, None))  # type: ignore[arg-type]
        Traceback (most recent call last):
        ...
        ValueError: barrier: empty name
    """
    _check_barrier_name(msg.name)
    if msg.call < 0:
        raise ValueError(f"barrier {msg.name!r}: negative call id {msg.call}")
    if not msg.withdraw and msg.n < 1:
        raise ValueError(f"barrier {msg.name!r}: {msg.n} participants (at least 1)")


def check_barrier_release(msg: BarrierRelease) -> None:
    """Check what the types of a :class:`BarrierRelease` cannot express.

    Raises:
        ValueError: Empty or overlong name, or a negative call id.

    Examples:
        >>> check_barrier_release(BarrierRelease("round", -1, ""))
        Traceback (most recent call last):
        ...
        ValueError: barrier 'round': negative call id -1
    """
    _check_barrier_name(msg.name)
    if msg.call < 0:
        raise ValueError(f"barrier {msg.name!r}: negative call id {msg.call}")
