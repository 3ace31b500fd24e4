"""``open_test_cluster``: n clustered nodes on one simulated network, in one ``trio.run``."""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, Self

import trio

from .._clustered import ClusteredActorSystem
from .._core import NodeAddress
from .._errors import MembershipTimeoutError
from ..cluster import ClusterSettings, ClusterState, MemberStatus, UniqueAddress
from ..config import CastyConfig
from ..serialization import MsgpackSerializer
from ._network import SimNetwork

__all__ = ["TestCluster", "open_test_cluster"]

_PORT = 1
_POLL = 0.01  # seconds between two looks at the nodes' states in wait_for_convergence


class _Slot:
    """One index of the cluster: its current system and the task running it."""

    def __init__(self, system: ClusteredActorSystem) -> None:
        self.system = system
        self.scope = trio.CancelScope()
        self.stop_requested = trio.Event()
        self.done = trio.Event()
        self.running = False
        self.outcome: BaseException | None = None


class TestCluster:
    """A simulated cluster: what :func:`open_test_cluster` returns, to use as ``async with``.

    Entering starts the nodes and returns the cluster itself; leaving stops every running node
    gracefully and leaves no task behind. An exception from the block propagates as it is (not
    in an exception group); a block cancelled from outside cancels the nodes too.

    Node ``i`` is a :class:`~casty_trio.cluster.ClusteredActorSystem` at ``node-i:1`` with node
    id ``node-i``, on :attr:`network`, running in its own task as a node runs in its own
    process: a node downed by the cluster ends with
    :class:`~casty_trio.cluster.NodeDownedError` (see :attr:`outcomes`) without touching the
    others.

    Properties and the synchronous methods (:meth:`node`, :meth:`address`,
    :meth:`is_running`, :meth:`partition`, :meth:`heal`) are not checkpoints; every ``async``
    method is one.

    Examples:
        A crash and a new incarnation, in a test under ``autojump_clock``::

            async with open_test_cluster(3) as cluster:
                await cluster.kill(2)
                await cluster.restart(2)
                await cluster.wait_for_up(3)
    """

    __test__ = False  # not a pytest test class, despite its name

    def __init__(
        self,
        n: int,
        *,
        seed: int,
        name: str,
        latency: float,
        config: CastyConfig | None,
        cluster_settings: ClusterSettings | None,
        roles: Sequence[frozenset[str]],
        wait: bool,
        timeout: float,
        serializer: MsgpackSerializer | None = None,
    ) -> None:
        self._network = SimNetwork(seed=seed, latency=latency)
        # Incarnations drawn from the seed: the same seed replays the same cluster.
        self._incarnations = random.Random(seed)
        self._size = n
        self._name = name
        self._config = config
        self._cluster_settings = cluster_settings
        self._serializer = serializer
        self._roles = roles
        self._wait = wait
        self._timeout = timeout
        self._slots: list[_Slot] = []
        self._nursery: trio.Nursery | None = None
        self._nursery_manager: Any = None
        self._entered = False

    async def __aenter__(self) -> Self:
        if self._entered:
            raise RuntimeError("this test cluster was already entered; open a new one")
        self._entered = True
        self._nursery_manager = trio.open_nursery()
        self._nursery = await self._nursery_manager.__aenter__()
        try:
            seed_node = self.address(0)
            for i in range(self._size):
                await self._start(i, [seed_node])
            if self._wait:
                await self.wait_for_up(self._size, timeout=self._timeout)
        except BaseException:
            await self._close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # The body's exception is not handed to the nursery: it propagates as it is, not
        # wrapped in an exception group.
        await self._close()

    # ------------------------------------------------------------------ views

    @property
    def network(self) -> SimNetwork:
        """The :class:`~casty_trio.testing.SimNetwork` every node runs on."""
        return self._network

    @property
    def nodes(self) -> list[ClusteredActorSystem]:
        """The systems, by index (a new list at each access).

        A stopped, killed or downed node keeps its entry (its last system) until
        :meth:`restart` puts a new system there; :meth:`is_running` tells them apart.
        """
        return [slot.system for slot in self._slots]

    @property
    def outcomes(self) -> list[BaseException | None]:
        """How each node ended, by index (a new list at each access).

        ``None`` while the node runs, after a graceful :meth:`stop` and after a :meth:`kill`
        (a crash raises nothing in the node); otherwise the exception that ended its block,
        typically :class:`~casty_trio.cluster.NodeDownedError`. :meth:`restart` resets it.
        """
        return [slot.outcome for slot in self._slots]

    def __len__(self) -> int:
        return self._size

    def node(self, i: int) -> ClusteredActorSystem:
        """The system at index ``i`` (the current incarnation after a :meth:`restart`).

        Raises:
            IndexError: ``i`` is not within ``0..n-1``.
        """
        return self._slot(i).system

    def address(self, i: int) -> NodeAddress:
        """The address of node ``i``: ``NodeAddress("node-i", 1)``, whatever its state.

        Raises:
            IndexError: ``i`` is not within ``0..n-1``.
        """
        return NodeAddress(f"node-{self._check(i)}", _PORT)

    def is_running(self, i: int) -> bool:
        """Whether node ``i`` is inside its ``async with`` block (not stopped, killed or downed).

        Raises:
            IndexError: ``i`` is not within ``0..n-1``.
        """
        return self._slot(i).running

    def __repr__(self) -> str:
        running = sum(slot.running for slot in self._slots)
        return f"<TestCluster {self._name!r} nodes={self._size} running={running}>"

    # ------------------------------------------------------------------ network

    def partition(self, a_indices: Iterable[int] | int, b_indices: Iterable[int] | int) -> None:
        """Cut the network between the nodes of ``a_indices`` and those of ``b_indices``.

        :meth:`SimNetwork.partition <casty_trio.testing.SimNetwork.partition>` by index:
        frames between the two sides are dropped until :meth:`heal`; partitions add up. Not
        a checkpoint.

        Raises:
            IndexError: An index is not within ``0..n-1``.
            ValueError: A node is on both sides.

        Examples:
            A 3|2 split of five nodes::

                cluster.partition([0, 1, 2], [3, 4])
        """
        self._network.partition(self._addresses(a_indices), self._addresses(b_indices))

    def heal(self) -> None:
        """Remove every partition (:meth:`SimNetwork.heal`). Not a checkpoint."""
        self._network.heal()

    # ------------------------------------------------------------------ node life cycle

    async def kill(self, i: int) -> None:
        """Crash node ``i``: cut it off the network, then cancel its task.

        Nothing leaves the node after the kill: no graceful leave, no goodbye. The others
        notice only through missing heartbeats, as for a crashed process; the
        split-brain resolver downs it after ``stable_after``. :attr:`outcomes` keeps ``None``
        for it. Killing a node that is not running only cuts its address off the network.
        A checkpoint: returns once the node's task has ended.

        Raises:
            IndexError: ``i`` is not within ``0..n-1``.

        Examples:
            ::

                await cluster.kill(4)
                assert not cluster.is_running(4)
        """
        slot = self._slot(i)
        self._network.kill(self.address(i))
        slot.scope.cancel()
        await slot.done.wait()

    async def stop(self, i: int) -> None:
        """Stop node ``i`` gracefully: its block ends normally, so it leaves the cluster.

        The others see it ``leaving``, ``exiting``, then ``removed``, and publish
        ``MemberLeft``. Stopping a node that is not running does nothing. A checkpoint:
        returns once the node's task has ended.

        Raises:
            IndexError: ``i`` is not within ``0..n-1``.

        Examples:
            ::

                await cluster.stop(4)
                assert cluster.outcomes[4] is None
        """
        slot = self._slot(i)
        slot.stop_requested.set()
        await slot.done.wait()

    async def restart(self, i: int) -> ClusteredActorSystem:
        """Start a new system at node ``i``'s address: a new incarnation (a new uid).

        The address is brought back on the network first if it was killed. The new node
        joins through the running nodes (in index order) as seeds, or forms a new cluster if
        none runs. It runs in a new task; :attr:`outcomes` is reset to ``None`` for it. A
        checkpoint: returns once the new system is entered, not once it is ``up`` (use
        :meth:`wait_for_up`).

        Returns:
            The new system (also ``cluster.node(i)`` from now on).

        Raises:
            IndexError: ``i`` is not within ``0..n-1``.
            RuntimeError: Node ``i`` is still running: :meth:`kill` or :meth:`stop` it first.

        Examples:
            ::

                old = cluster.node(2).self_unique
                await cluster.kill(2)
                system = await cluster.restart(2)
                assert system.self_unique.uid != old.uid
                await cluster.wait_for_up(3)
        """
        slot = self._slot(i)
        if not slot.done.is_set():
            raise RuntimeError(f"node {i} is running: kill or stop it before restarting it")
        self._network.restart(self.address(i))
        seeds = [self.address(j) for j, other in enumerate(self._slots) if other.running]
        return await self._start(i, seeds or [self.address(i)])

    async def wait_for_exit(self, i: int, *, timeout: float = 30.0) -> BaseException | None:
        """Wait until node ``i`` is no longer running, and return its outcome.

        A checkpoint; returns at once for a node that is not running.

        Returns:
            What :attr:`outcomes` says for node ``i``: the exception that ended it (such as
            :class:`~casty_trio.cluster.NodeDownedError`), or ``None``.

        Raises:
            IndexError: ``i`` is not within ``0..n-1``.
            TimeoutError: Node ``i`` still runs after ``timeout`` seconds.

        Examples:
            The minority side of a partition downs itself::

                cluster.partition([0, 1, 2], [3, 4])
                assert isinstance(await cluster.wait_for_exit(4), NodeDownedError)
        """
        slot = self._slot(i)
        with trio.move_on_after(timeout):
            await slot.done.wait()
            return slot.outcome
        raise TimeoutError(f"node {i} still runs after {timeout}s")

    # ------------------------------------------------------------------ waiting

    async def wait_for_up(
        self, count: int, *, on: Iterable[int] | int | None = None, timeout: float = 30.0
    ) -> None:
        """Wait until at least ``count`` members are ``up`` as seen by each node of ``on``.

        Waits on membership changes, without polling. A checkpoint.

        Args:
            count: Members that must be up.
            on: The nodes that must see them (an index or indices); by default every node
                running when the call starts.
            timeout: Seconds for all of them together.

        Raises:
            IndexError: An index is not within ``0..n-1``.
            MembershipTimeoutError: Some node saw fewer than ``count`` members up after
                ``timeout`` (also a ``TimeoutError``; ``up`` is what that node saw).

        Examples:
            ::

                await cluster.wait_for_up(5)
                await cluster.wait_for_up(3, on=[0, 1, 2], timeout=10)
        """
        if on is None:
            indices = [i for i, slot in enumerate(self._slots) if slot.running]
        else:
            indices = self._indices(on)
        waiting = -1
        with trio.move_on_after(timeout):
            for waiting in indices:
                await self._slots[waiting].system.wait_for(count, timeout=math.inf)
            return
        up = len((await self._slots[waiting].system.get_cluster_state()).up())
        raise MembershipTimeoutError(
            f"node {waiting} sees {up} of {count} members up after {timeout}s", needed=count, up=up
        )

    async def wait_for_convergence(self, *, timeout: float = 30.0) -> ClusterState:
        """Wait until every running node sees the same settled membership.

        Converged means: all running nodes see the same members (the same incarnations, removed
        members aside) with the same statuses, none of them sees a member unreachable, and
        every transition is done: each of those members is ``up`` (nobody ``joining``,
        ``leaving``, ``exiting`` or ``down`` but not removed yet), each running node among
        them. So after a :meth:`stop`, a :meth:`kill` once the resolver has downed the node, or
        a :meth:`restart`, it returns once the others agree on the outcome. Note that right
        after a :meth:`kill`, before anyone noticed, the cluster still counts as converged.
        Looks every 0.01 s (simulated time under ``autojump_clock``). A checkpoint.

        Returns:
            The converged state, as the running node of lowest index sees it.

        Raises:
            RuntimeError: No node is running.
            TimeoutError: Not converged after ``timeout`` seconds; the message shows each
                node's view.

        Examples:
            ::

                await cluster.stop(4)
                state = await cluster.wait_for_convergence()
                assert [m.node_id for m in state.up()] == ["node-0", "node-1", "node-2", "node-3"]
        """
        with trio.move_on_after(timeout):
            while True:
                running = [slot.system for slot in self._slots if slot.running]
                if not running:
                    raise RuntimeError("no node of the cluster is running")
                states = [await system.get_cluster_state() for system in running]
                if _converged(running, states):
                    return states[0]
                await trio.sleep(_POLL)
        views = []
        for i, slot in enumerate(self._slots):
            if slot.running:
                views.append(f"node {i}: {_describe(await slot.system.get_cluster_state())}")
        raise TimeoutError(f"the cluster did not converge within {timeout}s ({'; '.join(views)})")

    # ------------------------------------------------------------------ internals

    def _check(self, i: int) -> int:
        if not isinstance(i, int) or not 0 <= i < self._size:
            raise IndexError(f"no node {i!r} in a cluster of {self._size}")
        return i

    def _slot(self, i: int) -> _Slot:
        self._check(i)
        if i >= len(self._slots):
            raise RuntimeError(f"node {i} was not started: enter the cluster first")
        return self._slots[i]

    def _indices(self, indices: Iterable[int] | int) -> list[int]:
        items = [indices] if isinstance(indices, int) else list(indices)
        return [self._check(i) for i in items]

    def _addresses(self, indices: Iterable[int] | int) -> list[NodeAddress]:
        return [self.address(i) for i in self._indices(indices)]

    def _new_system(self, i: int, seeds: list[NodeAddress]) -> ClusteredActorSystem:
        address = NodeAddress(f"node-{i}", _PORT)
        return ClusteredActorSystem(
            name=self._name,
            host=address.host,
            port=address.port,
            node_id=f"node-{i}",
            seed_nodes=seeds,
            roles=self._roles[i],
            config=self._config,
            transport=self._network.transport(address.host, address.port),
            cluster_settings=self._cluster_settings,
            serializer=self._serializer,
            incarnation=self._incarnations.getrandbits(62),
        )

    async def _start(self, i: int, seeds: list[NodeAddress]) -> ClusteredActorSystem:
        if self._nursery is None or self._nursery_manager is None:
            raise RuntimeError("the test cluster is not running")
        slot = _Slot(self._new_system(i, seeds))
        if i < len(self._slots):
            self._slots[i] = slot
        else:
            self._slots.append(slot)
        await self._nursery.start(_run_node, slot)
        return slot.system

    async def _close(self) -> None:
        """Stop every running node gracefully, all at once, then close the nursery."""
        manager = self._nursery_manager
        if manager is None:
            return
        self._nursery_manager = None
        try:
            for slot in self._slots:
                slot.stop_requested.set()
            for slot in self._slots:
                await slot.done.wait()
        finally:
            await manager.__aexit__(None, None, None)


