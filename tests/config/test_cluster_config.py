"""Configuration of clusters and transport: ``[cluster]`` (+ sub-tables) and ``[transport]``.

Parsing, defaults and every validation error; then each key's effect on a
``ClusteredActorSystem`` (and ``RemoteActorSystem`` for ``[transport]``), explicit arguments
winning over the configuration, and ``ClusteredActorSystem.from_config``.
"""

from __future__ import annotations

import math
import ssl
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
import trustme

from casty_trio import ClusteredActorSystem, ConfigError, NodeAddress
from casty_trio.cluster import (
    ClusterSettings,
    DownAll,
    KeepMajority,
    MemberDowned,
    NodeDownedError,
    StaticQuorum,
)
from casty_trio.config import (
    CastyConfig,
    ClusterConfig,
    ClusterTlsConfig,
    DowningConfig,
    FailureDetectorConfig,
    GossipConfig,
    HeartbeatConfig,
    TransportConfig,
    minimum_stable_after,
    parse_config,
    parse_host_port,
)
from casty_trio.remote import RemoteActorSystem, RemoteSettings
from casty_trio.remote._websocket import WebSocketTransport
from casty_trio.testing import SimNetwork
from casty_trio.tls import TlsConfig
from tests.integration.conftest import CertFiles, write_identity

# ---------------------------------------------------------------------------- helpers


def _error(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    return str(info.value)


def cluster(text: str) -> ClusterConfig:
    parsed = parse_config(text).cluster
    assert parsed is not None
    return parsed


def websocket(system: RemoteActorSystem) -> WebSocketTransport:
    transport = system._remoting.transport
    assert isinstance(transport, WebSocketTransport)
    return transport


def sim_node(
    net: SimNetwork,
    i: int,
    config: CastyConfig | None,
    seeds: list[NodeAddress],
    roles: frozenset[str] = frozenset(),
    **kwargs: Any,
) -> ClusteredActorSystem:
    return ClusteredActorSystem(
        name="app",
        host=f"n{i}",
        port=1,
        node_id=f"node-{i}",
        seed_nodes=seeds,
        roles=roles,
        config=config,
        transport=net.transport(f"n{i}", 1),
        **kwargs,
    )


@pytest.fixture(scope="module")
def tls_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_files(tls_ca: trustme.CA, tmp_path: Path) -> CertFiles:
    return write_identity(tls_ca, tmp_path / "node", "127.0.0.1", "localhost")


def tls_table(files: CertFiles) -> str:
    return (
        "[cluster.tls]\n"
        f"certfile = '{files.certfile}'\nkeyfile = '{files.keyfile}'\ncafile = '{files.cafile}'\n"
    )


# ---------------------------------------------------------------------------- parsing, defaults


def test_no_cluster_table_means_no_cluster_config() -> None:
    assert CastyConfig().cluster is None
    assert parse_config("").cluster is None
    assert parse_config("[system]\nname = 'x'\n[transport]\n").cluster is None
    assert CastyConfig().transport == TransportConfig()
    assert parse_config("[transport]").transport == TransportConfig()


def test_empty_cluster_table_is_every_default() -> None:
    parsed = cluster("[cluster]")
    assert parsed == ClusterConfig()
    assert parsed.host == "127.0.0.1"
    assert parsed.port == 25520
    assert parsed.node_id is None
    assert parsed.seed_nodes == ()
    assert parsed.roles == ()
    assert parsed.bind_host is None
    assert parsed.required_quorum is None
    assert parsed.gossip == GossipConfig(interval=0.2)
    assert parsed.heartbeat == HeartbeatConfig(interval=0.5)
    assert parsed.failure_detector == FailureDetectorConfig(
        threshold=8.0,
        max_sample_size=200,
        min_std_deviation=0.1,
        acceptable_heartbeat_pause=0.0,
        first_heartbeat_estimate=1.0,
    )
    assert parsed.downing == DowningConfig(
        strategy="keep-majority", stable_after=5.0, quorum_size=None, role=None
    )
    assert parsed.tls is None


def test_a_sub_table_alone_makes_a_cluster_section() -> None:
    parsed = cluster("[cluster.gossip]\ninterval = 1")
    assert parsed == ClusterConfig(gossip=GossipConfig(interval=1.0))


def test_defaults_match_the_code_defaults() -> None:
    """An empty ``[cluster]`` and ``[transport]`` change nothing against the code defaults."""
    system = ClusteredActorSystem(
        name="app", host="h", port=1, node_id="a", config=parse_config("[cluster]\n[transport]")
    )
    assert system._cluster_settings == ClusterSettings()
    assert system._downing == KeepMajority()
    assert system._settings == RemoteSettings()
    assert attrs.asdict(RemoteSettings()) == attrs.asdict(TransportConfig())


def test_parse_every_key() -> None:
    parsed = parse_config(
        """
        [cluster]
        host = "10.0.0.5"
        port = 0
        node_id = "alpha"
        seed_nodes = ["10.0.0.5:25520", "[::1]:25521", "seed.example:7"]
        roles = ["api", "worker"]
        bind_host = "0.0.0.0"
        required_quorum = 3

        [cluster.gossip]
        interval = 1

        [cluster.heartbeat]
        interval = 0.25

        [cluster.failure_detector]
        threshold = 10
        max_sample_size = 50
        min_std_deviation = 0.2
        acceptable_heartbeat_pause = 3
        first_heartbeat_estimate = 0.25

        [cluster.downing]
        strategy = "static-quorum"
        stable_after = 7
        quorum_size = 2
        role = "api"

        [cluster.tls]
        certfile = "certs/node.pem"
        keyfile = "certs/node.key"
        cafile = "certs/ca.pem"

        [transport]
        max_frame_size = 65536
        outbox_capacity = 10
        handshake_timeout = 2
        reconnect_min = 0.5
        reconnect_max = 0.5
        """
    )
    assert parsed.cluster == ClusterConfig(
        host="10.0.0.5",
        port=0,
        node_id="alpha",
        seed_nodes=("10.0.0.5:25520", "[::1]:25521", "seed.example:7"),
        roles=("api", "worker"),
        bind_host="0.0.0.0",
        required_quorum=3,
        gossip=GossipConfig(interval=1.0),
        heartbeat=HeartbeatConfig(interval=0.25),
        failure_detector=FailureDetectorConfig(
            threshold=10.0,
            max_sample_size=50,
            min_std_deviation=0.2,
            acceptable_heartbeat_pause=3.0,
            first_heartbeat_estimate=0.25,
        ),
        downing=DowningConfig(
            strategy="static-quorum", stable_after=7.0, quorum_size=2, role="api"
        ),
        tls=ClusterTlsConfig(
            certfile="certs/node.pem", keyfile="certs/node.key", cafile="certs/ca.pem"
        ),
    )
    assert parsed.cluster.seed_addresses == (
        ("10.0.0.5", 25520),
        ("::1", 25521),
        ("seed.example", 7),
    )
    assert isinstance(parsed.cluster.gossip.interval, float)
    assert isinstance(parsed.cluster.failure_detector.threshold, float)
    assert parsed.transport == TransportConfig(
        max_frame_size=65536,
        outbox_capacity=10,
        handshake_timeout=2.0,
        reconnect_min=0.5,
        reconnect_max=0.5,
    )


def test_model_converts_sequences_and_validates() -> None:
    model = ClusterConfig(seed_nodes=["a:1"], roles={"r"})
    assert model.seed_nodes == ("a:1",)
    assert model.roles == ("r",)
    assert model == ClusterConfig(seed_nodes=("a:1",), roles=("r",))
    with pytest.raises(ValueError, match="seed_nodes"):
        ClusterConfig(seed_nodes=("nope",))
    with pytest.raises(TypeError, match="sequence of strings"):
        ClusterConfig(roles="api")
    with pytest.raises(ValueError, match="quorum_size"):
        DowningConfig(strategy="static-quorum")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        model.port = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a:1", ("a", 1)),
        ("127.0.0.1:25520", ("127.0.0.1", 25520)),
        ("[::1]:65535", ("::1", 65535)),
        ("[fe80::1]:2", ("fe80::1", 2)),
        ("node-1.cluster.local:25520", ("node-1.cluster.local", 25520)),
    ],
)
def test_parse_host_port(text: str, expected: tuple[str, int]) -> None:
    assert parse_host_port(text) == expected
    assert cluster(f"[cluster]\nseed_nodes = ['{text}']").seed_addresses == (expected,)


