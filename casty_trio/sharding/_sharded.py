"""The public values of cluster sharding: envelopes, shard hashing, the sharded behavior.

Nothing here does I/O: the region and the coordinator (``_region.py``, ``_coordinator.py``)
run what these values describe.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Generic, TypeVar

import attrs
import msgspec

from .._core import ActorContext, Behavior, ExtensionBehavior
from .replication import ReplicationConfig

__all__ = [
    "ShardEnvelope",
    "ShardedBehavior",
    "entity_shard",
    "sharded",
]

M = TypeVar("M")


class ShardEnvelope(msgspec.Struct, Generic[M], frozen=True):
    """Routes ``message`` to the entity called ``entity_id`` of a sharded region.

    The region hashes ``entity_id`` to a shard (:func:`entity_shard`), finds the node that owns
    the shard and delivers ``message`` to the entity there, starting it if needed.

    A frozen msgspec Struct: an envelope is built for nearly every tell to an entity, so it
    must be cheap to construct, and a Struct is cheaper to build than a frozen attrs class.

    Built as ``ShardEnvelope(entity_id, message)`` (positional or keyword).

    Attributes:
        entity_id: Logical identifier of the target entity.
        message: The message delivered to the entity.

    Examples:
        >>> ShardEnvelope("user-42", "deposit")
        ShardEnvelope(entity_id='user-42', message='deposit')
    """

    entity_id: str
    message: M


def entity_shard(entity_id: str, num_shards: int) -> int:
    """The shard of ``entity_id``: the first 4 bytes of its MD5 digest, big-endian, modulo.

    Stable across processes, machines and Python versions (no ``hash()``), so every node
    computes the same shard.

    Examples:
        >>> entity_shard("user-42", 100), entity_shard("alice", 100), entity_shard("bob", 10)
        (87, 70, 0)
    """
    digest = hashlib.md5(entity_id.encode(), usedforsecurity=False).digest()
    return int.from_bytes(digest[:4], "big") % num_shards


@attrs.frozen(eq=False)
class ShardedBehavior(ExtensionBehavior[M]):
    """A sharded entity type: spawn it on a :class:`~casty_trio.ClusteredActorSystem`.

    Build it with ``Behaviors.sharded``. Spawning it under the same name on several nodes forms
    one region type; the ref returned takes :class:`ShardEnvelope` messages.
    """

    entity_factory: Callable[[str], Behavior[M]]
    num_shards: int = 100
    replication: ReplicationConfig | None = None
    role: str | None = None
    passivate_after: float | None = None

    async def start(self, ctx: ActorContext[M]) -> Behavior[M]:
        raise TypeError(
            "a sharded behavior runs as a region of a ClusteredActorSystem: spawn it with "
            "system.spawn(Behaviors.sharded(...), name), not as a child or on a plain ActorSystem"
        )


def sharded(
    entity_factory: Callable[[str], Behavior[M]],
    *,
    num_shards: int = 100,
    replication: ReplicationConfig | None = None,
    role: str | None = None,
    passivate_after: float | None = None,
) -> ShardedBehavior[M]:
    """A sharded entity type whose entity ``id`` runs ``entity_factory(id)``.

    Args:
        entity_factory: Builds the behavior of the entity with the given id.
        num_shards: Shards the ids are hashed into; the same on every node.
        replication: Replica copies of event-sourced entities (see replication).
        role: Only nodes with this role host shards; others only route.
        passivate_after: Stop entities idle this many seconds (default from
            ``[defaults.sharding] passivate_after``); the next message starts them again.

    Raises:
        ValueError: ``num_shards`` is below 1, ``passivate_after`` is not positive, or the
            replication asks for more acks than replicas.

    Examples:
        >>> from casty_trio import Behaviors
        >>> def account(entity_id: str) -> Behavior[int]:
        ...     return Behaviors.ignore()
        >>> sharded(account, num_shards=10).num_shards
        10
    """
    if num_shards < 1:
        raise ValueError(f"num_shards must be at least 1, got {num_shards}")
    if passivate_after is not None and not passivate_after > 0:
        raise ValueError(f"passivate_after must be positive, got {passivate_after}")
    if replication is not None:
        _check_replication(replication)
    return ShardedBehavior(entity_factory, num_shards, replication, role, passivate_after)


def _check_replication(replication: ReplicationConfig) -> None:
    if replication.replicas < 0 or replication.min_acks < 0:
        raise ValueError(f"replicas and min_acks must not be negative: {replication}")
    if replication.min_acks > replication.replicas:
        raise ValueError(
            f"min_acks={replication.min_acks} exceeds replicas={replication.replicas}: "
            "a write could never be confirmed"
        )
    if not replication.ack_timeout > 0:
        raise ValueError(f"ack_timeout must be positive: {replication}")
