"""ClusteredActorSystem: a cluster member with sharding, the system users import.

It composes the layers: membership (:class:`~casty_trio.cluster.MembershipSystem`, which it
extends) and sharding (:class:`~casty_trio.sharding.ShardRegions`, which it owns). It sits above
them, so no lower layer imports it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar, overload

from ._core import ActorRef, Behavior, Mailbox, NodeAddress
from ._errors import AskTimeoutError
from .cluster import ClusterSettings, DowningStrategy, MembershipSystem
from .config import CastyConfig
from .remote import RemoteSettings, Transport
from .serialization import MsgpackSerializer
from .sharding import RegionStatistics, ShardedBehavior, ShardEnvelope, ShardRegions
from .tls import TlsConfig

__all__ = ["ClusteredActorSystem"]

M = TypeVar("M")
R = TypeVar("R")


class ClusteredActorSystem(MembershipSystem):
    """An actor system that is a member of a cluster and runs sharded types.

    Everything :class:`~casty_trio.cluster.MembershipSystem` does (joining through seed
    nodes, gossip, failure detection, downing, barriers; see there for every argument), plus
    sharding: spawning a sharded behavior starts this node's region of that type. Leaving the
    ``async with`` block (or :meth:`shutdown`) first hands this node's shards to other nodes,
    then leaves the cluster.

    Examples:
        >>> async with ClusteredActorSystem(                       # doctest: +SKIP
        ...     name="app", host="127.0.0.1", port=0, node_id="a",
        ... ) as system:
        ...     accounts = system.spawn(Behaviors.sharded(account), "accounts")
        ...     accounts.tell(ShardEnvelope("alice", Deposit(10)))
    """

    def __init__(
        self,
        *,
        name: str,
        host: str,
        port: int,
        node_id: str,
        seed_nodes: Iterable[tuple[str, int] | NodeAddress] | None = None,
        roles: frozenset[str] = frozenset(),
        bind_host: str | None = None,
        config: CastyConfig | None = None,
        tls: TlsConfig | None = None,
        required_quorum: int | None = None,
        serializer: MsgpackSerializer | None = None,
        transport: Transport | None = None,
        settings: RemoteSettings | None = None,
        cluster_settings: ClusterSettings | None = None,
        downing: DowningStrategy | None = None,
        incarnation: int | None = None,
    ) -> None:
        super().__init__(
            name=name,
            host=host,
            port=port,
            node_id=node_id,
            seed_nodes=seed_nodes,
            roles=roles,
            bind_host=bind_host,
            config=config,
            tls=tls,
            required_quorum=required_quorum,
            serializer=serializer,
            transport=transport,
            settings=settings,
            cluster_settings=cluster_settings,
            downing=downing,
            incarnation=incarnation,
        )
        self._regions = ShardRegions(self)

    @overload
    def spawn(  # type: ignore[overload-overlap]
        self, behavior: ShardedBehavior[M], name: str
    ) -> ActorRef[ShardEnvelope[M]]: ...

    @overload
    def spawn(
        self, behavior: Behavior[M], name: str, *, mailbox: Mailbox[M] | None = None
    ) -> ActorRef[M]: ...

    def spawn(
        self, behavior: Behavior[Any], name: str, *, mailbox: Mailbox[Any] | None = None
    ) -> ActorRef[Any]:
        """Start a root actor at ``/<name>``; a sharded behavior starts this node's region of
        the sharded type ``name`` instead.

        Spawn the same sharded type under the same name on every node that takes part: the
        regions of all nodes form the type, and the returned ref (one per node) takes
        :class:`ShardEnvelope` messages for any entity, wherever it lives. Not a checkpoint.

        Raises:
            ValueError: ``name`` is invalid or taken.
            ActorSystemError: The system is not running.

        Examples:
            >>> ref = system.spawn(Behaviors.sharded(account), "accounts")  # doctest: +SKIP
            >>> ref.tell(ShardEnvelope("alice", Deposit(10)))              # doctest: +SKIP
        """
        if isinstance(behavior, ShardedBehavior):
            return self._regions.spawn(behavior, name)
        return super().spawn(behavior, name, mailbox=mailbox)

    def region_statistics(self, name: str) -> RegionStatistics:
        """What this node's region of sharded type ``name`` hosts now. Not a checkpoint.

        Raises:
            KeyError: No sharded type ``name`` was spawned on this node.

        Examples:
            >>> sorted(system.region_statistics("accounts").shards)       # doctest: +SKIP
            [0, 3, 7]
        """
        return self._regions.statistics(name)

    def region_ref(
        self, key: str, factory: Callable[[str], Behavior[M]], *, num_shards: int
    ) -> ActorRef[ShardEnvelope[M]]:
        """The ref of this node's region of sharded type ``key``, spawning it if needed.

        Idempotent: later calls return the region the first call spawned (their ``factory``
        and ``num_shards`` are not used). Not a checkpoint.

        Examples:
            >>> counters = system.region_ref("counters", counter, num_shards=10)  # doctest: +SKIP
        """
        return self._regions.region_ref(key, factory, num_shards=num_shards)

    async def entity_ask(
        self,
        ref: ActorRef[ShardEnvelope[M]],
        msg_factory: Callable[[ActorRef[R]], ShardEnvelope[M]],
        *,
        timeout: float,
    ) -> R:
        """Ask a sharded entity: ``msg_factory(reply_to)`` builds the envelope to send.

        Same as :meth:`ask`, with an error that names the entity. A checkpoint; cancelling it
        abandons the reply.

        Raises:
            AskTimeoutError: No reply within ``timeout`` seconds.

        Examples:
            >>> balance = await system.entity_ask(                     # doctest: +SKIP
            ...     accounts, lambda r: ShardEnvelope("alice", GetBalance(r)), timeout=2.0)
        """
        entity: list[str] = []

        def build(reply_to: ActorRef[R]) -> ShardEnvelope[M]:
            envelope = msg_factory(reply_to)
            entity.append(envelope.entity_id)
            return envelope

        try:
            return await self.ask(ref, build, timeout=timeout)
        except AskTimeoutError:
            name = entity[0] if entity else "?"
            raise AskTimeoutError(
                f"entity {name!r} of {ref.path} did not reply within {timeout}s"
            ) from None