BAD_SEEDS = [
    "host",
    "host:",
    ":25520",
    "host:0",
    "host:65536",
    "host:x",
    "host:+1",
    "host:-1",
    "host:1.5",
    "host: 1",
    "a b:1",
    "::1:25520",
    "[]:1",
    "host:\u0661",  # an Arabic-Indic digit one: isdigit() but not a port
    "",
]


@pytest.mark.parametrize("seed", BAD_SEEDS)
def test_bad_seed_is_named(seed: str) -> None:
    with pytest.raises(ValueError, match="host:port"):
        parse_host_port(seed)
    message = _error(f"[cluster]\nseed_nodes = ['a:1', '{seed}']")
    assert "seed_nodes[1]" in message
    assert repr(seed) in message
    assert "casty.toml.cluster" in message


# ---------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("text", "bad", "path"),
    [
        ("[cluster]\nhots = 'a'", "hots", "cluster"),
        ("[cluster]\nseeds = []", "seeds", "cluster"),
        ("[cluster.gossip]\nperiod = 1", "period", "cluster.gossip"),
        ("[cluster.heartbeat]\nevery = 1", "every", "cluster.heartbeat"),
        ("[cluster.failure_detector]\nphi = 8", "phi", "cluster.failure_detector"),
        ("[cluster.downing]\nquorum = 2", "quorum", "cluster.downing"),
        (
            "[cluster.tls]\ncertfile='a'\nkeyfile='b'\ncafile='c'\ncrlfile='d'",
            "crlfile",
            "cluster.tls",
        ),
        ("[cluster.sharding]\nx = 1", "sharding", "cluster"),
        ("[transport]\nframe_size = 1", "frame_size", "transport"),
    ],
)
def test_unknown_key(text: str, bad: str, path: str) -> None:
    message = _error(text)
    assert f"unknown key(s): {bad} @ casty.toml.{path}" in message


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("cluster = 3", ["casty.toml.cluster", "table"]),
        ("transport = 'x'", ["casty.toml.transport", "table"]),
        ("[cluster]\ngossip = 1", ["cluster.gossip", "table"]),
        ("[cluster]\ntls = 'x'", ["cluster.tls", "table"]),
        ("[cluster]\nhost = 1", ["cluster.host", "str", "int"]),
        ("[cluster]\nport = '25520'", ["cluster.port", "int", "str"]),
        ("[cluster]\nport = 1.0", ["cluster.port", "int", "float"]),
        ("[cluster]\nport = true", ["cluster.port", "int", "bool"]),
        ("[cluster]\nnode_id = 7", ["cluster.node_id", "str", "int"]),
        ("[cluster]\nseed_nodes = 'a:1'", ["cluster.seed_nodes", "list", "'a:1'"]),
        ("[cluster]\nseed_nodes = ['a:1', 2]", ["cluster.seed_nodes", "item 1", "str", "int"]),
        ("[cluster]\nseed_nodes = [['a', 1]]", ["cluster.seed_nodes", "item 0", "list"]),
        ("[cluster]\nroles = 'api'", ["cluster.roles", "list"]),
        ("[cluster]\nroles = [true]", ["cluster.roles", "item 0", "bool"]),
        ("[cluster]\nbind_host = 0", ["cluster.bind_host", "str", "int"]),
        ("[cluster]\nrequired_quorum = 2.5", ["cluster.required_quorum", "int", "float"]),
        ("[cluster.gossip]\ninterval = '1s'", ["cluster.gossip.interval", "float", "str"]),
        ("[cluster.heartbeat]\ninterval = true", ["cluster.heartbeat.interval", "float"]),
        ("[cluster.failure_detector]\nthreshold = [8]", ["failure_detector.threshold", "list"]),
        ("[cluster.failure_detector]\nmax_sample_size = 2.5", ["max_sample_size", "int"]),
        ("[cluster.failure_detector]\nmin_std_deviation = 'x'", ["min_std_deviation", "str"]),
        ("[cluster.failure_detector]\nacceptable_heartbeat_pause = true", ["acceptable_heart"]),
        ("[cluster.failure_detector]\nfirst_heartbeat_estimate = '1'", ["first_heartbeat"]),
        ("[cluster.downing]\nstable_after = '5'", ["cluster.downing.stable_after", "str"]),
        (
            "[cluster.downing]\nstrategy = 'static-quorum'\nquorum_size = 2.0",
            ["cluster.downing.quorum_size", "int", "float"],
        ),
        ("[cluster.downing]\nrole = 1", ["cluster.downing.role", "str", "int"]),
        (
            "[cluster.tls]\ncertfile = 1\nkeyfile = 'k'\ncafile = 'c'",
            ["cluster.tls.certfile", "str", "int"],
        ),
        ("[transport]\nmax_frame_size = 1e6", ["transport.max_frame_size", "int", "float"]),
        ("[transport]\noutbox_capacity = '10'", ["transport.outbox_capacity", "int", "str"]),
        ("[transport]\nhandshake_timeout = true", ["transport.handshake_timeout", "bool"]),
        ("[transport]\nreconnect_min = 'x'", ["transport.reconnect_min", "str"]),
        ("[transport]\nreconnect_max = [1]", ["transport.reconnect_max", "list"]),
    ],
)
def test_wrong_type(text: str, fragments: list[str]) -> None:
    message = _error(text)
    for fragment in fragments:
        assert fragment in message, fragment


