"""The leader (lowest address) leaving gracefully is seen as a leave, not a failure.

A leader that moved itself to ``exiting`` and shut down before anyone heard of it would stay
``leaving`` for the others, who would find it unreachable and down it (in a 2-node cluster the
survivor would even down itself on the keep-majority tie).
"""

from __future__ import annotations

from typing import Any

import pytest
import trio

from casty_trio import MemberDowned, MemberLeft
from casty_trio.testing import open_test_cluster


@pytest.mark.parametrize("n", [2, 3])
@pytest.mark.parametrize("seed", range(5))
async def test_leader_leaving_is_a_leave(autojump_clock: Any, n: int, seed: int) -> None:
    async with open_test_cluster(n, seed=seed) as cluster:
        survivor = cluster.node(1)
        async with (
            survivor.event_stream.subscription(MemberLeft) as left,
            survivor.event_stream.subscription(MemberDowned) as downed,
        ):
            await cluster.stop(0)
            with trio.fail_after(30):
                event = await left.receive()
            assert event.member.node_id == "node-0"
            with pytest.raises(trio.WouldBlock):
                downed.receive_nowait()
        assert all(cluster.outcomes[i] is None for i in range(n))
