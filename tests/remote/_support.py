"""Helpers for remoting tests on the simulated network: nodes, behaviors, a hand-driven peer.

Everything waits with ``trio.fail_after`` deadlines and ``trio.sleep`` polling, which cost no
wall-clock time under pytest-trio's ``autojump_clock``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import msgspec
import pytest
import trio

from casty_trio import ActorContext, ActorRef, Behavior, Behaviors, NodeAddress
from casty_trio.remote import ConnectionClosed, RemoteActorSystem, RemoteSettings, Transport
from casty_trio.serialization._wire import PROTOCOL_VERSION, Batch, Hello, Item, Reject
from casty_trio.testing import SimConnection, SimNetwork
from tests.remote._messages import Gather, Gathered, Ping, Pong, SlowPing

WIRE = msgspec.msgpack.Encoder()
WIRE_DECODER = msgspec.msgpack.Decoder(Hello | Reject | Batch)
REMOTE_LOGGER = "casty_trio.remote"


# ---------------------------------------------------------------------- behaviors


def ponger() -> Behavior[Any]:
    """Answers ``Ping`` with ``Pong(n, self)``, ``SlowPing`` after its delay, ``Gather`` fully."""

    async def receive(ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
        if isinstance(msg, Ping):
            msg.reply_to.tell(Pong(msg.n, ctx.self))
        elif isinstance(msg, SlowPing):
            await trio.sleep(msg.delay)
            msg.reply_to.tell(Pong(msg.n, ctx.self))
        elif isinstance(msg, Gather):
            for ref in msg.refs:
                ref.tell(Pong(msg.n, ctx.self))
            for key, ref in sorted(msg.table.items()):
                ref.tell(Pong(len(key), ctx.self))
            helper = ctx.child("helper")
            if helper is None:
                helper = ctx.spawn(ponger(), "helper")
            msg.reply_to.tell(Gathered(msg.n, (ctx.self, helper), {"me": ctx.self, "h": helper}))
        return Behaviors.same()

    return Behaviors.receive(receive)


# ---------------------------------------------------------------------- nodes


@asynccontextmanager
async def nodes(
    net: SimNetwork,
    *hosts: str,
    settings: RemoteSettings | None = None,
    name: str = "app",
) -> AsyncIterator[list[RemoteActorSystem]]:
    """Start one RemoteActorSystem per host (port picked by the network), each with a ponger."""
    async with AsyncExitStack() as stack:
        systems: list[RemoteActorSystem] = []
        for host in hosts:
            system = RemoteActorSystem(name, transport=net.transport(host), settings=settings)
            await stack.enter_async_context(system)
            system.spawn(ponger(), "ponger")
            systems.append(system)
        yield systems


@asynccontextmanager
async def node_on(
    transport: Transport, *, settings: RemoteSettings | None = None, name: str = "app"
) -> AsyncIterator[RemoteActorSystem]:
    """One node on a given transport (to start a node again at a previous node's address)."""
    system = RemoteActorSystem(name, transport=transport, settings=settings)
    async with system:
        system.spawn(ponger(), "ponger")
        yield system


def remote(system: RemoteActorSystem, path: str, node: RemoteActorSystem) -> ActorRef[Any]:
    """A ref, held by ``system``, to the actor at ``path`` on ``node``."""
    ref = system.lookup(path, node=node.self_node)
    assert ref is not None
    return ref


def at(system: RemoteActorSystem, path: str, node: NodeAddress) -> ActorRef[Any]:
    """A ref, held by ``system``, to the actor at ``path`` on the node at ``node``."""
    ref = system.lookup(path, node=node)
    assert ref is not None
    return ref


async def ping(a: RemoteActorSystem, b: RemoteActorSystem, n: int = 1, within: float = 5.0) -> Pong:
    """Ask b's ponger from a; assert the reply and that its sender ref works."""
    pong: Pong = await a.ask(remote(a, "/ponger", b), lambda r: Ping(n, r), timeout=within)
    assert pong.n == n
    assert pong.sender == remote(a, "/ponger", b)
    return pong


async def assert_serving(a: RemoteActorSystem, b: RemoteActorSystem) -> None:
    """Both nodes answer asks from each other (the link between them works both ways)."""
    await ping(a, b, 101)
    await ping(b, a, 102)


def assert_link_untouched(a: RemoteActorSystem, b: RemoteActorSystem) -> None:
    """The link between a and b is still its first connection, with no decode error."""
    for x, y in ((a, b), (b, a)):
        stats = x.link_statistics()[y.self_node]
        assert stats.connected and stats.connections == 1 and stats.decode_errors == 0, stats


async def wait_until(predicate: Callable[[], bool], within: float = 5.0) -> None:
    """Poll ``predicate`` in simulated time (free under ``autojump_clock``)."""
    with trio.fail_after(within):
        while not predicate():
            await trio.sleep(0.001)


# ---------------------------------------------------------------------- a hand-driven peer


class RawPeer:
    """One raw connection to a node, driven by hand: send any bytes, read what comes back."""

    def __init__(self, conn: SimConnection, address: NodeAddress) -> None:
        self.conn = conn
        self.address = address
        self.received: list[bytes] = []

    def hello(
        self,
        *,
        version: int = PROTOCOL_VERSION,
        system: str = "app",
        uid: int = 4242,
    ) -> bytes:
        return WIRE.encode(Hello(version, system, self.address.host, self.address.port, uid))

    async def handshake(self, **kwargs: Any) -> Hello:
        """Send our hello, read the node's (which it sends first)."""
        await self.conn.send(self.hello(**kwargs))
        with trio.fail_after(5):
            theirs = WIRE_DECODER.decode(await self.conn.receive())
        assert isinstance(theirs, Hello)
        return theirs

    async def send(self, frame: bytes) -> None:
        await self.conn.send(frame)

    async def send_batch(self, seq: int, items: list[Item]) -> None:
        await self.conn.send(WIRE.encode(Batch(seq, items)))

    async def closed(self, within: float = 10.0) -> ConnectionClosed:
        """Read until the node closes the connection; return how (frames land in received)."""
        with trio.fail_after(within):
            while True:
                try:
                    self.received.append(await self.conn.receive())
                except ConnectionClosed as exc:
                    assert not exc.local
                    return exc

    def decoded(self) -> list[Any]:
        return [WIRE_DECODER.decode(frame) for frame in self.received]


@asynccontextmanager
async def raw_peer(
    net: SimNetwork, node: RemoteActorSystem, host: str = "evil"
) -> AsyncIterator[RawPeer]:
    transport = net.transport(host)
    async with transport.open_connection(node.self_node) as conn:
        assert isinstance(conn, SimConnection)
        yield RawPeer(conn, transport.address)


def logged(caplog: pytest.LogCaptureFixture, *needles: str, level: int = logging.WARNING) -> bool:
    """Whether one remoting record at ``level`` or above contains every needle."""
    return any(
        record.levelno >= level and all(needle in record.getMessage() for needle in needles)
        for record in caplog.records
        if record.name.startswith(REMOTE_LOGGER)
    )
