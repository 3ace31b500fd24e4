"""The configuration model: one frozen attrs class per TOML table.

Every key here has an effect; the docs page "Configuration" lists them with their defaults.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any, Literal

import attrs

from .._errors import ConfigError

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
    "minimum_stable_after",
    "parse_host_port",
    "phi_deviations",
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


def _capacity(instance: object, attribute: attrs.Attribute[Any], value: int | None) -> None:
    if value is not None and value < 1:
        raise ValueError(f"{attribute.name} must be at least 1, got {value}")


def _non_negative_finite(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0 <= value < math.inf:  # also refuses nan
        raise ValueError(f"{attribute.name} must be a non-negative finite number, got {value}")


def _port(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if not 0 <= value <= 65535:
        raise ValueError(f"{attribute.name} must be a port number from 0 to 65535, got {value}")


def _word(instance: object, attribute: attrs.Attribute[Any], value: str | None) -> None:
    if value is not None and (not value or any(c.isspace() for c in value)):
        raise ValueError(f"{attribute.name} must be a non-empty word, got {value!r}")


def _words(
    instance: object, attribute: attrs.Attribute[tuple[str, ...]], value: tuple[str, ...]
) -> None:
    for index, item in enumerate(value):
        if not item or any(c.isspace() for c in item):
            raise ValueError(f"{attribute.name}[{index}] must be a non-empty word, got {item!r}")


def _strings(value: Iterable[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        raise TypeError(f"expected a sequence of strings, got str {value!r}")
    return tuple(value)


def _path(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not value:
        raise ValueError(f"{attribute.name} must be a non-empty file path")


def parse_host_port(text: str) -> tuple[str, int]:
    """Split a ``"host:port"`` string (``"[::1]:25520"`` for an IPv6 host).

    Raises:
        ValueError: Not ``host:port`` with a non-empty host and a port from 1 to 65535.

    Examples:
        >>> parse_host_port("10.0.0.5:25520")
        ('10.0.0.5', 25520)
        >>> parse_host_port("[::1]:25520")
        ('::1', 25520)
    """
    host, sep, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        host = ""  # an IPv6 host must be bracketed
    if (
        not sep
        or not host
        or any(c.isspace() or c in "[]/" for c in host)
        or not (port.isascii() and port.isdigit())
        or not 1 <= int(port) <= 65535
    ):
        raise ValueError(f"expected 'host:port' with a port from 1 to 65535, got {text!r}")
    return host, int(port)


def _seed_nodes(
    instance: object, attribute: attrs.Attribute[tuple[str, ...]], value: tuple[str, ...]
) -> None:
    for index, item in enumerate(value):
        try:
            parse_host_port(item)
        except ValueError as exc:
            raise ValueError(f"{attribute.name}[{index}]: {exc}") from None


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
                f"backoff_min ({self.backoff_min}) must not exceed backoff_max ({self.backoff_max})"
            )


def _optional_positive(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None:
        _positive(instance, attribute, value)


@attrs.frozen
class ShardingConfig:
    """``[defaults.sharding]``: tunables of every sharded type.

    Attributes:
        buffer_size: Messages a region holds (per type and node) while shard homes are unknown
            (being resolved or handed off); beyond it new messages become dead letters.
        retry_interval: Seconds between retries of a region's registration and of shard home
            requests the coordinator has not answered.
        handoff_timeout: Seconds a handoff may take; then the coordinator gives up and the
            shard stays where it was (and the old home stops waiting for markers).
        rebalance_interval: Seconds between the coordinator's balance checks.
        rebalance_threshold: Move shards while the most and the least loaded regions differ
            by more than this many shards.
        max_simultaneous_rebalance: Shards in handoff at once because of rebalancing.
        passivate_after: Idle seconds after which an entity is stopped, for sharded types
            that set no ``passivate_after`` of their own (default: never).
        recovery_timeout: Seconds a new coordinator waits for the regions of all up members
            to report their shards before it answers requests anyway.

    Examples:
        >>> ShardingConfig(rebalance_interval=0.5).max_simultaneous_rebalance
        10
    """

    buffer_size: int = attrs.field(default=100_000, validator=_capacity)
    retry_interval: float = attrs.field(default=0.5, validator=_positive)
    handoff_timeout: float = attrs.field(default=10.0, validator=_positive)
    rebalance_interval: float = attrs.field(default=1.0, validator=_positive)
    rebalance_threshold: int = attrs.field(default=1, validator=_capacity)
    max_simultaneous_rebalance: int = attrs.field(default=10, validator=_capacity)
    passivate_after: float | None = attrs.field(default=None, validator=_optional_positive)
    recovery_timeout: float = attrs.field(default=1.0, validator=_positive)


@attrs.frozen
class FailoverConfig:
    """``[defaults.replication]``: how replicated shards fail over (see replication).

    Attributes:
        failover_margin: Seconds the coordinator waits after a node is downed before it
            promotes a replica of the node's shards: the time the other side of a partition
            has to down itself and stop writing. The coordinator never waits less than the
            downing notice window (two ``[cluster.heartbeat] interval``), the time a losing
            side has to hear its own decision.
        query_timeout: Seconds the coordinator waits for the surviving replicas of a shard to
            report how much of it they hold before it promotes the best of those that answered.
        sync_timeout: Seconds a new primary waits for history from the other holders of its
            shard before it serves the shard with what it has.

    Examples:
        >>> FailoverConfig(failover_margin=0.2).sync_timeout
        5.0
    """

    failover_margin: float = attrs.field(default=1.0, validator=_non_negative_finite)
    query_timeout: float = attrs.field(default=2.0, validator=_positive)
    sync_timeout: float = attrs.field(default=5.0, validator=_positive)


@attrs.frozen
class DefaultsConfig:
    """``[defaults]``: settings for every actor not matched by ``[actors]``, and the defaults
    of sharding and replication."""

    mailbox: MailboxConfig = MailboxConfig()
    supervision: SupervisionConfig = SupervisionConfig()
    sharding: ShardingConfig = ShardingConfig()
    replication: FailoverConfig = FailoverConfig()


@attrs.frozen
class ActorConfig:
    """``[actors."<pattern>"]``: overrides for actors whose path or name matches ``pattern``.

    The pattern is a regular expression matched in full against the actor's path (like
    ``/bank/acc-1``) and against its name (``acc-1``); the first matching table in the file
    wins. Each sub-table given replaces the corresponding default as a whole.
    """

    mailbox: MailboxConfig | None = None
    supervision: SupervisionConfig | None = None


@attrs.frozen
class GossipConfig:
    """``[cluster.gossip]``: membership dissemination.

    Attributes:
        interval: Seconds between two gossip rounds (each sends this node's view to a peer).
    """

    interval: float = attrs.field(default=0.2, validator=_positive)


@attrs.frozen
class HeartbeatConfig:
    """``[cluster.heartbeat]``: the heartbeats that feed failure detection.

    Attributes:
        interval: Seconds between two heartbeats to each monitored member.
    """

    interval: float = attrs.field(default=0.5, validator=_positive)


@attrs.frozen
class FailureDetectorConfig:
    """``[cluster.failure_detector]``: the phi accrual failure detector.

    Attributes:
        threshold: Phi above which a member is unreachable; higher is slower but surer.
        max_sample_size: Heartbeat intervals kept per member for the statistics.
        min_std_deviation: Floor of the standard deviation, in seconds (jitter tolerance).
        acceptable_heartbeat_pause: Seconds of missing heartbeats tolerated on top of the
            expected interval (pauses, GC, slow networks).
        first_heartbeat_estimate: Expected heartbeat interval before any has been measured;
            at least ``[cluster.heartbeat] interval``.
    """

    threshold: float = attrs.field(default=8.0, validator=_positive)
    max_sample_size: int = attrs.field(default=200, validator=_capacity)
    min_std_deviation: float = attrs.field(default=0.1, validator=_positive)
    acceptable_heartbeat_pause: float = attrs.field(default=0.0, validator=_non_negative_finite)
    first_heartbeat_estimate: float = attrs.field(default=1.0, validator=_positive)


@attrs.frozen
class DowningConfig:
    """``[cluster.downing]``: the split-brain resolver.

    Attributes:
        strategy: ``keep-majority`` (the side with more members survives), ``static-quorum``
            (a side with at least ``quorum_size`` members survives) or ``down-all``.
        stable_after: Seconds the set of unreachable members must stay the same before the
            resolver decides; at least :func:`minimum_stable_after` of the failure detector
            settings (checked by :class:`ClusterConfig`).
        quorum_size: With ``static-quorum`` (and only then, where it is required): the members a
            side needs to stay up.
        role: Count only members with this role (not with ``down-all``, which counts nobody).
        down_all_when_unstable: When reachability has not settled (every unreachable member
            reachable again or downed) within ``stable_after`` plus this many seconds, every
            member is downed rather than risk a split. ``true`` (the default) means 3/4 of
            ``stable_after``, at least 4 s; ``false`` never downs all; a positive number of
            seconds sets the bound.

    Examples:
        >>> DowningConfig().down_all_when_unstable_seconds
        4.0
        >>> DowningConfig(down_all_when_unstable=False).down_all_when_unstable_seconds
        inf
    """

    strategy: Literal["keep-majority", "static-quorum", "down-all"] = "keep-majority"
    stable_after: float = attrs.field(default=5.0, validator=_non_negative_finite)
    quorum_size: int | None = attrs.field(default=None, validator=_capacity)
    role: str | None = attrs.field(default=None, validator=_word)
    down_all_when_unstable: bool | float = attrs.field(default=True)

    @down_all_when_unstable.validator
    def _check_unstable(
        self, attribute: attrs.Attribute[bool | float], value: bool | float
    ) -> None:
        if isinstance(value, bool):
            return
        if not 0 < value < math.inf:  # also refuses nan
            raise ValueError(
                f"{attribute.name} must be true, false or a positive number of seconds, got {value}"
            )

    @property
    def down_all_when_unstable_seconds(self) -> float:
        """The instability bound in seconds (``inf`` when disabled)."""
        value = self.down_all_when_unstable
        if value is True:
            return max(4.0, self.stable_after * 3 / 4)
        if value is False:
            return math.inf
        return float(value)

    def __attrs_post_init__(self) -> None:
        if self.strategy == "static-quorum" and self.quorum_size is None:
            raise ValueError("quorum_size is required with strategy 'static-quorum'")
        if self.strategy != "static-quorum" and self.quorum_size is not None:
            raise ValueError(
                f"quorum_size only applies to strategy 'static-quorum', not {self.strategy!r}"
            )
        if self.strategy == "down-all" and self.role is not None:
            raise ValueError("role has no effect with strategy 'down-all'")


def phi_deviations(threshold: float) -> float:
    """How many standard deviations past the mean interval a silence reaches phi ``threshold``.

    Inverts the failure detector's phi (``log10(1 + e**z)`` with
    ``z = y * (1.5976 + 0.070566 * y**2)``, the logistic approximation of the normal CDF) for
    ``y``: a silence of ``mean + acceptable_heartbeat_pause + y * std_deviation`` marks the
    member unreachable.

    Examples:
        >>> round(phi_deviations(8.0), 2), round(phi_deviations(4.0), 2)
        (5.23, 3.64)
    """
    # z = ln(10**threshold - 1), computed without overflow for large thresholds.
    z = threshold * math.log(10.0) + math.log1p(-(10.0**-threshold))
    # Solve a*y**3 + b*y = z (one real root, b > 0) with Cardano's formula.
    a, b = 0.070566, 1.5976
    p, q = b / a, -z / a
    root = math.sqrt(q * q / 4 + p**3 / 27)
    return math.cbrt(-q / 2 + root) + math.cbrt(-q / 2 - root)


def minimum_stable_after(
    heartbeat_interval: float, threshold: float, min_std_deviation: float
) -> float:
    """The least safe ``stable_after``: the longest gap between two detections of one failure.

    When a link breaks or a node crashes, each observer notices each lost member once its
    silence crosses the phi threshold, at the observer's next failure detector tick (once per
    heartbeat interval); the last heartbeats got through at different times (up to one
    interval apart). So the notices of one failure are spread over up to two heartbeat
    intervals, plus whatever jitter the detector tolerates on a link
    (:func:`phi_deviations` times ``min_std_deviation`` on a steady link). A ``stable_after``
    shorter than that can see the unreachable set as stable before it is complete, and decide
    on a part of the other side.

    Examples:
        >>> round(minimum_stable_after(0.5, 8.0, 0.1), 3)   # the defaults (stable_after 5)
        1.523
        >>> round(minimum_stable_after(0.1, 4.0, 0.05), 3)  # the fast profile (stable_after 0.5)
        0.382
    """
    return 2 * heartbeat_interval + phi_deviations(threshold) * min_std_deviation


@attrs.frozen
class ClusterTlsConfig:
    """``[cluster.tls]``: mutual TLS between nodes, from PEM files (all three keys required).

    Paths are used as given: a relative path is relative to the process's working directory.

    Attributes:
        certfile: This node's certificate (may include the intermediate chain).
        keyfile: The private key matching ``certfile`` (unencrypted).
        cafile: The CA certificate(s) that sign every node's certificate.
    """

    certfile: str = attrs.field(validator=_path)
    keyfile: str = attrs.field(validator=_path)
    cafile: str = attrs.field(validator=_path)


@attrs.frozen
class ClusterConfig:
    """``[cluster]``: this node's identity in a cluster and the membership settings.

    Read by ``ClusteredActorSystem.from_config``; the sub-tables also apply to a
    ``ClusteredActorSystem(..., config=config)`` built directly.

    Attributes:
        host: The host other nodes reach this one at.
        port: The port to listen on; 0 picks a free one.
        node_id: A readable name of this node; absent means ``"host:port"``.
        seed_nodes: ``"host:port"`` contact points to join through (``"[::1]:25520"`` for
            IPv6); none, or only this node itself, forms a new cluster.
        roles: This node's roles.
        bind_host: The interface to listen on; absent means ``host``.
        required_quorum: Entering the system waits until this many members are up.
        leave_timeout: Seconds a graceful leave waits for this node to be seen ``exiting``
            before the node stops anyway; the others complete its leave all the same. Long
            enough by default for a crashed member to be downed first (failure detection plus
            ``stable_after``), so that the leave also completes on the leaver's side.
        gossip: ``[cluster.gossip]``.
        heartbeat: ``[cluster.heartbeat]``.
        failure_detector: ``[cluster.failure_detector]``.
        downing: ``[cluster.downing]``.
        tls: ``[cluster.tls]``; absent means plain (unencrypted) connections.
    """

    host: str = attrs.field(default="127.0.0.1", validator=_word)
    port: int = attrs.field(default=25520, validator=_port)
    node_id: str | None = attrs.field(default=None, validator=_word)
    seed_nodes: tuple[str, ...] = attrs.field(default=(), converter=_strings, validator=_seed_nodes)
    roles: tuple[str, ...] = attrs.field(default=(), converter=_strings, validator=_words)
    bind_host: str | None = attrs.field(default=None, validator=_word)
    required_quorum: int | None = attrs.field(default=None, validator=_capacity)
    leave_timeout: float = attrs.field(default=20.0, validator=_positive)
    gossip: GossipConfig = GossipConfig()
    heartbeat: HeartbeatConfig = HeartbeatConfig()
    failure_detector: FailureDetectorConfig = FailureDetectorConfig()
    downing: DowningConfig = DowningConfig()
    tls: ClusterTlsConfig | None = None

    def __attrs_post_init__(self) -> None:
        # A first estimate below the real interval makes every member look late right after
        # it joins (the detector expects heartbeats faster than they are sent): false
        # unreachability, and with a short stable_after, downing, at startup.
        estimate = self.failure_detector.first_heartbeat_estimate
        if estimate < self.heartbeat.interval:
            raise ValueError(
                f"failure_detector.first_heartbeat_estimate ({estimate}) must be at least "
                f"heartbeat.interval ({self.heartbeat.interval})"
            )
        detector = self.failure_detector
        least = minimum_stable_after(
            self.heartbeat.interval, detector.threshold, detector.min_std_deviation
        )
        if self.downing.stable_after < least:
            raise ConfigError(
                f"cluster.downing.stable_after ({self.downing.stable_after}) must be at least "
                f"{least:.3f} s with heartbeat.interval {self.heartbeat.interval}, "
                f"failure_detector.threshold {detector.threshold} and min_std_deviation "
                f"{detector.min_std_deviation} (two heartbeat intervals plus the jitter the "
                "failure detector tolerates), or the resolver may decide before one failure "
                "has been noticed everywhere"
            )

    @property
    def seed_addresses(self) -> tuple[tuple[str, int], ...]:
        """``seed_nodes`` as ``(host, port)`` pairs.

        Examples:
            >>> ClusterConfig(seed_nodes=("a:1", "[::1]:2")).seed_addresses
            (('a', 1), ('::1', 2))
        """
        return tuple(parse_host_port(seed) for seed in self.seed_nodes)


@attrs.frozen
class TransportConfig:
    """``[transport]``: the node-to-node links of remoting (any ``RemoteActorSystem``).

    Attributes:
        max_frame_size: Largest frame sent or accepted, in bytes (at least 4096).
        outbox_capacity: Most messages queued for one peer; more become dead letters.
        handshake_timeout: Seconds a new connection has to complete its handshakes.
        reconnect_min: First delay, in seconds, before re-dialing a peer after a failed dial.
        reconnect_max: Longest delay between dials (the delay doubles up to it).
    """

    max_frame_size: int = attrs.field(default=8 * 1024 * 1024)
    outbox_capacity: int = attrs.field(default=100_000, validator=_capacity)
    handshake_timeout: float = attrs.field(default=5.0, validator=_positive)
    reconnect_min: float = attrs.field(default=0.1, validator=_positive)
    reconnect_max: float = attrs.field(default=5.0, validator=_positive)

    @max_frame_size.validator
    def _check_frame(self, attribute: attrs.Attribute[int], value: int) -> None:
        # Each frame keeps 1 KiB for its header: smaller frames leave no room for messages.
        if value < 4096:
            raise ValueError(f"max_frame_size must be at least 4096 bytes, got {value}")

    def __attrs_post_init__(self) -> None:
        if self.reconnect_min > self.reconnect_max:
            raise ValueError(
                f"reconnect_min ({self.reconnect_min}) must not exceed reconnect_max "
                f"({self.reconnect_max})"
            )


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

    Attributes:
        system: ``[system]``.
        defaults: ``[defaults]``: mailbox and supervision of every actor.
        actors: ``[actors."<pattern>"]`` tables, in file order.
        cluster: ``[cluster]``; ``None`` when the file has no such table.
        transport: ``[transport]``: node-to-node links.

    Examples:
        >>> config = parse_config('[defaults.mailbox]\\ncapacity = 1000')  # doctest: +SKIP
        >>> config.defaults.mailbox.capacity                              # doctest: +SKIP
        1000
    """

    system: SystemConfig = SystemConfig()
    defaults: DefaultsConfig = DefaultsConfig()
    actors: dict[str, ActorConfig] = attrs.Factory(dict)
    cluster: ClusterConfig | None = None
    transport: TransportConfig = TransportConfig()
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
