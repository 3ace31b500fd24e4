"""A deterministic, in-memory network for testing nodes of a cluster in one ``trio.run``."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING

import attrs
import trio

from .._core import NodeAddress
from ..remote import TransportError
from ._connection import SimConnection
from ._transport import SimTransport, _Listener, _run_handler

if TYPE_CHECKING:
    from ..remote import Connection, Transport

    def _conforms(
        transport: SimTransport, connection: SimConnection
    ) -> tuple[Transport, Connection]:
        """Checked by mypy only: the simulated classes implement the transport protocols."""
        return transport, connection


__all__ = ["NetworkStatistics", "SimNetwork"]

_Pair = tuple[NodeAddress, NodeAddress]


@attrs.frozen
class NetworkStatistics:
    """Frame counters of a :class:`SimNetwork`, returned by :meth:`SimNetwork.statistics`.

    Every frame accepted by ``send()``, plus every duplicate made of one, ends up in exactly one
    of ``frames_delivered``, ``frames_dropped`` or ``frames_in_flight``::

        frames_sent + frames_duplicated == frames_delivered + frames_dropped + frames_in_flight

    Attributes:
        frames_sent: Frames accepted by ``send()`` on any connection.
        frames_delivered: Frames (duplicates included) that reached the receiving end while it
            was open, whether or not they have been read yet.
        frames_dropped: Frames lost to loss, a partition, a killed node, or a receiving end
            that closed before they arrived.
        frames_duplicated: Extra copies made by duplication.
        frames_in_flight: Frames travelling right now (their latency has not elapsed).
        connections_open: Connections with at least one end not closed yet.

    Examples:
        >>> SimNetwork().statistics()
        NetworkStatistics(frames_sent=0, frames_delivered=0, frames_dropped=0, frames_duplicated=0, frames_in_flight=0, connections_open=0)
    """  # noqa: E501

    frames_sent: int
    frames_delivered: int
    frames_dropped: int
    frames_duplicated: int
    frames_in_flight: int
    connections_open: int


class SimNetwork:
    """A simulated network: transports for many nodes, with latency, loss, partitions, crashes.

    Every node of a test gets a :meth:`transport` from the same network; the code above the
    transport seam runs unchanged. Connections are in memory: frames are delivered whole and in
    order per direction, each after the latency of its link, unless the network drops or
    duplicates it. Latency costs no task: a receiver sleeps until the next frame is due, so the
    network works under pytest-trio's ``autojump_clock``, where simulated seconds pass
    instantly. No task outlives the ``serve()`` or ``open_connection()`` block that owns it, and
    nothing is global: several networks can run side by side in one ``trio.run``.

    Controls (:meth:`partition`, :meth:`heal`, :meth:`kill`, :meth:`restart`,
    :meth:`set_latency`, :meth:`set_loss`, :meth:`set_duplication`) are synchronous, take
    effect immediately and are not checkpoints. Link settings are symmetric, apply to both
    directions between two nodes, and override the network-wide defaults given to the
    constructor.

    Deterministic: the same seed and the same sequence of calls give the same drops and
    duplicates. Each end of each connection draws from its own ``random.Random`` stream,
    derived from the seed, the dialing and listening nodes, the end, and how many connections
    that node had dialed to that listener before; the n-th frame sent on an end gets the n-th
    pair of draws, whatever the link settings. So the fate of a connection's frames does not
    depend on how Trio (which shuffles runnable tasks on purpose) interleaves the tasks using
    other connections: a seed that reproduces a failure keeps reproducing it.

    What is simulated and what is not:

    * Establishing a connection takes no simulated time; the latency shows in the frames
      exchanged afterwards (a handshake above the transport pays one round trip).
    * A close always reaches the peer, behind the frames sent before it, even across a
      partition: half-open connections are not modelled. A partition drops data frames only.
    * Killing a node cuts it off the network; it does not stop its tasks.

    Args:
        seed: Seed of the random streams deciding loss and duplication.
        latency: One-way latency, in seconds, of every link without an override.
        loss: Probability that a frame is lost, on every link without an override.
        duplication: Probability that a frame is delivered twice, on every link without an
            override.
        connect_timeout: How long a dial across a partition waits before it fails.
        max_frame_size: Largest frame ``send()`` accepts, in bytes.

    Raises:
        ValueError: A negative or non-finite time, a probability outside ``[0, 1]``, or a
            ``max_frame_size`` below 1.

    Examples:
        A two-node test under ``autojump_clock`` (``trio_mode = true``)::

            async def test_ping(autojump_clock):
                net = SimNetwork(seed=42, latency=0.010)
                server, client = net.transport(), net.transport()

                async def echo(conn):
                    await conn.send(await conn.receive())

                async with trio.open_nursery() as nursery:
                    address = await nursery.start(server.serve, echo)
                    async with client.open_connection(address) as conn:
                        start = trio.current_time()
                        await conn.send(b"ping")
                        assert await conn.receive() == b"ping"
                        assert trio.current_time() - start == pytest.approx(0.020)
                    nursery.cancel_scope.cancel()

        Controls are plain calls:

        >>> net = SimNetwork(seed=7)
        >>> a, b, c = (net.transport().address for _ in range(3))
        >>> net.set_latency(a, b, 0.050)
        >>> net.set_loss(a, c, 0.25)
        >>> net.partition([a], [b, c])
        >>> net.heal()
        >>> net.kill(c)
        >>> net.restart(c)
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        latency: float = 0.0,
        loss: float = 0.0,
        duplication: float = 0.0,
        connect_timeout: float = 1.0,
        max_frame_size: int = 8 * 1024 * 1024,
    ) -> None:
        if max_frame_size < 1:
            raise ValueError(f"max_frame_size must be at least 1, got {max_frame_size}")
        self._seed = seed
        self._default_latency = _check_seconds("latency", latency)
        self._default_loss = _check_probability("loss", loss)
        self._default_duplication = _check_probability("duplication", duplication)
        self._connect_timeout = _check_seconds("connect_timeout", connect_timeout)
        self._max_frame_size = max_frame_size
        self._latency: dict[_Pair, float] = {}
        self._loss: dict[_Pair, float] = {}
        self._duplication: dict[_Pair, float] = {}
        self._cut: set[_Pair] = set()
        self._killed: set[NodeAddress] = set()
        self._ports: dict[str, set[int]] = {}
        self._listeners: dict[NodeAddress, _Listener] = {}
        # Connection ends not closed yet, in creation order (a dict as an ordered set).
        self._ends: dict[SimConnection, None] = {}
        self._next_link_id = 0
        self._dials: dict[_Pair, int] = {}  # connections made so far, per (dialer, listener)
        self._frames_sent = 0
        self._frames_delivered = 0
        self._frames_dropped = 0
        self._frames_duplicated = 0

    # ------------------------------------------------------------------ properties

    @property
    def seed(self) -> int:
        """The seed of the random streams deciding loss and duplication."""
        return self._seed

    @property
    def connect_timeout(self) -> float:
        """How long, in seconds, a dial across a partition waits before it fails."""
        return self._connect_timeout

    @property
    def max_frame_size(self) -> int:
        """Largest frame, in bytes, that ``send()`` accepts."""
        return self._max_frame_size

    # ------------------------------------------------------------------ nodes

    def transport(self, host: str = "sim", port: int = 0) -> SimTransport:
        """A transport for the node at ``host:port``.

        Not a checkpoint. Port 0 picks the lowest port of ``host`` not used by an earlier
        transport of this network, counting from 1, so addresses are deterministic. An
        explicit port may repeat an earlier one: a node that stops and starts again at the same
        address gets a new transport with the same address.

        Args:
            host: The node's host name; any string.
            port: The node's port, or 0 to pick one.

        Returns:
            A :class:`SimTransport` whose :attr:`~SimTransport.address` is the node address.

        Raises:
            ValueError: ``host`` is empty or ``port`` is outside ``0..65535``.

        Examples:
            >>> net = SimNetwork()
            >>> str(net.transport().address), str(net.transport("db", 5432).address)
            ('sim:1', 'db:5432')
        """
        if not host:
            raise ValueError("host must not be empty")
        if not 0 <= port <= 65535:
            raise ValueError(f"port must be within 0..65535, got {port}")
        used = self._ports.setdefault(host, set())
        if port == 0:
            port = 1
            while port in used:
                port += 1
            if port > 65535:
                raise ValueError(f"no free port left on host {host!r}")
        used.add(port)
        return SimTransport(self, NodeAddress(host, port))

    def kill(self, node: NodeAddress) -> None:
        """Crash ``node`` as far as the network can tell.

        Every open connection of the node breaks at once: both ends get
        ``ConnectionClosed(1006, "connection lost", local=False)`` after the frames that had
        already arrived; frames in flight are lost. Dials to the node are refused and dials
        from it fail, until :meth:`restart`. The node's own tasks keep running. Not a
        checkpoint; killing a killed node does nothing.

        Args:
            node: The node to cut off.

        Examples:
            >>> net = SimNetwork()
            >>> node = net.transport().address
            >>> net.kill(node)
            >>> net.is_killed(node)
            True
        """
        self._killed.add(node)
        ends = [end for end in self._ends if node in (end._local, end._remote)]
        if ends:
            now = trio.current_time()
            for end in ends:
                end._break(now)

    def restart(self, node: NodeAddress) -> None:
        """Bring a killed ``node`` back: it accepts and dials connections again.

        Connections broken by :meth:`kill` stay broken; peers dial again. Not a checkpoint;
        restarting a node that is not killed does nothing.

        Args:
            node: The node to bring back.
        """
        self._killed.discard(node)

    def is_killed(self, node: NodeAddress) -> bool:
        """Whether ``node`` is killed (and not restarted since)."""
        return node in self._killed

    # ------------------------------------------------------------------ partitions

    def partition(
        self,
        a_nodes: Iterable[NodeAddress] | NodeAddress,
        b_nodes: Iterable[NodeAddress] | NodeAddress,
    ) -> None:
        """Cut every link between a node of ``a_nodes`` and a node of ``b_nodes``.

        Frames between the two groups are dropped silently, including those already in
        flight; connections stay open. New connections between the groups fail after
        ``connect_timeout``. Links inside each group and to other nodes are untouched.
        Partitions add up until :meth:`heal`. Not a checkpoint.

        Args:
            a_nodes: One side: a node or an iterable of nodes.
            b_nodes: The other side: a node or an iterable of nodes.

        Raises:
            ValueError: A node is on both sides.

        Examples:
            >>> net = SimNetwork()
            >>> a, b, c = (net.transport().address for _ in range(3))
            >>> net.partition(a, [b, c])
            >>> net.is_partitioned(b, a), net.is_partitioned(b, c)
            (True, False)
        """
        left = _nodes(a_nodes)
        right = _nodes(b_nodes)
        both = set(left) & set(right)
        if both:
            raise ValueError(f"nodes on both sides of a partition: {sorted(map(str, both))}")
        for a in left:
            for b in right:
                self._cut.add(_pair(a, b))
        for end in self._ends:
            if end._key in self._cut:
                end._drop_in_flight()

    def heal(self) -> None:
        """Remove every partition. Frames dropped meanwhile stay lost. Not a checkpoint."""
        self._cut.clear()

    def is_partitioned(self, a: NodeAddress, b: NodeAddress) -> bool:
        """Whether a partition separates ``a`` and ``b``."""
        return _pair(a, b) in self._cut

    # ------------------------------------------------------------------ link settings

    def set_latency(self, a: NodeAddress, b: NodeAddress, seconds: float | None) -> None:
        """Set the one-way latency between ``a`` and ``b`` (both directions).

        Applies to frames sent from now on; frames already in flight keep their arrival time,
        and order is preserved even when the latency drops. ``None`` restores the default.
        Not a checkpoint.

        Args:
            a: One node.
            b: The other node (may equal ``a`` for a node talking to itself).
            seconds: The latency, or ``None`` for the network's default.

        Raises:
            ValueError: ``seconds`` is negative or not finite.
        """
        value = None if seconds is None else _check_seconds("latency", seconds)
        _set(self._latency, _pair(a, b), value)

    def set_loss(self, a: NodeAddress, b: NodeAddress, probability: float | None) -> None:
        """Set the probability that a frame between ``a`` and ``b`` is lost (both directions).

        ``None`` restores the default. Not a checkpoint.

        Args:
            a: One node.
            b: The other node.
            probability: Between 0 (never) and 1 (always), or ``None``.

        Raises:
            ValueError: ``probability`` is outside ``[0, 1]``.
        """
        value = None if probability is None else _check_probability("loss", probability)
        _set(self._loss, _pair(a, b), value)

    def set_duplication(self, a: NodeAddress, b: NodeAddress, probability: float | None) -> None:
        """Set the probability that a frame between ``a`` and ``b`` arrives twice.

        The two copies arrive together, one after the other. Applies to both directions;
        ``None`` restores the default. Not a checkpoint.

        Args:
            a: One node.
            b: The other node.
            probability: Between 0 (never) and 1 (always), or ``None``.

        Raises:
            ValueError: ``probability`` is outside ``[0, 1]``.
        """
        value = None if probability is None else _check_probability("duplication", probability)
        _set(self._duplication, _pair(a, b), value)

    def latency(self, a: NodeAddress, b: NodeAddress) -> float:
        """The one-way latency between ``a`` and ``b``, in seconds (override or default)."""
        return self._latency.get(_pair(a, b), self._default_latency)

    # ------------------------------------------------------------------ statistics

    def statistics(self) -> NetworkStatistics:
        """Frame counters since the network was created. Not a checkpoint.

        Returns:
            A frozen :class:`NetworkStatistics` snapshot.
        """
        arrived = in_flight = 0
        if self._ends:
            now = trio.current_time()
            for end in self._ends:
                a, f = end._count_inbox(now)
                arrived += a
                in_flight += f
        return NetworkStatistics(
            frames_sent=self._frames_sent,
            frames_delivered=self._frames_delivered + arrived,
            frames_dropped=self._frames_dropped,
            frames_duplicated=self._frames_duplicated,
            frames_in_flight=in_flight,
            connections_open=len({end._link_id for end in self._ends}),
        )

    def __repr__(self) -> str:
        return f"<SimNetwork seed={self._seed} ends_open={len(self._ends)}>"

    # ------------------------------------------------------------------ internals

    async def _dial(self, source: NodeAddress, target: NodeAddress) -> SimConnection:
        await trio.lowlevel.checkpoint()
        if source in self._killed:
            raise TransportError(f"cannot dial {target} from {source}: {source} is killed")
        if _pair(source, target) in self._cut:
            await trio.sleep(self._connect_timeout)
            raise TransportError(
                f"connection from {source} to {target} timed out after "
                f"{self._connect_timeout} s: network partition"
            )
        listener = self._listeners.get(target)
        if listener is None:
            raise TransportError(
                f"connection from {source} to {target} refused: nothing listens there"
            )
        if target in self._killed:
            raise TransportError(f"connection from {source} to {target} refused: node killed")
        link_id = self._next_link_id
        self._next_link_id += 1
        ordinal = self._dials.get((source, target), 0)
        self._dials[source, target] = ordinal + 1
        stream = f"{self._seed} {source} {target} {ordinal}"
        client, server = SimConnection._pair(self, source, target, link_id, stream)
        self._ends[client] = None
        self._ends[server] = None
        listener.nursery.start_soon(_run_handler, listener.handler, server)
        return client

    def _transmit(self, sender: SimConnection, frame: bytes) -> None:
        """Put ``frame`` on the wire from ``sender`` to its peer, applying the link settings."""
        self._frames_sent += 1
        # Two draws for every frame, whatever the settings: the fate of the n-th frame sent on
        # an end depends only on n and the probabilities in force when it is sent.
        draw_loss = sender._random.random()
        draw_duplication = sender._random.random()
        receiver = sender._other
        key = sender._key
        # Skip the lookups while no link has an override (the common case).
        loss = self._loss.get(key, self._default_loss) if self._loss else self._default_loss
        if receiver._closed is not None or (self._cut and key in self._cut) or draw_loss < loss:
            self._frames_dropped += 1
            return
        duplication = self._default_duplication
        if self._duplication:
            duplication = self._duplication.get(key, duplication)
        copies = 1
        if draw_duplication < duplication:
            copies = 2
            self._frames_duplicated += 1
        latency = self._default_latency
        if self._latency:
            latency = self._latency.get(key, latency)
        receiver._arrive(trio.current_time() + latency, frame, copies)

    def _transmit_close(self, sender: SimConnection, code: int, reason: str) -> None:
        """Send ``sender``'s close to its peer, behind the frames already travelling there."""
        due = trio.current_time() + self._latency.get(sender._key, self._default_latency)
        sender._other._arrive_close(due, code, reason)

    def _forget(self, end: SimConnection) -> None:
        self._ends.pop(end, None)


def _pair(a: NodeAddress, b: NodeAddress) -> _Pair:
    return (a, b) if a <= b else (b, a)


def _nodes(nodes: Iterable[NodeAddress] | NodeAddress) -> list[NodeAddress]:
    if isinstance(nodes, NodeAddress):
        return [nodes]
    return list(nodes)


def _set(table: dict[_Pair, float], key: _Pair, value: float | None) -> None:
    if value is None:
        table.pop(key, None)
    else:
        table[key] = value


def _check_seconds(name: str, value: float) -> float:
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number of seconds >= 0, got {value!r}")
    return float(value)


def _check_probability(name: str, value: float) -> float:
    if not 0.0 <= value <= 1.0:  # also rejects nan
        raise ValueError(f"{name} must be a probability within [0, 1], got {value!r}")
    return float(value)
