"""Message types and a fake RefCodec shared by the serialization tests (module level on purpose:
the codec resolves classes of imported modules by name)."""

from __future__ import annotations

import dataclasses
import enum
from typing import Any, Generic, TypeVar

import attrs
import msgspec

from casty_trio import ActorAddress, ActorRef, NodeAddress

T = TypeVar("T")


@attrs.define(eq=False)
class FakeTarget:
    """Stands behind refs the fake codec makes: records deliveries."""

    delivered: list[Any] = attrs.field(factory=list)

    def deliver(self, message: Any, /) -> None:
        self.delivered.append(message)

    def add_watcher(self, watcher: Any, /) -> None:
        pass

    def remove_watcher(self, watcher: Any, /) -> None:
        pass


@attrs.define(eq=False)
class FakeRefs:
    """A RefCodec for one fake node: local refs get ``node``; decoded refs get new targets."""

    node: NodeAddress = attrs.field(factory=lambda: NodeAddress("local", 1))
    targets: list[FakeTarget] = attrs.field(factory=list)

    def ref_to_wire(self, ref: ActorRef[Any]) -> tuple[str, str, str, int]:
        address = ref.address
        node = address.node or self.node
        return (address.system, address.path, node.host, node.port)

    def ref_from_wire(self, system: str, path: str, host: str, port: int) -> ActorRef[Any]:
        target = FakeTarget()
        self.targets.append(target)
        return ActorRef(ActorAddress(system, path, NodeAddress(host, port)), target)


def make_ref(
    path: str = "/a", *, system: str = "sys", host: str = "h", port: int = 1
) -> ActorRef[Any]:
    return ActorRef(ActorAddress(system, path, NodeAddress(host, port)), FakeTarget())


class Point(msgspec.Struct, frozen=True):
    x: int
    y: int


class Compact(msgspec.Struct, frozen=True, array_like=True, tag=True):
    name: str
    values: list[float]


class Mutable(msgspec.Struct):
    items: list[int] = msgspec.field(default_factory=list)


@attrs.frozen
class Deposit:
    amount: int


@attrs.frozen
class GetBalance:
    reply_to: ActorRef[int]


@attrs.define
class Counter:
    count: int = 0
    label: str | None = None


@dataclasses.dataclass(frozen=True)
class FrozenRecord:
    name: str
    ref: ActorRef[str] | None = None


@dataclasses.dataclass
class PlainRecord:
    tags: list[str]
    weight: float = 1.0


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Priority(enum.IntEnum):
    LOW = 1
    HIGH = 2


@attrs.frozen
class Nested:
    point: Point
    deposits: list[Deposit]
    by_name: dict[str, FrozenRecord]
    maybe: Deposit | None
    pair: tuple[int, str]
    color: Color
    records: tuple[PlainRecord, ...] = ()


@attrs.frozen
class Outer:
    @attrs.frozen
    class Inner:
        value: int

    inner: Inner


@attrs.frozen
class Box(Generic[T]):
    content: T


@attrs.frozen
class Refs:
    one: ActorRef[Any]
    maybe: ActorRef[Any] | None
    many: list[ActorRef[Any]]
    pair: tuple[str, ActorRef[Any]]
    by_key: dict[str, ActorRef[Any]]
    anything: Any


class Tree(msgspec.Struct, frozen=True):
    label: str
    ref: ActorRef[Any] | None
    children: list[Tree]
    extras: dict[str, Any]


@attrs.frozen
class Forest:
    trees: list[Tree]
    owners: tuple[ActorRef[Any], ...]
    payload: Any
    record: FrozenRecord | None


@attrs.frozen
class Holder:
    thing: Any


class NotAMessage:
    def __init__(self, value: int = 0) -> None:
        self.value = value


class MyInt(int):
    pass


Alias = Deposit  # another name for Deposit: never accepted as a manifest
not_a_class = Deposit(1)