async def _run_node(slot: _Slot, *, task_status: trio.TaskStatus[None]) -> None:
    """Run one node until it is stopped, killed (cancelled) or ends by itself."""
    entered = False
    try:
        with slot.scope:
            async with slot.system:
                entered = slot.running = True
                task_status.started()
                await slot.stop_requested.wait()
    except Exception as exc:
        if not entered:
            raise  # nursery.start() raises it in the caller
        slot.outcome = exc
    finally:
        slot.running = False
        slot.done.set()


def _view(state: ClusterState) -> frozenset[tuple[UniqueAddress, MemberStatus]]:
    return frozenset((m.unique, m.status) for m in state.members)


def _converged(systems: list[ClusteredActorSystem], states: list[ClusterState]) -> bool:
    first = _view(states[0])
    if any(status is not MemberStatus.up for _, status in first):
        return False
    for system, state in zip(systems, states, strict=True):
        if state.unreachable or _view(state) != first:
            return False
        if (system.self_unique, MemberStatus.up) not in first:
            return False
    return True


def _describe(state: ClusterState) -> str:
    unreachable = {m.unique for m in state.unreachable}
    members = ", ".join(
        f"{m.node_id}#{m.unique.uid % 10000}={m.status.value}"
        + (" (unreachable)" if m.unique in unreachable else "")
        for m in state.members
    )
    return f"[{members}]"


