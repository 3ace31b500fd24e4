"""One bank node process (see :mod:`casty_trio.cli._bank`).

Run as ``python -m casty_trio.cli._bank_node --index I --seed PORT --spec JSON`` (``--seed 0``:
form the cluster). The node is a :class:`~casty_trio.cluster.ClusteredActorSystem` on
127.0.0.1 with the role ``bank`` and its own :class:`~casty_trio.InMemoryJournal`. It prints
JSON lines on stdout:

* ``{"ready": true, "port": P, "pid": PID}`` once its system is entered;
* ``{"spawned": true}`` once every bank node and the client are up and the account types are
  spawned;
* on the line ``stats N``: ``{"stats": N, "shards": [...], "entities": E}``, the shards of
  ``accounts`` it hosts as primary and the accounts running here.

When its stdin closes it leaves the cluster (its shards hand off) and exits with status 0.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Any

import trio

from .._clustered import ClusteredActorSystem
from ..persistence import InMemoryJournal
from ._bank import LOCAL, ROLE, SYSTEM, TYPE, BankSpec, bank_config, spawn_accounts


def _emit(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


async def _commands(stream: trio.lowlevel.FdStream) -> Any:
    buffer = b""
    while chunk := await stream.receive_some(4096):
        buffer += chunk
        *complete, buffer = buffer.split(b"\n")
        for line in complete:
            yield line.decode().strip()


async def serve(index: int, seed: int, spec: BankSpec) -> None:
    """Run the node until stdin closes. A checkpoint; runs inside ``trio.run``."""
    stdin = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
    async with ClusteredActorSystem(
        name=SYSTEM,
        host=LOCAL,
        port=0,
        node_id=f"node-{index}",
        seed_nodes=[(LOCAL, seed)] if seed else [],
        roles=frozenset({ROLE}),
        config=bank_config(spec),
        cluster_settings=spec.cluster_settings,
    ) as system:
        _emit(ready=True, port=system.self_node.port, pid=os.getpid())
        await system.wait_for(spec.nodes + 1, timeout=30.0)  # the bank nodes and the client
        spawn_accounts(system, spec, InMemoryJournal())
        _emit(spawned=True)
        async for command in _commands(stdin):
            words = command.split()
            if words and words[0] == "stats":
                stats = system.region_statistics(TYPE)
                _emit(stats=int(words[1]), shards=sorted(stats.shards), entities=stats.entities)
    await stdin.aclose()


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and run the node."""
    parser = argparse.ArgumentParser(prog="python -m casty_trio.cli._bank_node")
    parser.add_argument("--index", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--spec", required=True)
    args = parser.parse_args(argv)
    # Refused dials to a killed peer are expected here: keep stderr for real failures.
    logging.basicConfig(level=logging.ERROR)
    trio.run(serve, args.index, args.seed, BankSpec.from_json(args.spec))


if __name__ == "__main__":
    main()