@pytest.mark.parametrize("bad", ["majority", "keep_majority", "Keep-Majority", 1])
def test_bad_downing_strategy_lists_choices(bad: object) -> None:
    value = f"'{bad}'" if isinstance(bad, str) else str(bad)
    message = _error(f"[cluster.downing]\nstrategy = {value}")
    assert "cluster.downing.strategy" in message
    for choice in ("keep-majority", "static-quorum", "down-all"):
        assert repr(choice) in message


@pytest.mark.parametrize(
    ("text", "key", "table"),
    [
        ("[cluster]\nport = -1", "port", "cluster"),
        ("[cluster]\nport = 65536", "port", "cluster"),
        ("[cluster]\nhost = ''", "host", "cluster"),
        ("[cluster]\nhost = 'a b'", "host", "cluster"),
        ("[cluster]\nnode_id = ''", "node_id", "cluster"),
        ("[cluster]\nroles = ['api', '']", "roles[1]", "cluster"),
        ("[cluster]\nroles = ['two words']", "roles[0]", "cluster"),
        ("[cluster]\nbind_host = ''", "bind_host", "cluster"),
        ("[cluster]\nrequired_quorum = 0", "required_quorum", "cluster"),
        ("[cluster.gossip]\ninterval = 0", "interval", "cluster.gossip"),
        ("[cluster.gossip]\ninterval = -1", "interval", "cluster.gossip"),
        ("[cluster.gossip]\ninterval = inf", "interval", "cluster.gossip"),
        ("[cluster.gossip]\ninterval = nan", "interval", "cluster.gossip"),
        ("[cluster.heartbeat]\ninterval = 0", "interval", "cluster.heartbeat"),
        ("[cluster.failure_detector]\nthreshold = 0", "threshold", "cluster.failure_detector"),
        (
            "[cluster.failure_detector]\nmax_sample_size = 0",
            "max_sample_size",
            "cluster.failure_detector",
        ),
        (
            "[cluster.failure_detector]\nmin_std_deviation = 0",
            "min_std_deviation",
            "cluster.failure_detector",
        ),
        (
            "[cluster.failure_detector]\nacceptable_heartbeat_pause = -1",
            "acceptable_heartbeat_pause",
            "cluster.failure_detector",
        ),
        (
            "[cluster.failure_detector]\nacceptable_heartbeat_pause = inf",
            "acceptable_heartbeat_pause",
            "cluster.failure_detector",
        ),
        (
            "[cluster.failure_detector]\nfirst_heartbeat_estimate = 0",
            "first_heartbeat_estimate",
            "cluster.failure_detector",
        ),
        ("[cluster.downing]\nstable_after = -1", "stable_after", "cluster.downing"),
        ("[cluster.downing]\nstable_after = nan", "stable_after", "cluster.downing"),
        (
            "[cluster.downing]\nstrategy = 'static-quorum'\nquorum_size = 0",
            "quorum_size",
            "cluster.downing",
        ),
        ("[cluster.downing]\nrole = ''", "role", "cluster.downing"),
        ("[cluster.tls]\ncertfile = ''\nkeyfile = 'k'\ncafile = 'c'", "certfile", "cluster.tls"),
        ("[cluster.tls]\ncertfile = 'c'\nkeyfile = ''\ncafile = 'c'", "keyfile", "cluster.tls"),
        ("[cluster.tls]\ncertfile = 'c'\nkeyfile = 'k'\ncafile = ''", "cafile", "cluster.tls"),
        ("[transport]\nmax_frame_size = 4095", "max_frame_size", "transport"),
        ("[transport]\noutbox_capacity = 0", "outbox_capacity", "transport"),
        ("[transport]\nhandshake_timeout = 0", "handshake_timeout", "transport"),
        ("[transport]\nreconnect_min = 0", "reconnect_min", "transport"),
        ("[transport]\nreconnect_max = -1", "reconnect_max", "transport"),
    ],
)
def test_out_of_range(text: str, key: str, table: str) -> None:
    message = _error(text)
    assert key in message
    assert f"@ casty.toml.{table}" in message