def _per_node_roles(
    n: int, roles: Sequence[Iterable[str]] | Mapping[int, Iterable[str]] | None
) -> list[frozenset[str]]:
    if roles is None:
        return [frozenset()] * n
    if isinstance(roles, Mapping):
        for i in roles:
            if not isinstance(i, int) or not 0 <= i < n:
                raise ValueError(f"roles given for node {i!r}, not in a cluster of {n}")
        return [_role_set(roles.get(i, ())) for i in range(n)]
    if isinstance(roles, str) or len(roles) != n:
        raise ValueError(f"roles must hold one collection of roles per node ({n})")
    return [_role_set(r) for r in roles]


def _role_set(roles: Iterable[str]) -> frozenset[str]:
    if isinstance(roles, str):
        raise ValueError(f"roles of a node must be a collection of strings, not {roles!r}")
    return frozenset(roles)


def open_test_cluster(
    n: int,
    *,
    seed: int = 0,
    name: str = "test",
    latency: float = 0.001,
    config: CastyConfig | None = None,
    cluster_settings: ClusterSettings | None = None,
    roles: Sequence[Iterable[str]] | Mapping[int, Iterable[str]] | None = None,
    wait: bool = True,
    timeout: float = 30.0,
    serializer: MsgpackSerializer | None = None,
) -> TestCluster:
    """Run ``n`` clustered nodes on one :class:`SimNetwork`: ``async with ... as cluster:``.

    Node ``i`` is a :class:`~casty_trio.cluster.ClusteredActorSystem` named ``name`` at
    ``node-i:1`` with node id ``node-i``, each in its own task inside a nursery the kit owns.
    Node 0 is the seed: it forms the cluster and the others join through it. The production
    code runs unchanged; only the bytes travel through the simulated network. Use it under
    pytest-trio's ``autojump_clock`` fixture: seconds of gossip, heartbeats and downing then
    pass instantly.

    Leaving the block stops every running node gracefully (all at once) and leaves no task
    behind. Entering and leaving are checkpoints.

    Args:
        n: Number of nodes, at least 1.
        seed: Seed of the simulated network's loss and duplication draws.
        name: The actor system name of every node.
        latency: One-way latency of every link, in seconds.
        config: Configuration of every node.
        cluster_settings: Membership timings of every node (defaults: heartbeat 0.5 s,
            ``stable_after`` 5 s).
        roles: Roles per node: a sequence of ``n`` collections of role names, or a mapping
            from index to roles (nodes left out have none).
        wait: Wait, on entering, until every node sees all ``n`` members ``up``.
        timeout: Seconds that wait may take.
        serializer: The message serializer of every node (default: ``MsgpackSerializer()``);
            a script that defines its messages itself passes them in ``types=`` (see
            :class:`~casty_trio.MsgpackSerializer`).

    Returns:
        The :class:`TestCluster`, to enter with ``async with``; entering starts the nodes and
        returns the cluster itself.

    Raises:
        ValueError: ``n`` is below 1, or ``roles`` does not fit ``n`` (raised by the call).
        MembershipTimeoutError: On entering: ``wait`` is true and the cluster was not up
            within ``timeout`` (the nodes are stopped again first); also a ``TimeoutError``.

    Examples:
        In a test (pytest-trio, ``trio_mode = true``)::

            async def test_failover(autojump_clock) -> None:
                async with open_test_cluster(3, seed=7) as cluster:
                    with TestProbe(cluster.node(0)) as probe:
                        cluster.node(0).event_stream.subscribe(MemberDowned, probe.ref)
                        await cluster.kill(2)
                        await probe.expect_message(MemberDowned, within=30)
                    state = await cluster.wait_for_convergence()
                    assert [m.node_id for m in state.up()] == ["node-0", "node-1"]

        Outside pytest, a ``MockClock`` with ``autojump_threshold=0`` does the same:

        >>> import trio, trio.testing
        >>> async def main() -> list[str]:
        ...     async with open_test_cluster(3, seed=7) as cluster:
        ...         await cluster.stop(2)
        ...         state = await cluster.wait_for_convergence()
        ...         return [m.node_id for m in state.up()]
        >>> trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
        ['node-0', 'node-1']
        >>> open_test_cluster(0)
        Traceback (most recent call last):
        ...
        ValueError: a test cluster needs at least one node, got 0
    """
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"a test cluster needs at least one node, got {n!r}")
    return TestCluster(
        n,
        seed=seed,
        name=name,
        latency=latency,
        config=config,
        cluster_settings=cluster_settings,
        roles=_per_node_roles(n, roles),
        wait=wait,
        timeout=timeout,
        serializer=serializer,
    )
