"""The configuration model: one frozen attrs class per TOML table.

Every key here has an effect; the docs page "Configuration" lists them with their defaults.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import attrs

from .._errors import ConfigError

__all__ = [
    "ActorConfig",
    "CastyConfig",
    "DefaultsConfig",
    "MailboxConfig",
    "SupervisionConfig",
    "SystemConfig",
]


def _positive(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value > 0 or value == float("inf"):  # also refuses nan
        raise ValueError(f"{attribute.name} must be a positive number, got {value}")


def _non_negative(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not value >= 0:  # also refuses nan
        raise ValueError(f"{attribute.name} must not be negative, got {value}")


def _at_least_one(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value >= 1 or value == float("inf"):
        raise ValueError(f"{attribute.name} must be at least 1, got {value}")


def _system_name(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not value or "/" in value or any(c.isspace() for c in value):
        raise ValueError(f"{attribute.name} must be a non-empty word without '/', got {value!r}")


def _capacity(instance: object, attribute: attrs.Attribute[int | None], value: int | None) -> None:
    if value is not None and value < 1:
        raise ValueError(f"{attribute.name} must be at least 1, got {value}")


@attrs.frozen
class SystemConfig:
    """``[system]``: the actor system itself.

    Attributes:
        name: The system's name, used when ``ActorSystem(...)`` is not given one.
        shutdown_timeout: Seconds a graceful shutdown waits before cancelling actors.
    """

    name: str = attrs.field(default="casty-system", validator=_system_name)
    shutdown_timeout: float = attrs.field(default=10.0, validator=_positive)


@attrs.frozen
class MailboxConfig:
    """``[defaults.mailbox]`` and ``[actors."<pattern>".mailbox]``.

    Attributes:
        capacity: Most queued messages; absent means unbounded.
        strategy: Overflow policy: ``drop_new``, ``drop_oldest`` or ``reject``.
    """

    capacity: int | None = attrs.field(default=None, validator=_capacity)
    strategy: Literal["drop_new", "drop_oldest", "reject"] = "drop_new"


@attrs.frozen
class SupervisionConfig:
    """``[defaults.supervision]`` and ``[actors."<pattern>".supervision]``.

    Applies to actors whose behavior has no ``Behaviors.supervise`` wrapper.

    Attributes:
        strategy: ``stop`` (Akka's default), ``restart`` or ``resume``.
        max_restarts: With ``restart``: restarts allowed within ``within`` seconds.
        within: With ``restart``: the sliding window, in seconds.
        backoff_min: With ``restart``: first backoff delay; absent means no backoff.
        backoff_max: Longest backoff delay.
        backoff_multiplier: Growth factor between consecutive backoff delays.
    """

    strategy: Literal["stop", "restart", "resume"] = "stop"
    max_restarts: int = attrs.field(default=3, validator=_non_negative)
    within: float = attrs.field(default=60.0, validator=_positive)
    backoff_min: float | None = attrs.field(default=None, validator=_non_negative)
    backoff_max: float = attrs.field(default=10.0, validator=_positive)
    backoff_multiplier: float = attrs.field(default=2.0, validator=_at_least_one)

    def __attrs_post_init__(self) -> None:
        if self.backoff_min is not None and self.backoff_min > self.backoff_max:
            raise ValueError(
                f"backoff_min ({self.backoff_min}) must not exceed backoff_max "
                f"({self.backoff_max})"
            )


@attrs.frozen
class DefaultsConfig:
    """``[defaults]``: settings for every actor not matched by ``[actors]``."""

    mailbox: MailboxConfig = MailboxConfig()
    supervision: SupervisionConfig = SupervisionConfig()


@attrs.frozen
class ActorConfig:
    """``[actors."<pattern>"]``: overrides for actors whose path or name matches ``pattern``.

    The pattern is a regular expression matched in full against the actor's path (like
    ``/bank/acc-1``) and against its name (``acc-1``); the first matching table in the file
    wins. Each sub-table given replaces the corresponding default as a whole.
    """

    mailbox: MailboxConfig | None = None
    supervision: SupervisionConfig | None = None


def regex_problem(pattern: str) -> str | None:
    """Why ``pattern`` (an ``[actors]`` key) is not a usable regular expression, if it is not."""
    try:
        re.compile(pattern)
    except re.error as exc:
        return f"actors.{pattern!r}: not a valid regular expression ({exc})"
    return None


@attrs.frozen
class CastyConfig:
    """The whole configuration; ``CastyConfig()`` is every default.

    Examples:
        >>> config = parse_config('[defaults.mailbox]\\ncapacity = 1000')  # doctest: +SKIP
        >>> config.defaults.mailbox.capacity                              # doctest: +SKIP
        1000
    """

    system: SystemConfig = SystemConfig()
    defaults: DefaultsConfig = DefaultsConfig()
    actors: dict[str, ActorConfig] = attrs.Factory(dict)
    _patterns: tuple[tuple[re.Pattern[str], ActorConfig], ...] = attrs.field(
        init=False, eq=False, repr=False
    )

    def __attrs_post_init__(self) -> None:
        problems = [
            problem for pattern in self.actors if (problem := regex_problem(pattern)) is not None
        ]
        if problems:
            raise ConfigError("; ".join(problems))
        patterns = tuple((re.compile(pattern), actor) for pattern, actor in self.actors.items())
        object.__setattr__(self, "_patterns", patterns)

    def actor(self, path: str) -> ActorConfig | None:
        """The ``[actors]`` table that applies to the actor at ``path``, if any."""
        if not self._patterns:
            return None
        name = path.rsplit("/", 1)[-1]
        for pattern, actor in self._patterns:
            if pattern.fullmatch(path) or pattern.fullmatch(name):
                return actor
        return None
