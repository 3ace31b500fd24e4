"""Which incarnation of a node holds each address, as the gossips seen so far tell.

A node that restarts at the same address is a new incarnation (a new ``uid``): whatever the old
one hosted or replicated is gone with it, and a message still in flight from the old one must
not count as the new one's. A gossip holds at most one incarnation per address that is neither
``down`` nor ``removed`` (a join downs the older one in the same change), so that one is the
address's *current* incarnation, whatever order the gossip lists its members in.
"""

from __future__ import annotations

import attrs

from .._core import NodeAddress
from ._membership import _GONE, Gossip, UniqueAddress

__all__ = ["Incarnations"]


@attrs.define
class Incarnations:
    """The current incarnation of each address, and the incarnations known to be over.

    Pure state, fed with gossips by its owner (the shard coordinator).

    Examples:
        >>> from casty_trio.cluster._membership import Member, MemberStatus
        >>> old = UniqueAddress(NodeAddress("h", 1), 1)
        >>> new = UniqueAddress(NodeAddress("h", 1), 2)
        >>> seen = Incarnations()
        >>> seen.update(Gossip([Member(old, "a", MemberStatus.up)]))
        set()
        >>> seen.update(Gossip([Member(old, "a", MemberStatus.down), Member(new, "a")]))
        {NodeAddress(host='h', port=1)}
        >>> seen.may_be_current(NodeAddress("h", 1), 1), seen.may_be_current(NodeAddress("h", 1), 2)
        (False, True)
    """

    current: dict[NodeAddress, UniqueAddress] = attrs.Factory(dict)
    over: set[UniqueAddress] = attrs.Factory(set)

    def update(self, gossip: Gossip) -> set[NodeAddress]:
        """Take in ``gossip``; return the addresses whose current incarnation changed since the
        last one (restarted nodes). The first incarnation seen at an address is no restart,
        so an owner that starts after a restart does not take it for one. Not a checkpoint."""
        restarted = set()
        current = self.current
        for member in gossip.members.values():
            unique = member.unique
            if member.status in _GONE:
                self.over.add(unique)
                continue
            known = current.get(unique.node)
            if known != unique:
                if known is not None:
                    restarted.add(unique.node)
                current[unique.node] = unique
        return restarted

    def may_be_current(self, node: NodeAddress, uid: int) -> bool:
        """Whether incarnation ``uid`` of ``node`` may be the current one: not seen down or
        removed, and no other incarnation seen current at that address (one not seen at all
        yet may be: it may have joined after the last gossip taken in)."""
        unique = UniqueAddress(node, uid)
        if unique in self.over:
            return False
        known = self.current.get(node)
        return known is None or known == unique
