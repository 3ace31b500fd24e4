"""Actor addresses and references.

A reference is a small immutable value: an :class:`ActorAddress` plus the function that delivers
a message to whatever sits behind it (a local cell, a reply slot, a remote link). Equality and
hashing use the address only, so refs work as dict keys and survive a round trip over the wire.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, Protocol, TypeVar

import attrs

__all__ = ["ActorAddress", "ActorRef", "NodeAddress", "RefTarget"]

M = TypeVar("M")
M_contra = TypeVar("M_contra", contravariant=True)


@attrs.frozen(order=True, cache_hash=True)
class NodeAddress:
    """Where a node of a cluster listens.

    Args:
        host: Host name or IP address other nodes dial.
        port: TCP port.

    Examples:
        >>> str(NodeAddress("127.0.0.1", 25520))
        '127.0.0.1:25520'
    """

    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


class ActorAddress(NamedTuple):
    """The full, location-aware name of an actor: an immutable, hashable, ordered value.

    A named tuple rather than an attrs class because one is built for every actor spawned,
    and this is the cheapest immutable value Python offers.

    Args:
        system: Name of the actor system the actor lives in.
        path: Absolute path inside that system, such as ``"/parent/child"``.
        node: The node hosting the system, or ``None`` for a purely local system.

    Examples:
        >>> str(ActorAddress("bank", "/accounts/acc-1"))
        'casty://bank/accounts/acc-1'
    """

    system: str
    path: str
    node: NodeAddress | None = None

    def __str__(self) -> str:
        where = self.system if self.node is None else f"{self.system}@{self.node}"
        return f"casty://{where}{self.path}"


class RefTarget(Protocol):
    """What stands behind a reference: something that takes messages and can be watched.

    Local cells, ask reply slots and remote links implement it; ``ActorRef(address, target)``
    makes a ref whose ``tell`` is ``target.deliver``. ``deliver`` is called synchronously by
    every ``tell``: it must not block. ``add_watcher`` must make sure ``watcher(ref)`` is
    eventually called once the target is gone, immediately if it is gone already.

    Public as :class:`casty_trio.lowlevel.RefTarget`.

    Examples:
        >>> class Collect:
        ...     def __init__(self) -> None:
        ...         self.messages: list[object] = []
        ...     def deliver(self, message, /) -> None:
        ...         self.messages.append(message)
        ...     def add_watcher(self, watcher, /) -> None:
        ...         pass  # never gone, so never calls the watcher
        ...     def remove_watcher(self, watcher, /) -> None:
        ...         pass
        >>> target = Collect()
        >>> ref = ActorRef(ActorAddress("app", "/collect"), target)
        >>> ref.tell("hello")
        >>> target.messages
        ['hello']
    """

    def deliver(self, message: Any, /) -> None: ...

    def add_watcher(self, watcher: Callable[[ActorRef[Any]], None], /) -> None: ...

    def remove_watcher(self, watcher: Callable[[ActorRef[Any]], None], /) -> None: ...


class ActorRef(Generic[M_contra]):
    """A handle to send messages of type ``M`` to one actor.

    Refs are cheap immutable values. :meth:`tell` is synchronous and never blocks; messages
    from one sender to one receiver arrive in the order they were told. Two refs are equal when
    they name the same :class:`ActorAddress`.

    Examples:
        >>> async def main() -> None:                       # doctest: +SKIP
        ...     async with ActorSystem(name="demo") as system:
        ...         ref = system.spawn(Behaviors.ignore(), "sink")
        ...         ref.tell("hello")
        ...         print(ref.path)
        /sink
    """

    __slots__ = ("_target", "address", "tell")

    address: ActorAddress
    """The actor's full address (system, path and node)."""

    if TYPE_CHECKING:

        def tell(self, message: M_contra, /) -> None:
            """Send a message to the actor, fire-and-forget.

            Not a checkpoint and never blocks: it appends to the receiver's mailbox and wakes it
            if idle. A message to an actor that has stopped is published as a
            :class:`~casty_trio.DeadLetter`.

            Raises:
                MailboxFullError: The receiver's bounded mailbox uses the ``reject`` policy and
                    is full.
            """
    # At run time ``tell`` is the target's bound ``deliver`` method itself, stored in a slot:
    # one call less on the hottest path of the framework.

    def __init__(self, address: ActorAddress, target: RefTarget) -> None:
        self.address = address
        self._target = target
        self.tell = target.deliver  # type: ignore[method-assign]

    @property
    def path(self) -> str:
        """The actor's path inside its system, such as ``"/parent/child"``."""
        return self.address.path

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ActorRef):
            return self.address == other.address
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.address)

    def __lt__(self, other: ActorRef[Any]) -> bool:
        return self.address < other.address

    def __repr__(self) -> str:
        return f"ActorRef({self.address})"
