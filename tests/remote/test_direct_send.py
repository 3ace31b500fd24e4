"""Sending from the tell: a link whose connection can write from synchronous code
(``SupportsSendNowait``) sends a lone message at once, and still batches a burst, keeps the
order, finishes a frame the connection held back, and falls back to its writer when refused.

The connections here are the simulated network's, wrapped with a ``send_nowait`` that the test
steers (the WebSocket connection's own ``send_nowait`` is tested in test_websocket_wire.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import trio

from casty_trio import NodeAddress
from casty_trio.remote import Connection, RemoteActorSystem
from casty_trio.remote._transport import SupportsSendNowait
from casty_trio.testing import SimConnection, SimNetwork, TestProbe
from tests.remote._messages import Seq
from tests.remote._support import node_on, nodes, ping, remote, wait_until

WRITE, HOLD, REFUSE = "write", "hold", "refuse"


class Direct:
    """A simulated connection with a ``send_nowait`` that writes, holds back, or refuses."""

    def __init__(self, conn: SimConnection, modes: dict[str, str]) -> None:
        self._conn = conn
        self._modes = modes  # shared by every connection of a transport: the test flips it
        self._held: list[bytes] = []
        self.peer = conn.peer
        self.direct = 0  # frames taken by send_nowait

    def send_nowait(self, frame: bytes) -> bool:
        mode = self._modes["mode"]
        if mode == REFUSE or self._held or self._conn._closed_for_send() is not None:
            return False
        self.direct += 1
        if mode == HOLD:
            self._held.append(frame)  # as if the socket took none of it yet
        else:
            self._conn._network._transmit(self._conn, bytes(frame))
        return True

    @property
    def backlogged(self) -> bool:
        return bool(self._held)

    async def flush(self) -> None:
        while self._held:
            await self._conn.send(self._held.pop(0))
        await trio.lowlevel.checkpoint()

    async def send(self, frame: bytes) -> None:
        await self.flush()  # what was held back goes first
        await self._conn.send(frame)

    async def receive(self) -> bytes:
        return await self._conn.receive()

    async def aclose(self, code: int = 1000, reason: str = "") -> None:
        await self._conn.aclose(code, reason)


class DirectTransport:
    """A simulated transport whose connections are :class:`Direct`."""

    def __init__(self, net: SimNetwork, host: str) -> None:
        self._inner = net.transport(host)
        self.modes = {"mode": WRITE}
        self.connections: list[Direct] = []

    def _wrap(self, conn: Connection) -> Direct:
        assert isinstance(conn, SimConnection)
        direct = Direct(conn, self.modes)
        assert isinstance(direct, SupportsSendNowait)
        self.connections.append(direct)
        return direct

    async def serve(
        self,
        handler: Callable[[Connection], Awaitable[None]],
        *,
        task_status: trio.TaskStatus[NodeAddress] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        async def wrapped(conn: Connection) -> None:
            await handler(self._wrap(conn))

        await self._inner.serve(wrapped, task_status=task_status)

    @asynccontextmanager
    async def open_connection(self, address: NodeAddress) -> AsyncIterator[Connection]:
        async with self._inner.open_connection(address) as conn:
            yield self._wrap(conn)

    def direct(self) -> int:
        return sum(conn.direct for conn in self.connections)


@asynccontextmanager
async def pair(net: SimNetwork) -> AsyncIterator[tuple[RemoteActorSystem, DirectTransport, Any]]:
    """Node a on a DirectTransport, node b on a plain simulated one."""
    transport = DirectTransport(net, "a")
    async with node_on(transport) as a, nodes(net, "b") as (b,):
        yield a, transport, b


async def test_a_lone_ask_goes_out_from_the_tell(autojump_clock: Any) -> None:
    net = SimNetwork(seed=1, latency=0.002)
    async with pair(net) as (a, transport, b):
        await ping(a, b, 1)  # connects the link
        before = transport.direct()
        for n in range(2, 12):
            await ping(a, b, n)
        assert transport.direct() - before == 10  # every ask went out from its tell
        stats = a.link_statistics()[b.self_node]
        assert stats.frames_out == stats.messages_out  # a frame each, counted as usual


async def test_a_burst_is_batched_behind_the_first_message(autojump_clock: Any) -> None:
    net = SimNetwork(seed=2, latency=0.002)
    async with pair(net) as (a, transport, b):
        await ping(a, b, 1)
        probe = TestProbe(b, "sink")
        sink = remote(a, "/sink", b)
        before = transport.direct()
        frames = a.link_statistics()[b.self_node].frames_out
        for n in range(500):
            sink.tell(Seq("a", n))
        got = [m.n for m in await probe.receive_messages(500, within=10)]
        assert got == list(range(500))
        assert transport.direct() - before == 1  # only the first one: the rest queued behind
        assert a.link_statistics()[b.self_node].frames_out - frames < 10


async def test_a_frame_held_back_goes_out_before_the_next_ones(autojump_clock: Any) -> None:
    net = SimNetwork(seed=3, latency=0.002)
    async with pair(net) as (a, transport, b):
        await ping(a, b, 1)
        probe = TestProbe(b, "sink")
        sink = remote(a, "/sink", b)
        transport.modes["mode"] = HOLD
        sink.tell(Seq("a", 0))  # held back by the connection, nothing after it: the writer
        assert [m.n for m in await probe.receive_messages(1, within=10)] == [0]  # flushes it
        sink.tell(Seq("a", 1))  # held back again, and 49 more queue behind it
        for n in range(2, 50):
            sink.tell(Seq("a", n))
        got = [m.n for m in await probe.receive_messages(49, within=10)]
        assert got == list(range(1, 50))
        await wait_until(lambda: not any(conn.backlogged for conn in transport.connections))
        await ping(a, b, 2)  # and the link goes on


async def test_a_refused_frame_goes_through_the_writer(autojump_clock: Any) -> None:
    net = SimNetwork(seed=4, latency=0.002)
    async with pair(net) as (a, transport, b):
        transport.modes["mode"] = REFUSE
        await ping(a, b, 1)
        probe = TestProbe(b, "sink")
        sink = remote(a, "/sink", b)
        for n in range(20):
            sink.tell(Seq("a", n))
            await trio.sleep(0.001)  # idle between tells: each one tries send_nowait
        got = [m.n for m in await probe.receive_messages(20, within=10)]
        assert got == list(range(20))
        assert transport.direct() == 0
        stats = a.link_statistics()[b.self_node]
        assert stats.messages_out >= 21 and stats.dropped == 0


async def test_replies_on_an_accepted_connection_go_out_from_the_tell(autojump_clock: Any) -> None:
    net = SimNetwork(seed=5, latency=0.002)
    async with pair(net) as (a, transport, b):
        for n in range(5):
            await ping(b, a, n)  # b dials a: a's ponger replies on the accepted connection
        assert transport.direct() >= 4
        stats = a.link_statistics()[b.self_node]
        assert stats.connections == 1 and stats.dropped == 0
