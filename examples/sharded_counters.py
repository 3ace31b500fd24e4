"""Sharded counters on a three-node cluster, all in one process on the simulated network.

Each node spawns the same sharded type; tells and asks through any node reach the one counter
with that id, wherever the cluster placed it. Then one node leaves gracefully: its shards are
handed to the others and every count is still there, because the counters are event-sourced
into a journal all nodes share.

Run it with ``python examples/sharded_counters.py``: it prints where the shards live before
and after the leave, and the totals. Its messages are defined in the script itself (module
``__main__``), so every node passes them to its serializer in ``types=``: a class of the
script is sent to another node only then.
"""

from __future__ import annotations

from typing import Any

import attrs
import trio
import trio.testing

from casty_trio import (
    ActorContext,
    ActorRef,
    Behavior,
    Behaviors,
    EventJournal,
    InMemoryJournal,
    MsgpackSerializer,
    ShardEnvelope,
)
from casty_trio.testing import open_test_cluster


@attrs.frozen
class Add:
    amount: int


@attrs.frozen
class Get:
    reply_to: ActorRef[int]


@attrs.frozen
class Added:
    amount: int


def counters(journal: EventJournal) -> Any:
    def counter(entity_id: str) -> Behavior[Add | Get]:
        async def on_command(ctx: ActorContext[Add | Get], total: int, msg: Add | Get) -> Any:
            if isinstance(msg, Add):
                return Behaviors.persisted([Added(msg.amount)])
            msg.reply_to.tell(total)
            return Behaviors.same()

        return Behaviors.event_sourced(
            entity_id=entity_id,
            journal=journal,
            initial_state=0,
            on_event=lambda total, event: total + event.amount,
            on_command=on_command,
        )

    return counter


def _shards(system: Any) -> list[int]:
    return sorted(system.region_statistics("hits").shards)


async def main() -> dict[str, int]:
    journal = InMemoryJournal()
    ids = [f"page-{k}" for k in range(12)]
    serializer = MsgpackSerializer(types=[Add, Get])
    async with open_test_cluster(3, seed=1, serializer=serializer) as cluster:
        spec = Behaviors.sharded(counters(journal), num_shards=12)
        refs = [cluster.node(i).spawn(spec, "hits") for i in range(3)]
        for k, page in enumerate(ids):
            for i, ref in enumerate(refs):
                ref.tell(ShardEnvelope(page, Add(k + i)))
        await trio.sleep(1)
        for i in range(3):
            print(f"node-{i} hosts shards {_shards(cluster.node(i))}")
        await cluster.stop(2)
        print("node-2 left")
        for i in range(2):
            print(f"node-{i} hosts shards {_shards(cluster.node(i))}")
        totals = {}
        for page in ids:
            totals[page] = await cluster.node(0).ask(
                refs[0], lambda r, page=page: ShardEnvelope(page, Get(r)), timeout=5
            )
        print("totals:", totals)
        return totals


if __name__ == "__main__":
    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
