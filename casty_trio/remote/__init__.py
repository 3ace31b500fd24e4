"""Remoting: transports, peer links, remote refs. Imports only serialization and _core."""

from ._links import LinkStatistics
from ._remoting import RemoteSettings
from ._system import RemoteActorSystem
from ._transport import CloseCode, Connection, ConnectionClosed, Transport, TransportError
from ._websocket import WebSocketTransport

__all__ = [
    "CloseCode",
    "Connection",
    "ConnectionClosed",
    "LinkStatistics",
    "RemoteActorSystem",
    "RemoteSettings",
    "Transport",
    "TransportError",
    "WebSocketTransport",
]
