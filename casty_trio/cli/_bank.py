"""Replicated bank accounts on a cluster of OS processes: the pieces the demo, the process
tests and the replication benchmarks share.

An *account* is an event-sourced sharded entity: a :class:`Deposit` persists a
:class:`Deposited` event and is answered :class:`Confirmed` once the write is replicated
(``min_acks`` replicas acknowledged it) or :class:`Rejected` when the acknowledgements did not
come within ``ack_timeout`` or a replica refused the write (it knows a newer primary).
:class:`Audit` returns the balance and the id of every write the account holds, so a checker
can tell exactly which confirmed writes survived a crash.

:func:`open_bank_cluster` starts ``nodes`` bank processes on loopback (``python -m
casty_trio.cli._bank_node``, each a :class:`~casty_trio.cluster.ClusteredActorSystem` with the
role ``bank`` and its own :class:`~casty_trio.InMemoryJournal`), then joins them from the
calling process as a client-only member (no role: it routes, never hosts), so the caller's
writes and confirmations never die with a node. A node process can be killed with SIGKILL
(:meth:`BankNode.kill`), the honest way to crash it.

The message and event classes live here, in a module every process imports under the same
name, so their wire names agree.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import attrs
import trio

import casty_trio

from .._behaviors import Behaviors
from .._clustered import ClusteredActorSystem
from .._core import ActorContext, ActorRef, Behavior, NodeAddress
from ..cluster import ClusterSettings
from ..config import CastyConfig, DefaultsConfig, FailoverConfig
from ..persistence import EventJournal, InMemoryJournal
from ..sharding import ReplicationConfig

__all__ = [
    "FAST_PROFILE",
    "LOCAL",
    "PLAIN",
    "ROLE",
    "TYPE",
    "Audit",
    "Audited",
    "BankCluster",
    "BankNode",
    "BankSpec",
    "Confirmed",
    "Deposit",
    "Deposited",
    "GetBalance",
    "Rejected",
    "account_factory",
    "bank_config",
    "open_bank_cluster",
]

LOCAL = "127.0.0.1"
SYSTEM = "casty-bank"
TYPE = "accounts"
PLAIN = "accounts-plain"
ROLE = "bank"
_BOUND = 30.0  # seconds any one wait for a node process may take

FAST_PROFILE: dict[str, float] = {
    "heartbeat_interval": 0.1,
    "threshold": 4.0,
    "min_std_deviation": 0.05,
    "first_heartbeat_estimate": 0.1,
    "stable_after": 0.5,
}
"""The fast failure-detection profile of ``docs/configuration.md``, as ClusterSettings fields."""


# ---------------------------------------------------------------------------- messages


@attrs.frozen
class Deposit:
    """Add ``amount`` to the account; answered :class:`Confirmed` or :class:`Rejected`."""

    write_id: int
    amount: int
    reply_to: ActorRef[Confirmed | Rejected]


@attrs.frozen
class Deposited:
    """The event a :class:`Deposit` persists."""

    write_id: int
    amount: int


@attrs.frozen
class Confirmed:
    """The write ``write_id`` is persisted and replicated; ``balance`` is the balance after it."""

    write_id: int
    balance: int


@attrs.frozen
class Rejected:
    """The write ``write_id`` was persisted but not confirmed (``reason`` names the error)."""

    write_id: int
    reason: str


@attrs.frozen
class GetBalance:
    """Ask an account for its balance (an ``int``); a read, nothing is replicated."""

    reply_to: ActorRef[int]


@attrs.frozen
class Audit:
    """Ask an account for an :class:`Audited`."""

    reply_to: ActorRef[Audited]


@attrs.frozen
class Audited:
    """An account's balance and the ids of every write it holds, in order."""

    account_id: str
    balance: int
    write_ids: list[int]


AccountMsg = Deposit | GetBalance | Audit


@attrs.frozen
class _Ledger:
    """An account's state: its balance and the ids of its writes, newest first, as a chain of
    ``(write_id, earlier)`` pairs, so that applying an event costs the same on the first write
    and on the millionth (a tuple copied per event would not)."""

    balance: int = 0
    # left out of repr and ==: both would recurse once per write
    writes: tuple[int, Any] | None = attrs.field(default=None, repr=False, eq=False)

    def write_ids(self) -> list[int]:
        """The ids of the account's writes, oldest first."""
        ids = []
        link = self.writes
        while link is not None:
            ids.append(link[0])
            link = link[1]
        ids.reverse()
        return ids


def _apply(state: _Ledger, event: Deposited) -> _Ledger:
    return _Ledger(state.balance + event.amount, (event.write_id, state.writes))