def test_boundary_values_are_valid() -> None:
    parsed = cluster(
        "[cluster]\nport = 65535\nrequired_quorum = 1\n"
        "[cluster.failure_detector]\nacceptable_heartbeat_pause = 0\nmax_sample_size = 1\n"
        f"[cluster.downing]\nstable_after = {minimum_stable_after(0.5, 8.0, 0.1)!r}\n"
    )
    assert parsed.port == 65535
    assert parsed.downing.stable_after == minimum_stable_after(0.5, 8.0, 0.1)
    assert cluster("[cluster]\nport = 0").port == 0
    assert parse_config("[transport]\nmax_frame_size = 4096").transport.max_frame_size == 4096


def test_static_quorum_needs_quorum_size() -> None:
    message = _error("[cluster.downing]\nstrategy = 'static-quorum'")
    assert "quorum_size is required" in message
    assert "casty.toml.cluster.downing" in message


@pytest.mark.parametrize("strategy", ["keep-majority", "down-all"])
def test_quorum_size_only_with_static_quorum(strategy: str) -> None:
    message = _error(f"[cluster.downing]\nstrategy = '{strategy}'\nquorum_size = 2")
    assert "quorum_size only applies to strategy 'static-quorum'" in message
    assert strategy in message


def test_quorum_size_without_strategy_is_refused() -> None:
    assert "quorum_size" in _error("[cluster.downing]\nquorum_size = 2")


def test_role_has_no_effect_with_down_all() -> None:
    message = _error("[cluster.downing]\nstrategy = 'down-all'\nrole = 'api'")
    assert "role" in message
    assert "down-all" in message


@pytest.mark.parametrize("strategy", ["keep-majority", "static-quorum"])
def test_role_with_counting_strategies(strategy: str) -> None:
    quorum = "\nquorum_size = 1" if strategy == "static-quorum" else ""
    parsed = cluster(f"[cluster.downing]\nstrategy = '{strategy}'\nrole = 'api'{quorum}")
    assert parsed.downing.role == "api"


@pytest.mark.parametrize(
    ("heartbeat", "estimate", "ok"),
    [(0.5, 0.4, False), (0.5, 0.5, True), (2.0, 1.0, False), (2.0, 3.0, True), (0.1, 1.0, True)],
)
def test_first_heartbeat_estimate_at_least_the_heartbeat_interval(
    heartbeat: float, estimate: float, ok: bool
) -> None:
    text = (
        f"[cluster.heartbeat]\ninterval = {heartbeat}\n"
        f"[cluster.failure_detector]\nfirst_heartbeat_estimate = {estimate}\n"
    )
    if ok:
        assert cluster(text).failure_detector.first_heartbeat_estimate == estimate
    else:
        message = _error(text)
        assert "failure_detector.first_heartbeat_estimate" in message
        assert "heartbeat.interval" in message
        assert "@ casty.toml.cluster" in message


