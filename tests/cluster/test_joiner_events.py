"""A member downed while a node did not see it go down is reported downed, never as left.

A joiner learns the membership from its welcome; under message loss it may miss the ``down``
of a crashed member and only later see that member ``removed``. A member goes ``removed`` only
through ``exiting`` (a leave) or ``down``, so from ``up`` straight to ``removed`` it was downed:
``MemberDowned``, not ``MemberLeft``.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
import trio

from casty_trio import MemberDowned, MemberLeft, NodeAddress
from casty_trio.cluster import Gossip, Member, MemberStatus, UniqueAddress, diff_events
from casty_trio.testing import open_test_cluster

A = UniqueAddress(NodeAddress("h", 1), 1)
B = UniqueAddress(NodeAddress("h", 2), 1)


@pytest.fixture(autouse=True)
def _quiet(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.CRITICAL, logger="casty_trio")


@pytest.mark.parametrize("seed", range(16))
async def test_a_joiner_never_reports_a_downed_member_as_left(
    autojump_clock: Any, seed: int
) -> None:
    async with open_test_cluster(4, seed=seed) as cluster:
        await cluster.stop(3)
        await cluster.kill(2)  # node-2 is downed while node 3 joins again over lossy links
        for i in (0, 1):
            cluster.network.set_loss(cluster.address(3), cluster.address(i), 0.3)
        joiner = await cluster.restart(3)
        seen: list[tuple[str, str]] = []
        async with (
            joiner.event_stream.subscription(MemberLeft) as left,
            joiner.event_stream.subscription(MemberDowned) as downed,
            trio.open_nursery() as nursery,
        ):

            async def record(receive: Any) -> None:
                async for event in receive:
                    seen.append((type(event).__name__, event.member.node_id))

            nursery.start_soon(record, left)
            nursery.start_soon(record, downed)
            await trio.sleep(40)
            nursery.cancel_scope.cancel()
        assert ("MemberLeft", "node-2") not in seen, seen


@pytest.mark.parametrize(
    ("last_seen", "expected"),
    [
        (MemberStatus.joining, [MemberDowned]),
        (MemberStatus.up, [MemberDowned]),
        (MemberStatus.leaving, [MemberLeft]),
        (MemberStatus.exiting, [MemberLeft]),
        (MemberStatus.down, []),
        (None, []),
    ],
)
def test_a_removal_is_reported_by_the_status_last_seen(
    last_seen: MemberStatus | None, expected: list[type]
) -> None:
    a = Member(A, "a", MemberStatus.up, up_number=1)
    before = Gossip([a] if last_seen is None else [a, Member(B, "b", last_seen)])
    after = Gossip([a, Member(B, "b", MemberStatus.removed)])
    events = [e for e in diff_events(before, after) if isinstance(e, MemberLeft | MemberDowned)]
    assert [type(e) for e in events] == expected
