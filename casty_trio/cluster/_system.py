"""MembershipSystem: a RemoteActorSystem that is a member of a cluster (membership only)."""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Awaitable, Callable, Iterable
from types import TracebackType
from typing import Any, Self, TypeVar

import attrs
import trio

from .._core import ActorRef, NodeAddress, spawn_system_actor
from .._errors import ConfigError, MembershipTimeoutError, NodeDownedError
from ..config import CastyConfig, ClusterConfig, DowningConfig
from ..remote import RemoteActorSystem, RemoteSettings, Transport
from ..serialization import MsgpackSerializer
from ..tls import TlsConfig
from ._barrier import BARRIER_NAME, barrier_actor, wait_at_barrier
from ._daemon import DAEMON_NAME, ClusterSettings, DaemonHooks, LeaveCluster, _Daemon, daemon
from ._downing import DowningStrategy, KeepMajority, make_strategy
from ._membership import (
    Gossip,
    Member,
    MemberStatus,
    UniqueAddress,
    leader,
    unreachable_members,
)
from ._wire import CLUSTER_MESSAGES

M = TypeVar("M")
R = TypeVar("R")

__all__ = ["ClusterState", "MembershipSystem", "NodeDownedError"]

_log = logging.getLogger("casty_trio.cluster")


@attrs.frozen
class ClusterState:
    """A snapshot of the membership as this node sees it.

    Attributes:
        members: Every member not removed, ordered by address.
        unreachable: Members some live member cannot reach right now.
        leader: The leader's address, or ``None``.
        self_member: This node as a member.
    """

    members: tuple[Member, ...]
    unreachable: frozenset[Member]
    leader: NodeAddress | None
    self_member: Member | None

    def up(self) -> tuple[Member, ...]:
        """The members whose status is ``up``."""
        return tuple(m for m in self.members if m.status is MemberStatus.up)


def _state(gossip: Gossip, me: UniqueAddress) -> ClusterState:
    lead = leader(gossip, self_unique=me)
    return ClusterState(
        members=tuple(gossip.sorted_members()),
        unreachable=unreachable_members(gossip, me),
        leader=lead.node if lead is not None else None,
        self_member=gossip.member(me),
    )


def _settings_from(cluster: ClusterConfig) -> ClusterSettings:
    """The membership timings ``[cluster]`` sets (``join_retry`` keeps its default)."""
    detector = cluster.failure_detector
    unstable = cluster.downing.down_all_when_unstable
    return ClusterSettings(
        gossip_interval=cluster.gossip.interval,
        heartbeat_interval=cluster.heartbeat.interval,
        threshold=detector.threshold,
        max_sample_size=detector.max_sample_size,
        min_std_deviation=detector.min_std_deviation,
        acceptable_heartbeat_pause=detector.acceptable_heartbeat_pause,
        first_heartbeat_estimate=detector.first_heartbeat_estimate,
        stable_after=cluster.downing.stable_after,
        down_all_when_unstable=(
            None if unstable is True else math.inf if unstable is False else float(unstable)
        ),
        leave_timeout=cluster.leave_timeout,
    )


def _strategy_from(downing: DowningConfig) -> DowningStrategy:
    """The split-brain strategy ``[cluster.downing]`` names."""
    return make_strategy(downing.strategy, quorum_size=downing.quorum_size, role=downing.role)


