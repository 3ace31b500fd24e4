"""RemoteActorSystem: an ActorSystem whose actors can talk to actors of other nodes."""

from __future__ import annotations

from typing import Any

import trio

from .._core import ActorRef, ActorSystem, NodeAddress
from .._errors import ActorSystemError
from ..config import CastyConfig
from ..serialization import MsgpackSerializer
from ..tls import TlsConfig
from ._links import LinkStatistics
from ._port import RemotingPort
from ._remoting import RemoteSettings, Remoting
from ._transport import Transport
from ._websocket import WebSocketTransport

__all__ = ["RemoteActorSystem"]


class RemoteActorSystem(ActorSystem):
    """An actor system reachable over the network, with refs to actors of other nodes.

    Peers must run systems of the same ``name``. Messages to remote refs are encoded at the
    ``tell`` (an unencodable message raises :class:`~casty_trio.SerializationError` there) and
    travel over one link per pair of nodes, batched into frames under load. Replies to asks come
    back over the link. Watching a remote ref delivers ``Terminated`` when that actor stops or
    when the link to its node is declared lost.

    Args:
        name: The system's name, shared by every node that talks to this one.
        host: The host other nodes reach this one at.
        port: The port to listen on; 0 picks a free one (see :attr:`self_node`).
        bind_host: The interface to listen on (default: ``host``).
        config: A :class:`~casty_trio.CastyConfig`.
        tls: A :class:`~casty_trio.tls.TlsConfig` for mutual TLS (``wss``).
        serializer: The message serializer (default: ``MsgpackSerializer()``).
        transport: A transport to use instead of WebSocket, such as a simulated network's.
        settings: Remoting tunables (frame size, outbox capacity, timeouts); default: from the
            ``[transport]`` table of ``config``.

    Examples:
        >>> async with RemoteActorSystem("app", port=0) as system:  # doctest: +SKIP
        ...     remote = system.lookup("/greeter", node=NodeAddress("10.0.0.2", 25520))
        ...     remote.tell(Greet("hi"))
    """

    def __init__(
        self,
        name: str = "casty-system",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        bind_host: str | None = None,
        config: CastyConfig | None = None,
        tls: TlsConfig | None = None,
        serializer: MsgpackSerializer | None = None,
        transport: Transport | None = None,
        settings: RemoteSettings | None = None,
    ) -> None:
        super().__init__(name, config=config)
        if settings is None:
            wire = self._config.transport  # [transport], every default without a config
            settings = RemoteSettings(
                max_frame_size=wire.max_frame_size,
                outbox_capacity=wire.outbox_capacity,
                handshake_timeout=wire.handshake_timeout,
                reconnect_min=wire.reconnect_min,
                reconnect_max=wire.reconnect_max,
            )
        self._settings = settings
        if transport is None:
            transport = WebSocketTransport(
                host,
                port,
                bind_host=bind_host,
                tls=tls,
                max_frame_size=self._settings.max_frame_size,
                handshake_timeout=self._settings.handshake_timeout,
            )
        serializer = serializer or MsgpackSerializer()
        self._remoting = Remoting(self, transport, serializer, self._settings)

    @property
    def self_node(self) -> NodeAddress:
        """The address peers reach this node at (the real port once entered)."""
        if self._node is None:
            raise ActorSystemError(f"actor system {self.name!r} is not listening yet")
        return self._node

    @property
    def remoting(self) -> RemotingPort:
        """The remoting port of this system, for layers built on top (see
        :class:`~casty_trio.remote.RemotingPort`). Not a checkpoint."""
        return self._remoting

    async def _start_services(self, nursery: trio.Nursery) -> None:
        self._node = await self._remoting.start(nursery)

    async def _stop_services(self) -> None:
        await self._remoting.aclose()

    def lookup(self, path: str, *, node: NodeAddress | None = None) -> ActorRef[Any] | None:
        """A ref to the actor at ``path``: local by default, or on ``node``.

        A local lookup returns ``None`` when no such actor lives here. A remote lookup always
        returns a ref, without a round trip: if nothing lives there, messages become dead
        letters on that node. Not a checkpoint.
        """
        if not path.startswith("/"):
            path = "/" + path
        if node is None or node == self._node:
            return super().lookup(path)
        return self._remoting.remote_ref(node, path.rstrip("/"))

    def link_statistics(self) -> dict[NodeAddress, LinkStatistics]:
        """Counters per peer link (frames, messages, bytes, drops, decode errors)."""
        return self._remoting.statistics()
