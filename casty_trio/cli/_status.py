"""``casty-trio status HOST:PORT``: the membership table of a running node.

The command does not join the cluster. It starts a short-lived remoting endpoint (a
:class:`~casty_trio.remote.RemoteActorSystem` on 127.0.0.1, port 0, with the cluster's system
name), sends a :class:`~casty_trio.cluster._wire.StatusRequest` to the node's cluster daemon
(``/$cluster``) and prints the :class:`~casty_trio.cluster._wire.NodeStatus` it answers: every
member the node knows (removed ones aside) with its address, node id, status, roles,
reachability, and a mark on the leader and on the node asked.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import attrs
import trio

from .._core import DeadLetter, NodeAddress
from ..cluster import Gossip, MemberStatus, UniqueAddress
from ..cluster._daemon import DAEMON_PATH
from ..cluster._membership import leader, unreachable_members
from ..cluster._wire import NodeStatus, StatusRequest, gossip_from_wire, unique_address_from_wire
from ..remote import RemoteActorSystem
from ..serialization import MsgpackSerializer

__all__ = ["StatusError", "StatusRow", "format_table", "query_status", "status_rows"]

DEFAULT_SYSTEM = "casty-system"
_HEADERS = ("ADDRESS", "NODE ID", "STATUS", "ROLES", "REACHABILITY", "LEADER")


class StatusError(Exception):
    """The node could not be asked: unreachable, another system name, or no answer."""


@attrs.frozen
class StatusRow:
    """One member as ``casty-trio status`` prints it."""

    address: str
    node_id: str
    status: str
    roles: str
    reachability: str
    leader: bool
    is_self: bool

    def cells(self) -> tuple[str, ...]:
        node_id = f"{self.node_id} (this node)" if self.is_self else self.node_id
        return (
            self.address,
            node_id,
            self.status,
            self.roles,
            self.reachability,
            "*" if self.leader else "",
        )


def _address(node: NodeAddress) -> str:
    return f"[{node.host}]:{node.port}" if ":" in node.host else f"{node.host}:{node.port}"


def status_rows(gossip: Gossip, me: UniqueAddress | None = None) -> list[StatusRow]:
    """The table rows of ``gossip``: members not removed, ordered by address.

    Not a checkpoint.

    Examples:
        >>> from casty_trio.cluster import Member
        >>> from casty_trio.cluster._membership import join, leader_actions
        >>> a = UniqueAddress(NodeAddress("10.0.0.1", 25520), 1)
        >>> g = leader_actions(join(Gossip(), Member(a, "a", roles={"web"}), by=a), a)
        >>> status_rows(g, a)[0].cells()
        ('10.0.0.1:25520', 'a (this node)', 'up', 'web', 'reachable', '*')
    """
    lead = leader(gossip, self_unique=me)
    unreachable = {m.unique for m in unreachable_members(gossip, me)}
    return [
        StatusRow(
            address=_address(m.node),
            node_id=m.node_id,
            status=m.status.value,
            roles=",".join(sorted(m.roles)) or "-",
            reachability="unreachable" if m.unique in unreachable else "reachable",
            leader=m.unique == lead,
            is_self=m.unique == me,
        )
        for m in gossip.sorted_members()
    ]


def format_table(rows: Sequence[StatusRow]) -> str:
    """The rows as an aligned text table with a header line, ending with a newline.

    Examples:
        >>> row = StatusRow("h:1", "a", "up", "-", "reachable", True, False)
        >>> print(format_table([row]), end="")
        ADDRESS  NODE ID  STATUS  ROLES  REACHABILITY  LEADER
        h:1      a        up      -      reachable     *
    """
    table = [_HEADERS, *(row.cells() for row in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(_HEADERS))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in table
    ]
    return "\n".join(lines) + "\n"


def summary(status: NodeStatus, system_name: str) -> str:
    """The line above the table: who answered, how many members, how many up."""
    me = unique_address_from_wire(status.node)
    gossip = gossip_from_wire(status.gossip)
    members = gossip.sorted_members()
    up = sum(1 for m in members if m.status is MemberStatus.up)
    return (
        f"cluster {system_name!r} as seen by {_address(me.node)}: "
        f"{len(members)} member{'s' if len(members) != 1 else ''}, {up} up\n"
    )


class _Capture(logging.Handler):
    """Keeps the remoting warnings of the query (a refused handshake names the reason)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextmanager
def _captured(name: str) -> Iterator[_Capture]:
    logger = logging.getLogger(name)
    handler = _Capture()
    propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


async def query_status(
    node: NodeAddress, *, system_name: str = DEFAULT_SYSTEM, timeout: float = 5.0
) -> NodeStatus:
    """Ask the cluster daemon of ``node`` for its status, without joining the cluster.

    A checkpoint. Starts and stops a remoting endpoint on 127.0.0.1 (a free port).

    Args:
        node: The node's remoting address.
        system_name: The cluster's actor system name.
        timeout: Seconds for connecting and for the answer.

    Returns:
        The node's answer (its unique address and gossip, in wire form).

    Raises:
        StatusError: Nothing listens at ``node``, it refused us (another system name, another
            protocol version), or no answer came within ``timeout``.

    Examples:
        >>> status = trio.run(query_status, NodeAddress("127.0.0.1", 25520))  # doctest: +SKIP
    """
    serializer = MsgpackSerializer(types=(StatusRequest, NodeStatus))
    with _captured("casty_trio.remote") as warnings:
        async with RemoteActorSystem(
            system_name, host="127.0.0.1", port=0, serializer=serializer
        ) as system:
            daemon = system.lookup(DAEMON_PATH, node=node)
            assert daemon is not None
            answer: list[NodeStatus] = []
            async with (
                system.event_stream.subscription(DeadLetter) as dead,
                trio.open_nursery() as nursery,
            ):

                async def ask() -> None:
                    reply = await system.ask_or_none(daemon, StatusRequest, timeout=timeout)
                    if isinstance(reply, NodeStatus):
                        answer.append(reply)
                    nursery.cancel_scope.cancel()

                async def undeliverable() -> None:
                    async for letter in dead:
                        if isinstance(letter.message, StatusRequest):
                            nursery.cancel_scope.cancel()  # the link to the node failed

                nursery.start_soon(ask)
                nursery.start_soon(undeliverable)
    if answer:
        return answer[0]
    refusals = [m for m in warnings.messages if "refus" in m]
    reasons = refusals or warnings.messages
    reason = reasons[0] if reasons else f"no answer within {timeout}s"
    raise StatusError(
        f"{_address(node)} did not answer as a node of system {system_name!r}: {reason}"
    )