def account_factory(journal: EventJournal) -> Callable[[str], Behavior[AccountMsg]]:
    """Entity factory of the accounts of one node, keeping their events in ``journal``.

    Each node passes its own journal: with replication, the replicas' copies are what
    survives the loss of a node.

    Examples:
        >>> factory = account_factory(InMemoryJournal())
        >>> type(factory("acc-1")).__name__
        'EventSourcedBehavior'
    """

    def factory(account_id: str) -> Behavior[AccountMsg]:
        async def on_command(
            ctx: ActorContext[AccountMsg], state: _Ledger, msg: AccountMsg
        ) -> Behavior[AccountMsg]:
            if isinstance(msg, Deposit):
                reply_to, write_id = msg.reply_to, msg.write_id
                balance = state.balance + msg.amount
                return Behaviors.persisted(
                    [Deposited(write_id, msg.amount)],
                    reply=lambda: reply_to.tell(Confirmed(write_id, balance)),
                    on_failure=lambda exc: reply_to.tell(Rejected(write_id, type(exc).__name__)),
                )
            if isinstance(msg, GetBalance):
                msg.reply_to.tell(state.balance)
            elif isinstance(msg, Audit):
                msg.reply_to.tell(Audited(account_id, state.balance, state.write_ids()))
            return Behaviors.same()

        return Behaviors.event_sourced(
            entity_id=account_id,
            journal=journal,
            initial_state=_Ledger(),
            on_event=_apply,
            on_command=on_command,
        )

    return factory


