"""Configuration: ``casty.toml`` loaded into frozen attrs values. Importable from any layer."""

from ._load import discover_config, load_config, parse_config
from ._model import (
    ActorConfig,
    CastyConfig,
    ClusterConfig,
    ClusterTlsConfig,
    DefaultsConfig,
    DowningConfig,
    FailoverConfig,
    FailureDetectorConfig,
    GossipConfig,
    HeartbeatConfig,
    MailboxConfig,
    ShardingConfig,
    SupervisionConfig,
    SystemConfig,
    TransportConfig,
    parse_host_port,
)

__all__ = [
    "ActorConfig",
    "CastyConfig",
    "ClusterConfig",
    "ClusterTlsConfig",
    "DefaultsConfig",
    "DowningConfig",
    "FailoverConfig",
    "FailureDetectorConfig",
    "GossipConfig",
    "HeartbeatConfig",
    "MailboxConfig",
    "ShardingConfig",
    "SupervisionConfig",
    "SystemConfig",
    "TransportConfig",
    "discover_config",
    "load_config",
    "parse_config",
    "parse_host_port",
]
