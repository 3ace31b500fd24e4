"""The sharded types of one node: spawning their regions, their statistics, handing off on leave."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

import trio

from .._core import ActorRef, Behavior
from ..cluster import MembershipSystem
from ._region import RegionLeave, region
from ._routing import RegionRouting, RegionStatistics
from ._sharded import ShardedBehavior, ShardEnvelope, sharded
from ._wire import SHARD_MESSAGES
from .replication import REPLICATION_MESSAGES

__all__ = ["ShardRegions"]

M = TypeVar("M")

_log = logging.getLogger("casty_trio.sharding")


class ShardRegions:
    """This node's regions, one per sharded type spawned on ``system``.

    Built once per system, before it starts: registers the sharding and replication protocols
    with the system's codec and a leave hook that hands every region's shards off before the
    node leaves (bounded by ``[defaults.sharding] handoff_timeout``).

    Examples:
        >>> regions = ShardRegions(system)                          # doctest: +SKIP
        >>> ref = regions.spawn(Behaviors.sharded(account), "accounts")  # doctest: +SKIP
    """

    def __init__(self, system: MembershipSystem) -> None:
        self._system = system
        self._routes: dict[str, RegionRouting] = {}
        self._refs: dict[str, ActorRef[Any]] = {}
        system.remoting.codec.register(*SHARD_MESSAGES, *REPLICATION_MESSAGES)
        system.add_leave_hook(self._hand_off)

    def spawn(self, spec: ShardedBehavior[M], name: str) -> ActorRef[ShardEnvelope[M]]:
        """Start this node's region of sharded type ``name``; returns the ref that routes
        envelopes to the type's entities. Not a checkpoint.

        Raises:
            ValueError: ``name`` is invalid or taken.
            ActorSystemError: The system is not running.
        """
        system = self._system
        routing = RegionRouting()
        config = system.config.defaults
        behavior = region(system, name, spec, config.sharding, routing, config.replication)
        routing.region = system.spawn(behavior, name)
        ref: ActorRef[Any] = ActorRef(routing.region.address, routing)
        self._routes[name] = routing
        self._refs[name] = ref
        return ref

    def get(self, name: str) -> ActorRef[Any] | None:
        """The ref of the region of type ``name`` spawned here, or ``None``."""
        return self._refs.get(name)

    def region_ref(
        self, key: str, factory: Callable[[str], Behavior[M]], *, num_shards: int
    ) -> ActorRef[ShardEnvelope[M]]:
        """The region of type ``key``, spawned with ``factory`` on first use."""
        existing = self._refs.get(key)
        if existing is not None:
            return existing
        return self.spawn(sharded(factory, num_shards=num_shards), key)

    def statistics(self, name: str) -> RegionStatistics:
        """What the region of type ``name`` hosts now.

        Raises:
            KeyError: No sharded type ``name`` was spawned here.
        """
        return self._routes[name].statistics()

    async def _hand_off(self) -> None:
        if not self._routes:
            await trio.lowlevel.checkpoint()
            return
        events = []
        for routing in self._routes.values():
            done = trio.Event()
            routing.region.tell(RegionLeave(done))
            events.append(done)
        timeout = self._system.config.defaults.sharding.handoff_timeout
        with trio.move_on_after(timeout) as scope:
            for done in events:
                await done.wait()
        if scope.cancelled_caught:
            _log.warning(
                "node %s leaves before all its shards were handed off", self._system.self_node
            )
        await trio.lowlevel.checkpoint()