@attrs.frozen
class BankSpec:
    """How the bank cluster is set up; the same on every node (sent to the node processes).

    Attributes:
        nodes: Bank node processes.
        num_shards: Shards of both account types.
        replicas: Replica copies per shard of the replicated type.
        min_acks: Acknowledgements that confirm a write.
        ack_timeout: Seconds a write waits for them.
        failover_margin: ``[defaults.replication] failover_margin`` of the nodes.
        settings: :class:`~casty_trio.cluster.ClusterSettings` fields (membership timings).
    """

    nodes: int = 3
    num_shards: int = 30
    replicas: int = 2
    min_acks: int = 1
    ack_timeout: float = 2.0
    failover_margin: float = 0.2
    settings: dict[str, Any] = attrs.field(factory=lambda: dict(FAST_PROFILE))

    @property
    def replication(self) -> ReplicationConfig:
        """The replication of the ``accounts`` type."""
        return ReplicationConfig(self.replicas, self.min_acks, self.ack_timeout)

    @property
    def cluster_settings(self) -> ClusterSettings:
        """The membership timings of every process of the bank."""
        return ClusterSettings(**self.settings)

    def to_json(self) -> str:
        """This spec as JSON, for a node process's command line."""
        return json.dumps(attrs.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> BankSpec:
        """The spec :meth:`to_json` wrote."""
        return cls(**json.loads(text))


def bank_config(spec: BankSpec) -> CastyConfig:
    """The configuration of a node of ``spec``: its failover margin."""
    return CastyConfig(
        defaults=DefaultsConfig(replication=FailoverConfig(failover_margin=spec.failover_margin))
    )


def spawn_accounts(
    system: ClusteredActorSystem, spec: BankSpec, journal: EventJournal
) -> tuple[ActorRef[Any], ActorRef[Any]]:
    """Spawn the replicated ``accounts`` type and the unreplicated ``accounts-plain`` type
    (both only hosted by nodes with the role ``bank``). Not a checkpoint."""
    factory = account_factory(journal)
    accounts = system.spawn(
        Behaviors.sharded(
            factory, num_shards=spec.num_shards, replication=spec.replication, role=ROLE
        ),
        TYPE,
    )
    plain = system.spawn(Behaviors.sharded(factory, num_shards=spec.num_shards, role=ROLE), PLAIN)
    return accounts, plain


# ---------------------------------------------------------------------------- driver side


@attrs.define(eq=False)
class BankNode:
    """A bank node process seen from the driver: its JSON lines and its address."""

    index: int
    process: trio.Process
    lines: list[dict[str, Any]] = attrs.field(factory=list)
    eof: bool = False
    port: int = 0
    killed_at: float | None = None
    _changed: trio.Event = attrs.field(factory=trio.Event)
    _requests: int = 0

    @property
    def name(self) -> str:
        """``node-<index>``."""
        return f"node-{self.index}"

    @property
    def address(self) -> NodeAddress:
        """Where the node listens."""
        return NodeAddress(LOCAL, self.port)

    @property
    def alive(self) -> bool:
        """Whether the process runs (not killed, not exited)."""
        return self.killed_at is None and self.process.returncode is None

    def kill(self) -> None:
        """SIGKILL the process (no goodbye to anyone). Not a checkpoint."""
        self.killed_at = trio.current_time()
        self.process.kill()

    async def wait_line(self, key: str, value: Any = None) -> dict[str, Any]:
        """The first line carrying ``key`` (equal to ``value`` if given), once printed.

        Raises:
            RuntimeError: The process exited or printed nothing of the kind in time.
        """
        with trio.move_on_after(_BOUND):
            while True:
                for line in self.lines:
                    if key in line and (value is None or line[key] == value):
                        return line
                if self.eof:
                    raise RuntimeError(f"{self.name} exited: {self.lines[-5:]}")
                await self._changed.wait()
        raise RuntimeError(f"{self.name} printed no {key!r} within {_BOUND} s")

    async def send(self, command: str) -> None:
        """Write one command line to the process."""
        assert self.process.stdin is not None
        await self.process.stdin.send_all(command.encode() + b"\n")

    async def primaries(self) -> list[int]:
        """The shards of ``accounts`` this node hosts (it is their primary), asked now."""
        self._requests += 1
        request = self._requests
        await self.send(f"stats {request}")
        line = await self.wait_line("stats", request)
        shards: list[int] = line["shards"]
        return shards

    async def read(self) -> None:
        """Collect the process's JSON lines until its stdout closes."""
        assert self.process.stdout is not None
        buffer = b""
        while chunk := await self.process.stdout.receive_some(65536):
            buffer += chunk
            *complete, buffer = buffer.split(b"\n")
            self.lines.extend(json.loads(line) for line in complete if line.strip())
            self._notify()
        self.eof = True
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()


@attrs.define(eq=False)
class BankCluster:
    """The running bank: node processes, the driver's client-only system and its refs."""

    spec: BankSpec
    nodes: list[BankNode]
    system: ClusteredActorSystem
    accounts: ActorRef[Any]
    plain: ActorRef[Any]

    def node_at(self, address: NodeAddress) -> BankNode:
        """The node listening at ``address``."""
        return next(n for n in self.nodes if n.address == address)

    async def primaries(self) -> dict[str, list[int]]:
        """Primary shards of ``accounts`` per live node name."""
        out: dict[str, list[int]] = {}
        for node in self.nodes:
            if node.alive:
                out[node.name] = await node.primaries()
        return out


def _package_root() -> str:
    """The folder holding the casty_trio this process runs: node processes import the same."""
    return os.path.dirname(os.path.dirname(os.path.abspath(casty_trio.__file__)))


async def _start_node(nursery: trio.Nursery, index: int, seed: int, spec: BankSpec) -> BankNode:
    cmd = [sys.executable, "-m", "casty_trio.cli._bank_node", "--index", str(index)]
    cmd += ["--seed", str(seed), "--spec", spec.to_json()]
    path = os.pathsep.join(filter(None, [_package_root(), os.environ.get("PYTHONPATH")]))
    process = await trio.lowlevel.open_process(
        cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": path}
    )
    node = BankNode(index, process)
    nursery.start_soon(node.read)
    return node


async def _stop_all(nodes: list[BankNode]) -> None:
    """Close every node's stdin at once (each leaves), wait 5 s at most, kill the rest."""
    with trio.CancelScope(shield=True):
        for node in nodes:
            if node.process.returncode is None and node.process.stdin is not None:
                await node.process.stdin.aclose()
        with trio.move_on_after(5):
            for node in nodes:
                await node.process.wait()
        for node in nodes:
            if node.process.returncode is None:
                node.process.kill()
                await node.process.wait()


@asynccontextmanager
async def open_bank_cluster(
    spec: BankSpec,
    *,
    on_progress: Callable[[str], None] | None = None,
    driver_hosts: bool = False,
) -> AsyncIterator[BankCluster]:
    """Start ``spec.nodes`` bank processes, join them as a client-only member, yield the bank.

    With ``driver_hosts`` the driver joins as one more bank node instead (it hosts shards and
    replicas in its own in-memory journal), so a cluster of n hosting nodes takes n - 1
    processes besides the driver's.

    Every process is ended on the way out: its stdin is closed (it leaves the cluster), and it
    is killed if it has not exited within 5 seconds. The driver's system leaves first.

    Args:
        spec: The cluster's setup.
        on_progress: Called with a short text at each step of the start-up.

    Raises:
        RuntimeError: A node process exited or did not get ready in time.
    """
    say = on_progress or (lambda text: None)
    async with trio.open_nursery() as nursery:
        async with AsyncExitStack() as stack:
            say(f"starting {spec.nodes} node processes")
            nodes: list[BankNode] = []
            stack.push_async_callback(_stop_all, nodes)
            first = await _start_node(nursery, 0, 0, spec)
            nodes.append(first)
            first.port = (await first.wait_line("ready"))["port"]
            for index in range(1, spec.nodes):
                nodes.append(await _start_node(nursery, index, first.port, spec))
            for node in nodes[1:]:
                node.port = (await node.wait_line("ready"))["port"]
            say("joining as a client")
            async with ClusteredActorSystem(
                name=SYSTEM,
                host=LOCAL,
                port=0,
                node_id="driver" if driver_hosts else "client",
                seed_nodes=[(LOCAL, first.port)],
                roles=frozenset({ROLE}) if driver_hosts else frozenset(),
                config=bank_config(spec),
                cluster_settings=spec.cluster_settings,
            ) as system:
                await system.wait_for(spec.nodes + 1, timeout=_BOUND)
                for node in nodes:
                    await node.wait_line("spawned")
                accounts, plain = spawn_accounts(system, spec, InMemoryJournal())
                yield BankCluster(spec, nodes, system, accounts, plain)
        nursery.cancel_scope.cancel()
