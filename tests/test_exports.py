"""The public surface: what the facade and the public subpackages export, and where it is
documented."""

from __future__ import annotations

import importlib
import pathlib
import re
import types

import pytest

import casty_trio

API_PAGE = pathlib.Path(__file__).resolve().parent.parent / "docs" / "api.md"

# Names of the facade's public API: each must stay importable from ``casty_trio``, whatever
# package it is defined in (code written against it must keep working).
KEPT = {
    "ActorAddress", "ActorContext", "ActorRef", "ActorRestarted", "ActorStarted", "ActorStopped",
    "ActorSystem", "ActorSystemError", "AskTimeoutError", "Backoff", "BarrierTimeoutError",
    "Behavior", "Behaviors", "CastyConfig", "CastyError", "ClusterState", "ClusteredActorSystem",
    "ConfigError", "DeadLetter", "Directive", "EventJournal", "EventStream", "InMemoryJournal",
    "JournalClosedError", "JournalError", "LeaderChanged", "Mailbox", "MailboxFullError",
    "MailboxOverflowStrategy", "MemberDowned", "MemberLeft", "MemberUp", "MsgpackSerializer",
    "NodeAddress", "NodeDownedError", "OneForOneStrategy", "PersistedEvent", "ReachableMember",
    "ReplicateEvents", "ReplicateEventsAck", "ReplicationConfig", "ReplicationTimeoutError",
    "SerializationError", "ShardEnvelope", "Snapshot", "SnapshotEvery", "SpyEvent",
    "SqliteJournal", "StashBuffer", "StashOverflowError", "SupervisionStrategy", "Terminated",
    "TimerScheduler", "UnhandledMessage", "UnreachableMember", "__version__", "discover_config",
    "entity_shard", "load_config",
}  # fmt: skip

PUBLIC_PACKAGES = [
    "casty_trio",
    "casty_trio.lowlevel",
    "casty_trio.cluster",
    "casty_trio.sharding",
    "casty_trio.sharding.replication",
    "casty_trio.remote",
    "casty_trio.serialization",
    "casty_trio.persistence",
    "casty_trio.config",
    "casty_trio.testing",
    "casty_trio.tls",
]


def _documented() -> set[str]:
    """The objects the API page renders, as dotted paths (``::: casty_trio.X`` and the members
    listed under a ``::: module`` block)."""
    text = API_PAGE.read_text()
    paths = set(re.findall(r"^::: ([\w.]+)", text, flags=re.M))
    for module, block in re.findall(r"^::: ([\w.]+)\n((?:    .*\n)+)", text, flags=re.M):
        paths.update(f"{module}.{name}" for name in re.findall(r"^        - (\w+)$", block, re.M))
    return paths


def _resolve(path: str) -> object:
    module_name, _, attribute = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), attribute)
    except ModuleNotFoundError:
        return getattr(_resolve(module_name), attribute)


@pytest.mark.parametrize("package", PUBLIC_PACKAGES)
def test_each_name_is_exported_once_and_importable(package: str) -> None:
    module = importlib.import_module(package)
    names = list(module.__all__)
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
    for name in names:
        assert hasattr(module, name), f"{package}.{name} is in __all__ but not importable"


def test_the_facade_keeps_every_name_it_exported() -> None:
    assert sorted(KEPT - set(casty_trio.__all__)) == []


def test_every_facade_name_is_documented_on_the_api_page() -> None:
    documented = {id(_resolve(path)) for path in _documented()}
    missing = [
        name
        for name in casty_trio.__all__
        if name != "__version__" and id(getattr(casty_trio, name)) not in documented
    ]
    assert missing == []


def test_every_documented_path_resolves() -> None:
    for path in _documented():
        assert _resolve(path) is not None, path


def test_lowlevel_is_a_namespace_of_the_facade() -> None:
    assert isinstance(casty_trio.lowlevel, types.ModuleType)
    assert not set(casty_trio.lowlevel.__all__) & set(casty_trio.__all__)


def test_public_methods_return_public_types() -> None:
    # A value a public method returns is reachable from a public name, not a private module.
    system_types = [casty_trio.ClusteredActorSystem.region_statistics]
    for method in system_types:
        returned = method.__annotations__["return"]
        assert returned in casty_trio.__all__ or returned in dir(casty_trio), returned
