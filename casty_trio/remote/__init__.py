"""Remoting: transports, peer links, remote refs. Imports only serialization and _core."""

from ._links import LinkStatistics
from ._port import RemotingPort
from ._raw import BulkReceiver, RawSender
from ._remoting import RemoteSettings
from ._system import RemoteActorSystem
from ._transport import CloseCode, Connection, ConnectionClosed, Transport, TransportError
from ._websocket import WebSocketTransport

__all__ = [
    "BulkReceiver",
    "CloseCode",
    "Connection",
    "ConnectionClosed",
    "LinkStatistics",
    "RawSender",
    "RemoteActorSystem",
    "RemoteSettings",
    "RemotingPort",
    "Transport",
    "TransportError",
    "WebSocketTransport",
]
