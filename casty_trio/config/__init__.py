"""Configuration: ``casty.toml`` loaded into frozen attrs values. Importable from any layer."""

from ._load import discover_config, load_config, parse_config
from ._model import (
    ActorConfig,
    CastyConfig,
    DefaultsConfig,
    MailboxConfig,
    SupervisionConfig,
    SystemConfig,
)

__all__ = [
    "ActorConfig",
    "CastyConfig",
    "DefaultsConfig",
    "MailboxConfig",
    "SupervisionConfig",
    "SystemConfig",
    "discover_config",
    "load_config",
    "parse_config",
]