@pytest.mark.parametrize(
    ("settings", "least"),
    [
        ("", 1.523),  # the defaults: heartbeat 0.5 s, threshold 8, min std 0.1 s
        (
            "[cluster.heartbeat]\ninterval = 0.1\n[cluster.failure_detector]\nthreshold = 4\n"
            "min_std_deviation = 0.05\nfirst_heartbeat_estimate = 0.1\n",
            0.382,  # the fast profile of docs/configuration.md
        ),
        (
            "[cluster.heartbeat]\ninterval = 2.0\n"
            "[cluster.failure_detector]\nfirst_heartbeat_estimate = 2.0\n",
            4.523,
        ),
    ],
)
def test_stable_after_has_a_minimum_from_the_failure_detector_settings(
    settings: str, least: float
) -> None:
    ok = cluster(f"{settings}[cluster.downing]\nstable_after = {least}\n")
    assert ok.downing.stable_after == least
    message = _error(f"{settings}[cluster.downing]\nstable_after = {least - 0.002}\n")
    assert "cluster.downing.stable_after" in message
    assert f"at least {least:.3f} s" in message
    assert "heartbeat.interval" in message and "threshold" in message
    with pytest.raises(ConfigError, match=r"cluster\.downing\.stable_after"):
        ClusterConfig(downing=DowningConfig(stable_after=1.0))


def test_the_documented_profiles_respect_the_stable_after_minimum() -> None:
    assert minimum_stable_after(0.5, 8.0, 0.1) < DowningConfig().stable_after
    assert minimum_stable_after(0.1, 4.0, 0.05) < 0.5
    assert cluster(FAST).downing.stable_after == 0.5


def test_the_stable_after_minimum_matches_the_failure_detector() -> None:
    # The jitter term is the silence past the mean at which phi reaches the threshold.
    from casty_trio.cluster._failure_detector import compute_phi
    from casty_trio.config._model import phi_deviations

    for threshold in (0.5, 1.0, 4.0, 8.0, 12.0, 30.0):
        deviations = phi_deviations(threshold)
        assert compute_phi(1.0 + deviations * 0.1, 1.0, 0.1) == pytest.approx(threshold)
    assert minimum_stable_after(0.3, 8.0, 0.2) == pytest.approx(0.6 + phi_deviations(8.0) * 0.2)


@pytest.mark.parametrize(
    ("value", "seconds", "settings"),
    [("true", 4.0, None), ("false", math.inf, math.inf), ("2.5", 2.5, 2.5), ("3", 3.0, 3.0)],
)
def test_down_all_when_unstable(value: str, seconds: float, settings: float | None) -> None:
    config = parse_config(f"[cluster.downing]\ndown_all_when_unstable = {value}\n")
    assert config.cluster is not None
    assert config.cluster.downing.down_all_when_unstable_seconds == seconds
    system = ClusteredActorSystem(name="app", host="h", port=1, node_id="a", config=config)
    assert system._cluster_settings.down_all_when_unstable == settings
    assert system._cluster_settings.unstable_bound == seconds
    assert DowningConfig(stable_after=20.0).down_all_when_unstable_seconds == 15.0


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "'on'"])
def test_down_all_when_unstable_refuses_bad_values(value: str) -> None:
    message = _error(f"[cluster.downing]\ndown_all_when_unstable = {value}\n")
    assert "down_all_when_unstable" in message


def test_reconnect_min_must_not_exceed_reconnect_max() -> None:
    message = _error("[transport]\nreconnect_min = 5\nreconnect_max = 1")
    assert "reconnect_min" in message
    assert "reconnect_max" in message


@pytest.mark.parametrize(
    ("given", "missing"),
    [
        (["certfile"], ["keyfile", "cafile"]),
        (["keyfile"], ["certfile", "cafile"]),
        (["certfile", "keyfile"], ["cafile"]),
        (["cafile", "keyfile"], ["certfile"]),
        ([], ["certfile", "keyfile", "cafile"]),
    ],
)
def test_tls_needs_all_three_files(given: list[str], missing: list[str]) -> None:
    message = _error("[cluster.tls]\n" + "".join(f"{key} = 'x.pem'\n" for key in given))
    for key in missing:
        assert f"required key missing @ casty.toml.cluster.tls.{key}" in message
    for key in given:
        assert f"cluster.tls.{key}" not in message


def test_several_problems_in_one_error() -> None:
    message = _error(
        """
        [cluster]
        port = "x"
        bogus = 1
        [cluster.gossip]
        interval = 0
        [cluster.downing]
        strategy = "sometimes"
        [cluster.tls]
        certfile = "a"
        [transport]
        outbox_capacity = 0
        """
    )
    for fragment in (
        "cluster.port",
        "bogus",
        "cluster.gossip",
        "sometimes",
        "cluster.tls.keyfile",
        "outbox_capacity",
    ):
        assert fragment in message, fragment


# ---------------------------------------------------------------------------- effects


def test_without_config_the_code_defaults_apply() -> None:
    system = ClusteredActorSystem(name="app", host="h", port=1, node_id="a")
    assert system._cluster_settings == ClusterSettings()
    assert system._downing == KeepMajority()
    assert system._settings == RemoteSettings()
    assert websocket(system)._tls is None


def test_config_without_cluster_table_keeps_cluster_defaults() -> None:
    config = parse_config("[transport]\noutbox_capacity = 7")
    system = ClusteredActorSystem(name="app", host="h", port=1, node_id="a", config=config)
    assert system._cluster_settings == ClusterSettings()
    assert system._downing == KeepMajority()
    assert system._settings.outbox_capacity == 7


