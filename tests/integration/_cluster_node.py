"""One member of the multi-process cluster tests: a ClusteredActorSystem on loopback.

Run as ``python -m tests.integration._cluster_node --node-id ID [--port PORT] [--seed PORT]
[--settings JSON]`` from the repository root. Without ``--seed`` the node forms a new cluster;
with it, it joins through ``127.0.0.1:SEED``. ``--settings`` is a JSON object of
:class:`~casty_trio.cluster.ClusterSettings` fields (the membership timings).

Prints JSON lines on stdout: ``{"ready": true, "port": ..., "pid": ...}`` once the system is
entered, then one ``{"event": NAME, "node_id": ..., "port": ...}`` per membership event it
sees (``MemberUp``, ``UnreachableMember``, ``ReachableMember``, ``MemberDowned``,
``MemberLeft``). When its stdin closes it leaves the cluster gracefully (by leaving the
``async with``), prints ``{"stopped": true}`` and exits with status 0.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import trio

from casty_trio import ClusteredActorSystem
from casty_trio.cluster import (
    ClusterSettings,
    MemberDowned,
    MemberLeft,
    MemberUp,
    ReachableMember,
    UnreachableMember,
)

SYSTEM = "cluster-processes"
LOCAL = "127.0.0.1"
EVENTS = (MemberUp, UnreachableMember, ReachableMember, MemberDowned, MemberLeft)


def emit(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


async def report(system: ClusteredActorSystem, event_type: type[Any], *, task_status: Any) -> None:
    """Print every event of ``event_type``; subscribed before it reports started, so that
    nothing after the "ready" line is missed."""
    async with system.event_stream.subscription(event_type) as events:
        task_status.started()
        async for event in events:
            member = event.member
            emit(event=event_type.__name__, node_id=member.node_id, port=member.node.port)


async def serve(node_id: str, port: int, seed: int | None, settings: ClusterSettings) -> None:
    stdin = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
    seeds = [(LOCAL, seed)] if seed is not None else []
    async with (
        ClusteredActorSystem(
            name=SYSTEM,
            host=LOCAL,
            port=port,
            node_id=node_id,
            seed_nodes=seeds,
            cluster_settings=settings,
        ) as system,
        trio.open_nursery() as nursery,
    ):
        for event_type in EVENTS:
            await nursery.start(report, system, event_type)
        emit(ready=True, port=system.self_node.port, pid=os.getpid())
        while await stdin.receive_some(4096):
            pass
        nursery.cancel_scope.cancel()
    await stdin.aclose()
    emit(stopped=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--node-id", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--settings", default="{}")
    args = parser.parse_args(argv)
    settings = ClusterSettings(**json.loads(args.settings))
    trio.run(serve, args.node_id, args.port, args.seed, settings)


if __name__ == "__main__":
    main()