class MembershipSystem(RemoteActorSystem):
    """An actor system that joins a cluster: membership, failure detection, downing.

    Nodes join through ``seed_nodes`` (a node listing no seed, or only itself, forms a new
    cluster), gossip their membership, detect failures with phi accrual heartbeats and let a
    split-brain resolver (keep-majority unless configured otherwise) down unreachable members
    once the unreachable set was stable for ``stable_after``. Membership events are published
    on the event stream. Leaving the ``async with`` block is a graceful leave: the other members
    see this node leave. A node downed by the cluster shuts down and its block raises
    :class:`NodeDownedError`.

    With a ``config``, the timings (``[cluster.gossip]``, ``[cluster.heartbeat]``,
    ``[cluster.failure_detector]``, ``[cluster.downing] stable_after`` and
    ``down_all_when_unstable``, ``[cluster] leave_timeout``), the downing strategy
    (``[cluster.downing]``), the remoting tunables (``[transport]``) and, when this system
    builds its own transport, TLS (``[cluster.tls]``) come from it; explicit ``tls``,
    ``settings``, ``cluster_settings`` and ``downing`` arguments win. The node's identity
    (host, port, node id, seeds, roles, bind host, required quorum) is given as arguments;
    :meth:`from_config` reads it from ``[cluster]``.

    Args:
        name: The system's name, shared by every member.
        host: The host other nodes reach this one at.
        port: The port to listen on; 0 picks a free one (see :attr:`self_node`).
        node_id: A readable name of this node, shown in the membership.
        seed_nodes: Contact points to join through.
        roles: This node's roles.
        bind_host: The interface to listen on (default: ``host``).
        config: A :class:`~casty_trio.CastyConfig`.
        tls: Mutual TLS for node-to-node links (default: from ``[cluster.tls]``, else none).
        required_quorum: Entering the system waits until this many members are up.
        serializer: The message serializer.
        transport: A transport to use instead of WebSocket, such as a simulated network's.
        settings: Remoting tunables (default: from ``[transport]``).
        cluster_settings: Membership timings (default: from ``[cluster]``).
        downing: The split-brain strategy (default: from ``[cluster.downing]``, else
            :class:`~casty_trio.cluster.KeepMajority`).
        incarnation: This start's uid (default: random). Tests pass a seeded one so that a
            simulated cluster replays identically; a restarted node must get a new one.

    Raises:
        ConfigError: ``[cluster.tls]`` names files that are not a usable certificate and key.

    Examples:
        >>> async with ClusteredActorSystem(                       # doctest: +SKIP
        ...     name="app", host="127.0.0.1", port=0, node_id="a",
        ... ) as system:
        ...     state = await system.wait_for(1)
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
        cluster = config.cluster if config is not None else None
        if tls is None and transport is None and cluster is not None and cluster.tls is not None:
            # Only a transport this system builds uses TLS; a given one brings its own.
            paths = cluster.tls
            tls = TlsConfig.from_paths(
                certfile=paths.certfile, keyfile=paths.keyfile, cafile=paths.cafile
            )
        super().__init__(
            name,
            host=host,
            port=port,
            bind_host=bind_host,
            config=config,
            tls=tls,
            serializer=serializer,
            transport=transport,
            settings=settings,
        )
        self._node_id = node_id
        self._roles = frozenset(roles)
        self._seeds = tuple(
            s if isinstance(s, NodeAddress) else NodeAddress(s[0], s[1]) for s in seed_nodes or ()
        )
        self._required_quorum = required_quorum
        if cluster_settings is None:
            cluster_settings = ClusterSettings() if cluster is None else _settings_from(cluster)
        self._cluster_settings = cluster_settings
        if downing is None:
            downing = KeepMajority() if cluster is None else _strategy_from(cluster.downing)
        self._downing = downing
        # A fresh uid per start makes a restarted node a new member; tests pass a seeded one
        # so that a simulated cluster replays the same way for the same seed.
        self._uid = random.getrandbits(62) if incarnation is None else incarnation
        self._daemon: _Daemon | None = None
        self._gossip = Gossip()
        self._changed = trio.Event()
        self._downed: MemberStatus | None = None
        self._left = trio.Event()
        self._membership_listeners: list[Callable[[Gossip], None]] = []
        self._leave_hooks: list[Callable[[], Awaitable[None]]] = []
        self._leave_started = False

    @classmethod
    def from_config(
        cls,
        config: CastyConfig,
        *,
        host: str | None = None,
        port: int | None = None,
        node_id: str | None = None,
        seed_nodes: Iterable[tuple[str, int] | NodeAddress] | None = None,
        bind_host: str | None = None,
        tls: TlsConfig | None = None,
        required_quorum: int | None = None,
    ) -> Self:
        """A node configured by ``config``: its ``[cluster]`` table gives host, port, node id,
        seed nodes, roles, bind host and required quorum, ``[system] name`` the name, and the
        rest of the configuration applies as in the constructor.

        Keyword arguments given (not ``None``) override the configured values; an empty
        ``seed_nodes`` means no seeds. Without ``node_id`` anywhere the node id is
        ``"host:port"``. Nothing starts until the system is entered.

        Raises:
            ValueError: ``config`` has no ``[cluster]`` section (a :class:`ConfigError`).
            ConfigError: ``[cluster.tls]`` names unusable files.

        Examples:
            >>> config = load_config("casty.toml")                  # doctest: +SKIP
            >>> async with ClusteredActorSystem.from_config(config) as system:  # doctest: +SKIP
            ...     await system.wait_for(3)
        """
        cluster = config.cluster
        if cluster is None:
            raise ConfigError(
                "the configuration has no [cluster] section; ClusteredActorSystem.from_config "
                "reads the node's host, port and seed nodes from it"
            )
        host = cluster.host if host is None else host
        port = cluster.port if port is None else port
        if node_id is None:
            node_id = cluster.node_id if cluster.node_id is not None else f"{host}:{port}"
        return cls(
            name=config.system.name,
            host=host,
            port=port,
            node_id=node_id,
            seed_nodes=cluster.seed_addresses if seed_nodes is None else seed_nodes,
            roles=frozenset(cluster.roles),
            bind_host=cluster.bind_host if bind_host is None else bind_host,
            config=config,
            tls=tls,
            required_quorum=cluster.required_quorum if required_quorum is None else required_quorum,
        )

    # ------------------------------------------------------------------ lifecycle

    @property
    def self_unique(self) -> UniqueAddress:
        """This node's incarnation: its address and the uid drawn at start."""
        return UniqueAddress(self.self_node, self._uid)

    async def _start_services(self, nursery: trio.Nursery) -> None:
        await super()._start_services(nursery)
        self.remoting.codec.register(*CLUSTER_MESSAGES)
        me = Member(self.self_unique, self._node_id, MemberStatus.joining, self._roles)
        hooks = DaemonHooks(self._ready, self._membership_changed, self._left_cluster)
        membership = daemon(self, me, self._seeds, self._cluster_settings, self._downing, hooks)
        spawn_system_actor(self, membership, DAEMON_NAME)
        spawn_system_actor(self, barrier_actor(self), BARRIER_NAME)

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        if self._required_quorum is not None:
            try:
                await self.wait_for(self._required_quorum)
            except BaseException as exc:
                await self.__aexit__(type(exc), exc, exc.__traceback__)
                raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        try:
            await self._leave_cluster()
        finally:
            # Always close what __aenter__ opened, even when the leave is cancelled.
            result = await super().__aexit__(exc_type, exc, tb)
        if self._downed is MemberStatus.down:
            raise NodeDownedError(
                f"node {self.self_node} was downed by the cluster", self.self_node
            )
        return result

    async def _leave_gracefully(self) -> None:
        """Ask to leave, then wait ``leave_timeout`` to be seen ``exiting`` (or removed).

        Past the timeout the node stops while still ``leaving``: the others complete its leave
        without it (a silent leaving member counts on no side of a partition).
        """
        daemon_ref = self.lookup("/" + DAEMON_NAME)
        if daemon_ref is None:
            return
        daemon_ref.tell(LeaveCluster())
        with trio.move_on_after(self._cluster_settings.leave_timeout):
            await self._left.wait()
        await trio.lowlevel.checkpoint()

    async def shutdown(self, *, timeout: float | None = None) -> None:
        """Leave the cluster gracefully, then stop every actor.

        First every leave hook runs (sharded regions hand their shards to other nodes), then
        the other members
        see this node leave (``MemberLeft``, not a failure), then the actors stop as in
        :meth:`ActorSystem.shutdown`. Leaving the ``async with`` block does the same.
        Idempotent. A checkpoint.

        Args:
            timeout: Grace period for the actors' stop (see :meth:`ActorSystem.shutdown`).

        Examples:
            >>> await system.shutdown()                                 # doctest: +SKIP
        """
        await self._leave_cluster()
        await super().shutdown(timeout=timeout)

    async def _leave_cluster(self) -> None:
        """Hand shards off and leave, once; nothing to do when downed or never joined.

        Deliberately no checkpoint when there is nothing to do: ``__aexit__`` calls this while
        still inside the body's cancel scope, which a downed node has cancelled.
        """
        if self._leave_started:
            return
        self._leave_started = True
        if self._downed is None and self._daemon is not None and self._daemon.joined:
            for hook in self._leave_hooks:
                await hook()
            await self._leave_gracefully()

    def add_leave_hook(self, hook: Callable[[], Awaitable[None]]) -> None:
        """Run ``await hook()`` when this node leaves gracefully, before the other members are
        told (hooks run in the order added; a node that is downed runs none). Sync.

        Sharded regions hand their shards off this way. A hook bounds its own time.

        Examples:
            >>> system.add_leave_hook(flush_buffers)                    # doctest: +SKIP
        """
        self._leave_hooks.append(hook)

    def _ready(self, state: _Daemon) -> None:
        self._daemon = state

    # ------------------------------------------------------------------ daemon callbacks

    def subscribe_membership(self, listener: Callable[[Gossip], None]) -> Callable[[], None]:
        """Call ``listener(gossip)`` after every change of the membership this node sees;
        returns the function that unsubscribes it. Sync.

        The listener runs synchronously in the membership daemon: it must not block (tell an
        actor, set an event). :meth:`cluster_gossip` gives the current value.

        Examples:
            >>> stop = system.subscribe_membership(lambda g: ref.tell(Changed(g)))  # doctest: +SKIP
            >>> stop()                                                  # doctest: +SKIP
        """
        self._membership_listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._membership_listeners:
                self._membership_listeners.remove(listener)

        return unsubscribe

    def _membership_changed(self, gossip: Gossip) -> None:
        self._gossip = gossip
        for listener in tuple(self._membership_listeners):
            listener(gossip)
        changed, self._changed = self._changed, trio.Event()
        changed.set()
        mine = gossip.member(self.self_unique)
        if mine is not None and mine.status in (MemberStatus.exiting, MemberStatus.removed):
            self._left.set()

    def _left_cluster(self, status: MemberStatus) -> None:
        if status is MemberStatus.down and self._downed is None:
            self._downed = status
            _log.error("node %s was downed by the cluster; shutting down", self.self_node)
            self._left.set()
            if self._body_scope is not None:
                self._body_scope.cancel()
        elif status is MemberStatus.removed:
            self._left.set()

    # ------------------------------------------------------------------ queries

    async def get_cluster_state(self, *, timeout: float = 5.0) -> ClusterState:
        """The membership as this node sees it now. A checkpoint."""
        with trio.fail_after(timeout):
            await trio.lowlevel.checkpoint()
        return _state(self._gossip, self.self_unique)

    async def wait_for(self, n: int, *, timeout: float = 60.0) -> ClusterState:
        """Wait until at least ``n`` members are ``up``; returns the state then.

        A checkpoint, even when ``n`` members are up already; cancelling it only ends the wait.

        Args:
            n: How many ``up`` members to wait for (this node included).
            timeout: Seconds to wait.

        Raises:
            MembershipTimeoutError: Fewer than ``n`` members were up after ``timeout``
                seconds (also a ``TimeoutError``); its ``needed`` and ``up`` say how many.

        Examples:
            >>> try:                                                 # doctest: +SKIP
            ...     state = await system.wait_for(3, timeout=30)
            ... except MembershipTimeoutError as exc:
            ...     print(f"{exc.up} of {exc.needed} members up")
        """
        try:
            with trio.fail_after(timeout):
                while True:
                    state = _state(self._gossip, self.self_unique)
                    if len(state.up()) >= n:
                        await trio.lowlevel.checkpoint()
                        return state
                    await self._changed.wait()
        except trio.TooSlowError:
            up = len(_state(self._gossip, self.self_unique).up())
            raise MembershipTimeoutError(
                f"only {up} of {n} members up after {timeout}s", needed=n, up=up
            ) from None

    async def barrier(self, name: str, n: int, *, timeout: float = 60.0) -> None:
        """Wait until ``n`` participants, on any nodes, called ``barrier(name, n)``.

        All of them are released together. Several calls may come from one node (each counts
        once), and a barrier is reusable: once a round is released, the next calls at the same
        ``name`` start a new round. The round is counted by the oldest member
        (:func:`~casty_trio.cluster.oldest`); calls made while it changes (it exits or is
        downed) move to the new one. A call that times
        out or is cancelled stops counting. A checkpoint; cancelling it withdraws the call.

        Args:
            name: The barrier's name, shared by its participants (1 to 256 characters).
            n: How many calls the round waits for, at least 1.
            timeout: Seconds to wait for the others.

        Raises:
            ValueError: ``n`` below 1 or an invalid ``name``; or a round at ``name`` is in
                progress with another ``n`` (only this call fails; the round goes on).
            BarrierTimeoutError: Fewer than ``n`` participants arrived within ``timeout``
                (also a ``TimeoutError``).

        Examples:
            Each of three nodes (or tasks) runs::

                await system.barrier("loaded", 3, timeout=30)
                # every participant gets here together
        """
        await wait_at_barrier(self, name, n, timeout=timeout)

    def lookup(self, path: str, *, node: NodeAddress | str | None = None) -> ActorRef[Any] | None:
        """A ref to the actor at ``path``: local by default, or on ``node``.

        ``node`` is a :class:`NodeAddress` or a member's node id (``node_id=`` of its system).
        A local lookup, or one naming a node id no current member has, returns ``None``; a
        remote lookup returns a ref without a round trip (messages to nothing become dead
        letters there). Not a checkpoint.

        Examples:
            >>> system.lookup("/orders", node="worker-1")              # doctest: +SKIP
            ActorRef(casty://app@10.0.0.7:25520/orders)
        """
        if isinstance(node, str):
            members = [
                m
                for m in self._gossip.members.values()
                if m.node_id == node and m.status is not MemberStatus.removed
            ]
            if not members:
                return None
            live = [m for m in members if m.status is not MemberStatus.down]
            node = (live or members)[0].node
        return super().lookup(path, node=node)

    @property
    def roles(self) -> frozenset[str]:
        """This node's roles. Not a checkpoint."""
        return self._roles

    @property
    def cluster_settings(self) -> ClusterSettings:
        """The membership timings this node runs with. Not a checkpoint.

        Examples:
            >>> system.cluster_settings.down_notice_window              # doctest: +SKIP
            1.0
        """
        return self._cluster_settings

    def cluster_gossip(self) -> Gossip:
        """The raw membership value (for tools and tests)."""
        return self._gossip