def test_every_timing_key_reaches_the_cluster_settings() -> None:
    config = parse_config(
        """
        [cluster.gossip]
        interval = 0.3
        [cluster.heartbeat]
        interval = 0.7
        [cluster.failure_detector]
        threshold = 12
        max_sample_size = 77
        min_std_deviation = 0.25
        acceptable_heartbeat_pause = 1.5
        first_heartbeat_estimate = 2
        [cluster.downing]
        stable_after = 9
        """
    )
    system = ClusteredActorSystem(name="app", host="h", port=1, node_id="a", config=config)
    assert system._cluster_settings == ClusterSettings(
        gossip_interval=0.3,
        heartbeat_interval=0.7,
        threshold=12.0,
        max_sample_size=77,
        min_std_deviation=0.25,
        acceptable_heartbeat_pause=1.5,
        first_heartbeat_estimate=2.0,
        stable_after=9.0,
        join_retry=ClusterSettings().join_retry,
    )


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ("", KeepMajority()),
        ("strategy = 'keep-majority'", KeepMajority()),
        ("strategy = 'keep-majority'\nrole = 'api'", KeepMajority(role="api")),
        ("strategy = 'static-quorum'\nquorum_size = 3", StaticQuorum(3)),
        ("strategy = 'static-quorum'\nquorum_size = 2\nrole = 'db'", StaticQuorum(2, role="db")),
        ("strategy = 'down-all'", DownAll()),
    ],
)
def test_downing_keys_choose_the_strategy(table: str, expected: object) -> None:
    config = parse_config(f"[cluster.downing]\n{table}")
    system = ClusteredActorSystem(name="app", host="h", port=1, node_id="a", config=config)
    assert system._downing == expected


TRANSPORT = """
[transport]
max_frame_size = 65536
outbox_capacity = 12
handshake_timeout = 1.5
reconnect_min = 0.2
reconnect_max = 3
"""
EXPECTED_REMOTE = RemoteSettings(
    max_frame_size=65536,
    outbox_capacity=12,
    handshake_timeout=1.5,
    reconnect_min=0.2,
    reconnect_max=3.0,
)


def test_transport_keys_reach_a_clustered_system() -> None:
    system = ClusteredActorSystem(
        name="app", host="h", port=1, node_id="a", config=parse_config(TRANSPORT)
    )
    assert system._settings == EXPECTED_REMOTE
    assert system._remoting.settings == EXPECTED_REMOTE
    transport = websocket(system)
    assert transport._max_frame_size == 65536
    assert transport._handshake_timeout == 1.5


def test_transport_keys_reach_a_remote_system() -> None:
    system = RemoteActorSystem("app", config=parse_config(TRANSPORT))
    assert system._settings == EXPECTED_REMOTE
    assert websocket(system)._max_frame_size == 65536
    assert RemoteActorSystem("app")._settings == RemoteSettings()


@pytest.mark.parametrize(("table", "dropped"), [("outbox_capacity = 3", 7), ("", 0)])
async def test_outbox_capacity_bounds_a_link(table: str, dropped: int) -> None:
    """``outbox_capacity`` has an observable effect: tells beyond it are dropped at once."""
    net = SimNetwork(seed=1, latency=0.002)
    peer = NodeAddress("b", 1)
    config = parse_config(f"[transport]\n{table}")
    async with RemoteActorSystem("app", config=config, transport=net.transport("a", 1)) as a:
        ref = a.lookup("/x", node=peer)
        assert ref is not None
        for i in range(10):  # no checkpoint in between: nothing leaves the outbox meanwhile
            ref.tell(i)
        assert a.link_statistics()[peer].dropped == dropped


def test_explicit_arguments_win_over_config(tls_files: CertFiles) -> None:
    config = parse_config(
        TRANSPORT
        + "[cluster.gossip]\ninterval = 3\n"
        + "[cluster.downing]\nstrategy = 'down-all'\n"
        + tls_table(tls_files)
    )
    settings = RemoteSettings(outbox_capacity=5)
    cluster_settings = ClusterSettings(gossip_interval=0.05)
    downing = StaticQuorum(4)
    tls = TlsConfig(
        server_context=ssl.create_default_context(ssl.Purpose.CLIENT_AUTH),
        client_context=ssl.create_default_context(ssl.Purpose.SERVER_AUTH),
    )
    system = ClusteredActorSystem(
        name="app",
        host="h",
        port=1,
        node_id="a",
        config=config,
        tls=tls,
        settings=settings,
        cluster_settings=cluster_settings,
        downing=downing,
    )
    assert system._settings is settings
    assert system._cluster_settings is cluster_settings
    assert system._downing is downing
    assert websocket(system)._tls is tls
    remote = RemoteActorSystem("app", config=config, settings=settings)
    assert remote._settings is settings


def test_tls_table_builds_mutual_tls(tls_files: CertFiles) -> None:
    config = parse_config("[cluster]\n" + tls_table(tls_files))
    system = ClusteredActorSystem(name="app", host="h", port=1, node_id="a", config=config)
    tls = websocket(system)._tls
    assert isinstance(tls, TlsConfig)
    assert tls.server_context.verify_mode == ssl.CERT_REQUIRED
    assert tls.client_context.check_hostname


