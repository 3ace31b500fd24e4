"""Which incarnation holds an address: restarts seen by the shard coordinator.

Pure state, no trio. What this guards against: a coordinator that starts after a node restarted
sees the old (downed) incarnation first in the gossip's member order, then the new one; taking
the new one for a restart would drop every shard and replica that node holds.
"""

from __future__ import annotations

import doctest
import importlib
from random import Random

from hypothesis import given
from hypothesis import strategies as st

from casty_trio import NodeAddress
from casty_trio.cluster import Gossip, Member, MemberStatus, UniqueAddress
from casty_trio.cluster._incarnations import Incarnations
from casty_trio.cluster._membership import join
from casty_trio.sharding._allocation import LeastShardAllocation

A = NodeAddress("a", 1)
B = NodeAddress("b", 1)


def test_docstring_examples() -> None:
    module = importlib.import_module("casty_trio.cluster._incarnations")
    assert doctest.testmod(module).failed == 0


def _member(node: NodeAddress, uid: int, status: MemberStatus = MemberStatus.up) -> Member:
    return Member(UniqueAddress(node, uid), node.host, status)


def _restarted_cluster() -> Gossip:
    """A cluster where ``a`` restarted: its old incarnation was downed by the new one's join."""
    gossip = Gossip([_member(A, 1), _member(B, 5)])
    return join(gossip, _member(A, 2, MemberStatus.joining), by=UniqueAddress(B, 5))


def test_a_new_incarnation_is_a_restart_once() -> None:
    seen = Incarnations()
    assert seen.update(Gossip([_member(A, 1), _member(B, 5)])) == set()
    assert seen.update(_restarted_cluster()) == {A}
    assert seen.update(_restarted_cluster()) == set()
    assert seen.current[A] == UniqueAddress(A, 2)


def test_the_first_incarnation_seen_is_no_restart() -> None:
    assert Incarnations().update(_restarted_cluster()) == set()


@given(st.integers(min_value=0, max_value=2**32))
def test_member_order_does_not_matter(seed: int) -> None:
    members = list(_restarted_cluster().members.values())
    Random(seed).shuffle(members)
    seen = Incarnations()
    assert seen.update(Gossip(members)) == set()
    assert seen.current == {A: UniqueAddress(A, 2), B: UniqueAddress(B, 5)}


def test_registrations_of_an_incarnation_that_is_over_are_not_current() -> None:
    seen = Incarnations()
    assert seen.may_be_current(A, 1)  # nothing seen yet: may be
    seen.update(_restarted_cluster())
    assert not seen.may_be_current(A, 1)  # downed
    assert seen.may_be_current(A, 2)
    assert not seen.may_be_current(A, 3)  # another one holds the address
    assert seen.may_be_current(NodeAddress("c", 1), 9)  # not joined yet as far as seen


class _StubSystem:
    """What a coordinator asks of its system, for driving one by hand (no regions to tell)."""

    def __init__(self, me: UniqueAddress, gossip: Gossip) -> None:
        self.self_node = me.node
        self.self_unique = me
        self._gossip = gossip

    def cluster_gossip(self) -> Gossip:
        return self._gossip

    def lookup(self, path: str, *, node: NodeAddress | None = None) -> None:
        return None


async def test_a_coordinator_ignores_registrations_of_an_incarnation_that_is_over() -> None:
    """A region of a node that since restarted may still have a registration in flight (the
    old incarnation's shard claim can arrive after the new one has joined; taken in, it would
    make the shard look hosted by a node that has none of its history)."""
    from casty_trio.config import ShardingConfig
    from casty_trio.sharding._coordinator import _Coordinator
    from casty_trio.sharding._wire import RegisterRegion

    gossip = _restarted_cluster()
    me = UniqueAddress(B, 5)
    coordinator = _Coordinator(
        _StubSystem(me, gossip),  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        "/accounts",
        num_shards=10,
        settings=ShardingConfig(),
        strategy=LeastShardAllocation(),
    )
    coordinator.on_membership(gossip)
    coordinator.on_register(RegisterRegion("a", 1, True, [(3, 7)], [], uid=1))  # the old one
    assert 3 not in coordinator.allocation and A not in coordinator.regions
    coordinator.on_register(RegisterRegion("a", 1, True, [], [], uid=2))  # the new one
    assert A in coordinator.regions and 3 not in coordinator.allocation
    coordinator.on_register(RegisterRegion("b", 1, True, [(3, 7)], []))  # uid 0: not said
    assert coordinator.allocation[3] == (B, 7)
