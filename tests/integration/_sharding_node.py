"""One member of the multi-process sharding test: a ClusteredActorSystem on loopback that
spawns the sharded type ``counters`` and obeys commands read from stdin.

Run as ``python -m tests.integration._sharding_node --index I --entities N [--seed PORT]
[--settings JSON]`` from the repository root (index 0 forms the cluster, the others join
through ``127.0.0.1:SEED``). Prints JSON lines on stdout:

* ``{"ready": true, "port": P}`` once the system is entered;
* ``{"spawned": true}`` once 3 members are up and the region is spawned;
* on the line ``tell``: tells ``Add(index + 1)`` to every id ``id-0 .. id-{N-1}``, then asks
  each id once (the asks follow the tells on the same path, so every tell has been handled
  when they return) and prints ``{"told": true}``;
* on the line ``ask``: asks every id and prints ``{"answers": {id: [value, node, starts]},
  "shards": [...], "entities": E}`` (this node's hosted shards and running entities);
* on end of input: leaves the cluster (shards hand off), prints ``{"stopped": true}``, exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import trio

from casty_trio import Behaviors, ClusteredActorSystem, ShardEnvelope
from casty_trio.cluster import ClusterSettings

from ._sharding_messages import Add, Counted, Get, counter_factory

SYSTEM = "sharding-processes"
LOCAL = "127.0.0.1"
TYPE = "counters"
NUM_SHARDS = 30


def emit(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


async def lines(stream: trio.abc.ReceiveStream) -> Any:
    buffer = b""
    while chunk := await stream.receive_some(4096):
        buffer += chunk
        *complete, buffer = buffer.split(b"\n")
        for line in complete:
            yield line.decode().strip()


async def ask_all(system: ClusteredActorSystem, ref: Any, ids: list[str]) -> dict[str, Counted]:
    answers = {}
    for eid in ids:
        answers[eid] = await system.entity_ask(
            ref, lambda r, eid=eid: ShardEnvelope(eid, Get(r)), timeout=10.0
        )
    return answers


async def serve(index: int, entities: int, seed: int | None, settings: ClusterSettings) -> None:
    stdin = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
    seeds = [(LOCAL, seed)] if seed is not None else []
    ids = [f"id-{k}" for k in range(entities)]
    starts: dict[str, int] = {}
    async with ClusteredActorSystem(
        name=SYSTEM,
        host=LOCAL,
        port=0,
        node_id=f"node-{index}",
        seed_nodes=seeds,
        cluster_settings=settings,
    ) as system:
        emit(ready=True, port=system.self_node.port)
        await system.wait_for(3, timeout=30)
        factory = counter_factory(str(system.self_node), starts)
        ref = system.spawn(Behaviors.sharded(factory, num_shards=NUM_SHARDS), TYPE)
        emit(spawned=True)
        async for command in lines(stdin):
            if command == "tell":
                for eid in ids:
                    ref.tell(ShardEnvelope(eid, Add(index + 1)))
                await ask_all(system, ref, ids)
                emit(told=True)
            elif command == "ask":
                answers = await ask_all(system, ref, ids)
                stats = system.region_statistics(TYPE)
                emit(
                    answers={e: [c.value, c.node, c.starts] for e, c in answers.items()},
                    shards=sorted(stats.shards),
                    entities=stats.entities,
                    node=str(system.self_node),
                )
    await stdin.aclose()
    emit(stopped=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--index", type=int, required=True)
    parser.add_argument("--entities", type=int, default=300)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--settings", default="{}")
    args = parser.parse_args(argv)
    settings = ClusterSettings(**json.loads(args.settings))
    trio.run(serve, args.index, args.entities, args.seed, settings)


if __name__ == "__main__":
    main()