def test_tls_files_are_checked_when_the_system_is_built(tmp_path: Path) -> None:
    missing = tmp_path / "missing.pem"
    config = parse_config(
        f"[cluster.tls]\ncertfile = '{missing}'\nkeyfile = '{missing}'\ncafile = '{missing}'"
    )
    with pytest.raises(ConfigError, match="certfile") as info:
        ClusteredActorSystem(name="app", host="h", port=1, node_id="a", config=config)
    assert str(missing) in str(info.value)
    # A given transport brings its own security: the files are not even read then.
    net = SimNetwork(seed=1)
    system = ClusteredActorSystem(
        name="app", host="h", port=1, node_id="a", config=config, transport=net.transport("h", 1)
    )
    assert system._remoting.transport is not None


# ---------------------------------------------------------------------------- live, simulated


async def test_config_builds_working_nodes_that_use_its_settings(autojump_clock: Any) -> None:
    config = parse_config(
        """
        [cluster.gossip]
        interval = 0.1
        [cluster.heartbeat]
        interval = 0.2
        [cluster.downing]
        strategy = "static-quorum"
        quorum_size = 2
        stable_after = 2
        [transport]
        outbox_capacity = 1000
        """
    )
    net = SimNetwork(seed=11, latency=0.002)
    seed = NodeAddress("n0", 1)
    async with sim_node(net, 0, config, [seed]) as a, sim_node(net, 1, config, [seed]) as b:
        state = await b.wait_for(2, timeout=10)
        assert {m.node_id for m in state.up()} == {"node-0", "node-1"}
        for system in (a, b):
            assert system._daemon is not None
            assert system._daemon.settings.gossip_interval == 0.1
            assert system._daemon.settings.heartbeat_interval == 0.2
            assert system._daemon.settings.stable_after == 2.0
            assert system._daemon.strategy == StaticQuorum(2)
            assert system._remoting.settings.outbox_capacity == 1000


async def run_node(
    net: SimNetwork,
    i: int,
    config: CastyConfig | None,
    seeds: list[NodeAddress],
    roles: frozenset[str],
    systems: dict[int, ClusteredActorSystem],
    downed: dict[int, float],
    entered: trio.Event,
) -> None:
    """One node in its own task; records when its system was downed."""
    try:
        async with sim_node(net, i, config, seeds, roles) as system:
            systems[i] = system
            entered.set()
            await trio.sleep_forever()
    except NodeDownedError:
        downed[i] = trio.current_time()


async def kill_one_of_three(
    config: CastyConfig | None, roles: list[frozenset[str]] | None = None, seed: int = 21
) -> tuple[float, dict[int, float]]:
    """Three nodes; kill node 2; return when node 0 saw a MemberDowned (relative to the kill,
    ``inf`` if never) and which nodes were downed, once the outcome settled."""
    net = SimNetwork(seed=seed, latency=0.002)
    seeds = [NodeAddress("n0", 1)]
    systems: dict[int, ClusteredActorSystem] = {}
    downed: dict[int, float] = {}
    seen_after = math.inf
    async with trio.open_nursery() as nursery:
        for i in range(3):
            entered = trio.Event()
            node_roles = roles[i] if roles else frozenset()
            nursery.start_soon(
                run_node, net, i, config, seeds, node_roles, systems, downed, entered
            )
            await entered.wait()
        await systems[0].wait_for(3, timeout=20)
        await systems[1].wait_for(3, timeout=20)
        async with systems[0].event_stream.subscription(MemberDowned) as events:
            killed_at = trio.current_time()
            net.kill(NodeAddress("n2", 1))
            with trio.move_on_after(30):
                await events.receive()
                seen_after = trio.current_time() - killed_at
        await trio.sleep(30)  # let every side finish its decision
        nursery.cancel_scope.cancel()
    return seen_after, downed


FAST = """
[cluster.gossip]
interval = 0.1
[cluster.heartbeat]
interval = 0.1
[cluster.failure_detector]
threshold = 4
min_std_deviation = 0.05
first_heartbeat_estimate = 0.1
[cluster.downing]
stable_after = 0.5
"""


async def test_failure_detection_and_stable_after_from_config(autojump_clock: Any) -> None:
    default, _ = await kill_one_of_three(None)
    fast, downed = await kill_one_of_three(parse_config(FAST))
    assert 5.0 < default < 15.0  # stable_after alone is 5 s by default
    assert fast < 2.0
    assert 0 not in downed and 1 not in downed


@pytest.mark.parametrize(
    ("downing", "roles", "survivors_downed"),
    [
        ("strategy = 'keep-majority'", None, False),
        ("strategy = 'static-quorum'\nquorum_size = 2", None, False),
        ("strategy = 'static-quorum'\nquorum_size = 3", None, True),
        ("strategy = 'down-all'", None, True),
        # Only the killed node has the role that counts: the survivors are the minority.
        ("strategy = 'keep-majority'\nrole = 'db'", ["", "", "db"], True),
        ("strategy = 'keep-majority'\nrole = 'db'", ["db", "db", ""], False),
    ],
)
async def test_downing_config_decides_the_outcome(
    downing: str, roles: list[str] | None, survivors_downed: bool, autojump_clock: Any
) -> None:
    config = parse_config(f"{FAST}{downing}\n")  # FAST ends inside [cluster.downing]
    assert config.cluster is not None
    node_roles = [frozenset({r}) if r else frozenset() for r in roles] if roles else None
    _, downed = await kill_one_of_three(config, node_roles)
    if survivors_downed:
        assert {0, 1} <= set(downed)
    else:
        assert 0 not in downed and 1 not in downed


