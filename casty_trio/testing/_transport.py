"""The Transport of one simulated node: listens and dials on a SimNetwork."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import attrs
import trio

from .._core import NodeAddress
from ..remote import CloseCode, TransportError
from ..remote._transport import ConnectionHandler
from ._connection import SimConnection

if TYPE_CHECKING:
    from ._network import SimNetwork

__all__ = ["SimTransport"]


@attrs.define(eq=False)
class _Listener:
    handler: ConnectionHandler
    nursery: trio.Nursery


class SimTransport:
    """The :class:`~casty_trio.remote.Transport` of one node of a
    :class:`~casty_trio.testing.SimNetwork`.

    Obtained from :meth:`SimNetwork.transport <casty_trio.testing.SimNetwork.transport>`; hand it
    to whatever expects a transport. Several transports may share one address (a node that is
    stopped and started again), but only one of them can :meth:`serve` at a time.

    Examples:
        >>> from casty_trio.testing import SimNetwork
        >>> net = SimNetwork()
        >>> net.transport().address, net.transport("sim", 7).address, net.transport().address
        (NodeAddress(host='sim', port=1), NodeAddress(host='sim', port=7), NodeAddress(host='sim', port=2))
    """  # noqa: E501

    __slots__ = ("_address", "_network")

    def __init__(self, network: SimNetwork, address: NodeAddress) -> None:
        self._network = network
        self._address = address

    @property
    def address(self) -> NodeAddress:
        """The node's address: where :meth:`serve` listens and where its dials come from."""
        return self._address

    @property
    def network(self) -> SimNetwork:
        """The network this transport belongs to."""
        return self._network

    async def serve(
        self,
        handler: ConnectionHandler,
        *,
        task_status: trio.TaskStatus[NodeAddress] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Accept connections at :attr:`address` until cancelled.

        Run it with ``await nursery.start(transport.serve, handler)``, which returns the address.
        Each accepted connection runs ``handler(conn)`` in its own task inside this call's
        nursery. When the handler returns, its connection is closed with ``CloseCode.NORMAL``;
        when it raises or is cancelled (for example because ``serve`` is cancelled), with
        ``CloseCode.GOING_AWAY``. An exception from a handler propagates out of ``serve``
        (inside an ``ExceptionGroup``) and cancels the other handlers.

        While the node is :meth:`killed <casty_trio.testing.SimNetwork.kill>`, ``serve`` keeps
        running but dials to it are refused.

        A checkpoint; it only returns by raising.

        Args:
            handler: ``async def handler(conn)`` run for each incoming connection.
            task_status: Receives the listening address (never port 0).

        Raises:
            TransportError: Another transport already serves at this address.

        Examples:
            >>> import trio
            >>> from casty_trio.testing import SimNetwork
            >>> async def main() -> None:
            ...     net = SimNetwork()
            ...     async def ignore(conn):
            ...         pass
            ...     async with trio.open_nursery() as nursery:
            ...         print(await nursery.start(net.transport("node-a", 0).serve, ignore))
            ...         nursery.cancel_scope.cancel()
            >>> trio.run(main)
            node-a:1
        """
        await trio.lowlevel.checkpoint()
        address = self._address
        listeners = self._network._listeners
        if address in listeners:
            raise TransportError(f"cannot listen on {address}: address already in use")
        async with trio.open_nursery() as nursery:
            listener = _Listener(handler, nursery)
            listeners[address] = listener
            try:
                task_status.started(address)
                await trio.sleep_forever()
            finally:
                if listeners.get(address) is listener:
                    del listeners[address]

    @asynccontextmanager
    async def open_connection(self, address: NodeAddress) -> AsyncIterator[SimConnection]:
        """Dial ``address``: ``async with transport.open_connection(address) as conn:``.

        Entering is a checkpoint and takes no simulated time, except across a partition. The
        connection needs no task; leaving the block closes it with ``CloseCode.NORMAL`` (a
        checkpoint), or with ``CloseCode.GOING_AWAY`` when the block raises or is cancelled.

        Args:
            address: The node to dial.

        Yields:
            The connection to ``address``.

        Raises:
            TransportError: On entering: nothing serves at ``address`` or it is killed
                (refused at once), this node is killed, or the two nodes are partitioned
                (after the network's ``connect_timeout``).

        Examples:
            >>> import trio
            >>> from casty_trio import NodeAddress
            >>> from casty_trio.remote import TransportError
            >>> from casty_trio.testing import SimNetwork
            >>> async def main() -> None:
            ...     net = SimNetwork()
            ...     client = net.transport()
            ...     try:
            ...         async with client.open_connection(NodeAddress("sim", 9)):
            ...             pass
            ...     except TransportError as exc:
            ...         print(exc)
            >>> trio.run(main)
            connection from sim:1 to sim:9 refused: nothing listens there
        """
        conn = await self._network._dial(self._address, address)
        try:
            yield conn
        except BaseException:
            conn._close_nowait(CloseCode.GOING_AWAY, "going away")
            raise
        conn._close_nowait(CloseCode.NORMAL, "")
        await trio.lowlevel.checkpoint()

    def __repr__(self) -> str:
        return f"<SimTransport {self._address}>"


async def _run_handler(handler: ConnectionHandler, conn: SimConnection) -> None:
    try:
        await handler(conn)
    except BaseException:
        conn._close_nowait(CloseCode.GOING_AWAY, "going away")
        raise
    conn._close_nowait(CloseCode.NORMAL, "")
