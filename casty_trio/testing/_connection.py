"""One end of a simulated connection: an inbox of timed frames, no task of its own.

Each end keeps the frames travelling towards it in a FIFO of ``(due_time, frame)`` pairs. A frame
has *arrived* once the clock reaches its due time; :meth:`SimConnection.receive` sleeps until the
head of the queue is due, so latency costs no delivery task and order is preserved by
construction. A close sent by the peer travels the same way, behind every frame sent before it.
"""

from __future__ import annotations

import math
import random
from collections import deque
from typing import TYPE_CHECKING

import trio

from .._core import NodeAddress
from ..remote import CloseCode, ConnectionClosed

if TYPE_CHECKING:
    from ._network import SimNetwork

__all__ = ["ABNORMAL_CLOSURE", "SimConnection"]

ABNORMAL_CLOSURE = 1006
"""Close code of a connection that broke without a close frame (WebSocket's 1006)."""


class SimConnection:
    """One end of an in-memory connection of a :class:`~casty_trio.testing.SimNetwork`.

    Implements the :class:`~casty_trio.remote.Connection` protocol. Frames are
    delivered whole, in order, after the latency of the link between the two nodes, unless the
    network drops or duplicates them (see :class:`~casty_trio.testing.SimNetwork`). Obtained from
    :meth:`SimTransport.open_connection <casty_trio.testing.SimTransport.open_connection>` or
    passed to the handler of :meth:`SimTransport.serve <casty_trio.testing.SimTransport.serve>`;
    never constructed directly.

    Closing follows WebSocket semantics:

    * :meth:`aclose` on this end: every later call on this end raises
      ``ConnectionClosed(code, reason, local=True)``; frames that had arrived but were not read
      are discarded. The peer receives every frame sent before the close, then its
      :meth:`receive` raises ``ConnectionClosed(code, reason, local=False)``.
    * A close from the peer arrives after the link's latency, behind the peer's last frame.
      From then on :meth:`send` raises ``ConnectionClosed(code, reason, local=False)``, and
      :meth:`receive` raises it once it has returned the frames that arrived before the close.
    * A broken connection (:meth:`SimNetwork.kill <casty_trio.testing.SimNetwork.kill>`): both
      ends get ``ConnectionClosed(1006, "connection lost", local=False)`` immediately, after the
      frames that had already arrived; frames still in flight are lost.

    Examples:
        >>> import trio
        >>> from casty_trio.testing import SimNetwork
        >>> async def main() -> None:
        ...     net = SimNetwork()
        ...     server, client = net.transport(), net.transport()
        ...     async def shout(conn):
        ...         await conn.send((await conn.receive()).upper())
        ...     async with trio.open_nursery() as nursery:
        ...         address = await nursery.start(server.serve, shout)
        ...         async with client.open_connection(address) as conn:
        ...             await conn.send(b"hello")
        ...             print(await conn.receive(), conn.peer)
        ...         nursery.cancel_scope.cancel()
        >>> trio.run(main)
        b'HELLO' sim:1
    """

    __slots__ = (
        "_closed",
        "_inbox",
        "_key",
        "_link_id",
        "_local",
        "_lot",
        "_network",
        "_other",
        "_random",
        "_remote",
        "_remote_close",
    )

    def __init__(
        self,
        network: SimNetwork,
        local: NodeAddress,
        remote: NodeAddress,
        link_id: int,
        stream: str,
    ) -> None:
        self._network = network
        self._local = local
        self._remote = remote
        # The link's key in the network's settings tables: the two nodes, sorted.
        self._key = (local, remote) if local <= remote else (remote, local)
        self._link_id = link_id
        # Decides the fate of the frames this end sends: its own stream, so that what happens
        # on one connection does not depend on how Trio interleaves tasks using others.
        self._random = random.Random(stream)
        self._other: SimConnection = self  # set by ``_pair``
        self._inbox: deque[tuple[float, bytes]] = deque()
        # A close travelling towards this end: (due time, code, reason).
        self._remote_close: tuple[float, int, str] | None = None
        # Set once this end is closed for good; every later call raises a copy of it.
        self._closed: ConnectionClosed | None = None
        self._lot = trio.lowlevel.ParkingLot()

    @staticmethod
    def _pair(
        network: SimNetwork, client: NodeAddress, server: NodeAddress, link_id: int, stream: str
    ) -> tuple[SimConnection, SimConnection]:
        a = SimConnection(network, client, server, link_id, f"{stream} dialer")
        b = SimConnection(network, server, client, link_id, f"{stream} listener")
        a._other = b
        b._other = a
        return a, b

    # ------------------------------------------------------------------ public API

    @property
    def peer(self) -> str:
        """The node at the other end, as ``host:port`` (for log lines).

        On the accepting side this is the dialing node's address, not an ephemeral port.
        """
        return str(self._remote)

    @property
    def local_address(self) -> NodeAddress:
        """The node this end belongs to."""
        return self._local

    @property
    def peer_address(self) -> NodeAddress:
        """The node at the other end."""
        return self._remote

    async def send(self, frame: bytes) -> None:
        """Send one frame to the peer.

        A checkpoint. Returns as soon as the frame is on its way: the network may still drop or
        duplicate it, and it arrives after the link's latency. Cancellation before the frame
        was handed to the network means it was not sent.

        Args:
            frame: The bytes to send, at most the network's ``max_frame_size``.

        Raises:
            ConnectionClosed: The connection is closed (``local`` says by whom). A frame larger
                than ``max_frame_size`` closes the connection on both sides with
                ``CloseCode.TOO_BIG``; this call then raises it with ``local=True``.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        closed = self._closed_for_send()
        if closed is None and len(frame) > self._network.max_frame_size:
            self._close_nowait(
                CloseCode.TOO_BIG,
                f"frame of {len(frame)} bytes exceeds max_frame_size "
                f"{self._network.max_frame_size}",
            )
            closed = self._closed_for_send()
        if closed is not None:
            await trio.lowlevel.cancel_shielded_checkpoint()
            raise closed
        self._network._transmit(self, bytes(frame))
        await trio.lowlevel.cancel_shielded_checkpoint()

    async def receive(self) -> bytes:
        """Wait for the next frame from the peer and return it.

        A checkpoint. Cancellation loses no frame: a frame is only taken from the connection
        when this call returns it.

        Returns:
            The next frame, in the order the peer sent them.

        Raises:
            ConnectionClosed: The connection is closed and every frame that arrived before the
                close has been returned.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        while True:
            closed = self._closed
            if closed is not None:
                await trio.lowlevel.cancel_shielded_checkpoint()
                raise _copy(closed)
            now = trio.current_time()
            inbox = self._inbox
            if inbox:
                due, frame = inbox[0]
                if due <= now:
                    inbox.popleft()
                    self._network._frames_delivered += 1
                    await trio.lowlevel.cancel_shielded_checkpoint()
                    return frame
                wake_at = due
            elif self._remote_close is not None:
                due, code, reason = self._remote_close
                if due <= now:
                    self._finish(ConnectionClosed(code, reason, local=False))
                    continue
                wake_at = due
            else:
                wake_at = math.inf
            with trio.move_on_at(wake_at):
                await self._lot.park()

    async def aclose(self, code: int = CloseCode.NORMAL, reason: str = "") -> None:
        """Close the connection with ``code`` and ``reason``; idempotent.

        A checkpoint, but the connection is closed even if the call is cancelled. If a close
        from the peer had already arrived, this end keeps that close (``local=False``).

        Args:
            code: Close code sent to the peer (see ``CloseCode``).
            reason: Human-readable reason sent to the peer.
        """
        self._close_nowait(code, reason)
        await trio.lowlevel.checkpoint()

    def __repr__(self) -> str:
        state = "open" if self._closed is None else f"closed {self._closed.code}"
        return f"<SimConnection {self._local} -> {self._remote} {state}>"

    # ------------------------------------------------------------------ internals

    def _closed_for_send(self) -> ConnectionClosed | None:
        if self._closed is not None:
            return _copy(self._closed)
        remote = self._remote_close
        if remote is not None and remote[0] <= trio.current_time():
            return ConnectionClosed(remote[1], remote[2], local=False)
        return None

    def _close_nowait(self, code: int, reason: str) -> None:
        """Close this end now (sync); the close travels to the peer like a frame."""
        if self._closed is not None:
            return
        remote = self._remote_close
        if remote is not None and remote[0] <= trio.current_time():
            self._finish(ConnectionClosed(remote[1], remote[2], local=False))
            return
        self._finish(ConnectionClosed(code, reason, local=True))
        self._network._transmit_close(self, code, reason)

    def _finish(self, closed: ConnectionClosed) -> None:
        """Mark this end closed for good, account for its unread frames, wake its waiters."""
        self._closed = closed
        self._discard_inbox(keep_arrived=False)
        self._network._forget(self)
        self._lot.unpark_all()

    def _discard_inbox(self, *, keep_arrived: bool) -> None:
        """Drop frames still in flight (and, unless ``keep_arrived``, the unread ones too)."""
        inbox = self._inbox
        if not inbox:
            return
        now = trio.current_time()
        arrived = 0
        for due, _ in inbox:
            if due > now:
                break
            arrived += 1
        in_flight = len(inbox) - arrived
        net = self._network
        net._frames_dropped += in_flight
        if keep_arrived:
            for _ in range(in_flight):
                inbox.pop()
        else:
            net._frames_delivered += arrived
            inbox.clear()

    def _arrive(self, due: float, frame: bytes, copies: int) -> None:
        """Queue ``copies`` of ``frame`` to become readable at ``due`` (order preserved)."""
        inbox = self._inbox
        if inbox and inbox[-1][0] > due:
            due = inbox[-1][0]
        for _ in range(copies):
            inbox.append((due, frame))
        self._lot.unpark_all()

    def _arrive_close(self, due: float, code: int, reason: str) -> None:
        """Queue the peer's close behind every frame already travelling here."""
        if self._closed is not None or self._remote_close is not None:
            return
        if self._inbox and self._inbox[-1][0] > due:
            due = self._inbox[-1][0]
        self._remote_close = (due, code, reason)
        self._lot.unpark_all()

    def _break(self, now: float) -> None:
        """The connection broke (a node was killed): lose what is in flight, close with 1006."""
        remote = self._remote_close
        if self._closed is not None or (remote is not None and remote[0] <= now):
            return
        self._discard_inbox(keep_arrived=True)
        self._remote_close = (now, ABNORMAL_CLOSURE, "connection lost")
        self._lot.unpark_all()

    def _drop_in_flight(self) -> None:
        """Lose the frames still travelling here (a partition cut the link)."""
        if self._inbox and self._inbox[-1][0] > trio.current_time():
            self._discard_inbox(keep_arrived=True)

    def _count_inbox(self, now: float) -> tuple[int, int]:
        """(arrived but unread, still in flight)."""
        arrived = 0
        for due, _ in self._inbox:
            if due > now:
                break
            arrived += 1
        return arrived, len(self._inbox) - arrived


def _copy(closed: ConnectionClosed) -> ConnectionClosed:
    # A fresh exception per raise, so tracebacks do not pile up on one shared instance.
    return ConnectionClosed(closed.code, closed.reason, local=closed.local)