# ---------------------------------------------------------------------------- from_config


FULL = """
[system]
name = "bank"
[cluster]
host = "10.1.2.3"
port = 4000
node_id = "alpha"
seed_nodes = ["10.1.2.3:4000", "10.1.2.4:4000"]
roles = ["api", "db"]
bind_host = "0.0.0.0"
required_quorum = 2
[cluster.gossip]
interval = 0.4
[cluster.downing]
strategy = "down-all"
[transport]
outbox_capacity = 9
"""


def test_from_config_needs_a_cluster_section() -> None:
    for config in (CastyConfig(), parse_config("[system]\nname = 'x'\n[transport]")):
        with pytest.raises(ValueError, match=r"\[cluster\]"):
            ClusteredActorSystem.from_config(config)
    with pytest.raises(ConfigError):
        ClusteredActorSystem.from_config(CastyConfig(), host="h", port=1, node_id="a")


def test_from_config_reads_the_cluster_table() -> None:
    config = parse_config(FULL)
    system = ClusteredActorSystem.from_config(config)
    assert system.name == "bank"
    transport = websocket(system)
    assert (transport._host, transport._port, transport._bind_host) == (
        "10.1.2.3",
        4000,
        "0.0.0.0",
    )
    assert system._node_id == "alpha"
    assert system._seeds == (NodeAddress("10.1.2.3", 4000), NodeAddress("10.1.2.4", 4000))
    assert system._roles == frozenset({"api", "db"})
    assert system._required_quorum == 2
    assert system._cluster_settings.gossip_interval == 0.4
    assert system._downing == DownAll()
    assert system._settings.outbox_capacity == 9
    assert transport._tls is None


def test_from_config_keyword_arguments_override(tls_files: CertFiles) -> None:
    config = parse_config(FULL + tls_table(tls_files))
    tls = TlsConfig(
        server_context=ssl.create_default_context(ssl.Purpose.CLIENT_AUTH),
        client_context=ssl.create_default_context(ssl.Purpose.SERVER_AUTH),
    )
    system = ClusteredActorSystem.from_config(
        config,
        host="h2",
        port=0,
        node_id="beta",
        seed_nodes=[("s", 1), NodeAddress("t", 2)],
        bind_host="127.0.0.1",
        tls=tls,
        required_quorum=5,
    )
    transport = websocket(system)
    assert (transport._host, transport._port, transport._bind_host) == ("h2", 0, "127.0.0.1")
    assert transport._tls is tls
    assert system._node_id == "beta"
    assert system._seeds == (NodeAddress("s", 1), NodeAddress("t", 2))
    assert system._required_quorum == 5
    assert system._roles == frozenset({"api", "db"})  # no override: from the config
    # Without tls=, [cluster.tls] applies.
    assert isinstance(websocket(ClusteredActorSystem.from_config(config))._tls, TlsConfig)


def test_from_config_empty_seed_override_means_no_seeds() -> None:
    system = ClusteredActorSystem.from_config(parse_config(FULL), seed_nodes=[])
    assert system._seeds == ()


@pytest.mark.parametrize(
    ("text", "overrides", "expected"),
    [
        ("[cluster]", {}, "127.0.0.1:25520"),
        ("[cluster]\nhost = 'a'\nport = 7", {}, "a:7"),
        ("[cluster]\nhost = 'a'\nport = 7", {"host": "b", "port": 8}, "b:8"),
        ("[cluster]\nnode_id = 'n'", {"port": 8}, "n"),
        ("[cluster]\nnode_id = 'n'", {"node_id": "m"}, "m"),
    ],
)
def test_from_config_node_id(text: str, overrides: dict[str, Any], expected: str) -> None:
    system = ClusteredActorSystem.from_config(parse_config(text), **overrides)
    assert system._node_id == expected


def test_from_config_of_a_subclass_builds_the_subclass() -> None:
    class Custom(ClusteredActorSystem):
        pass

    assert type(Custom.from_config(parse_config("[cluster]"))) is Custom


async def test_from_config_node_runs_on_loopback() -> None:
    config = parse_config("[system]\nname = 'solo'\n[cluster]\nport = 0\nroles = ['api']")
    with trio.fail_after(10):
        async with ClusteredActorSystem.from_config(config) as system:
            state = await system.wait_for(1, timeout=5)
            assert system.self_node.port != 0
            assert state.self_member is not None
            assert state.self_member.roles == frozenset({"api"})
            assert state.self_member.node_id == "127.0.0.1:0"


async def test_from_config_with_tls_forms_a_cluster_over_loopback(tls_files: CertFiles) -> None:
    config = parse_config(
        "[cluster]\nhost = '127.0.0.1'\nport = 0\nrequired_quorum = 1\n" + tls_table(tls_files)
    )
    with trio.fail_after(20):
        async with ClusteredActorSystem.from_config(config, node_id="a") as a:
            b = ClusteredActorSystem.from_config(
                config, node_id="b", seed_nodes=[a.self_node], required_quorum=2
            )
            async with b:
                assert websocket(b)._tls is not None
                state = await a.wait_for(2, timeout=10)
                assert {m.node_id for m in state.up()} == {"a", "b"}
