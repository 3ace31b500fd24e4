"""Process B of the two-process tests: a RemoteActorSystem with an ``/echo`` actor.

Run as ``python -m tests.integration._echo_node --port PORT [--tls DIR]`` from the repository
root. Prints one JSON line ``{"port": ..., "pid": ...}`` once listening, then serves until its
stdin closes (or it is killed). With ``--tls DIR`` it speaks wss with mutual TLS, using
``DIR/node.pem``, ``DIR/node.key`` and ``DIR/ca.pem``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import trio

from casty_trio import ActorContext, Behavior, Behaviors
from casty_trio.remote import RemoteActorSystem
from casty_trio.tls import TlsConfig
from tests.integration._messages import Forward, Ping, Pong

SYSTEM = "two-processes"
LOCAL = "127.0.0.1"


def echo() -> Behavior[Any]:
    async def receive(ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
        match msg:
            case Ping(n, reply_to):
                reply_to.tell(Pong(n, ctx.self))
            case Forward(note, to):
                for ref in to.values():
                    ref.tell(note)
        return Behaviors.same()

    return Behaviors.receive(receive)


async def serve(port: int, tls_dir: Path | None) -> None:
    tls = None
    if tls_dir is not None:
        tls = TlsConfig.from_paths(
            certfile=tls_dir / "node.pem", keyfile=tls_dir / "node.key", cafile=tls_dir / "ca.pem"
        )
    stdin = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
    async with RemoteActorSystem(SYSTEM, host=LOCAL, port=port, tls=tls) as system:
        system.spawn(echo(), "echo")
        print(json.dumps({"port": system.self_node.port, "pid": os.getpid()}), flush=True)
        while await stdin.receive_some(4096):
            pass
    await stdin.aclose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--tls", type=Path, default=None)
    args = parser.parse_args(argv)
    trio.run(serve, args.port, args.tls)


if __name__ == "__main__":
    main()
