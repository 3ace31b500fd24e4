"""``casty-trio node --config casty.toml [--app module:function]``: run one cluster node.

The node is ``ClusteredActorSystem.from_config(config)``. It runs until SIGINT or SIGTERM,
then leaves the cluster gracefully (the other members see it leave) and the process exits with
status 0. It prints one line once this node is ``up`` and one once it has left.

``--app module:function`` names an ``async def function(system)`` run inside the system once it
is entered (``module`` is imported with the working directory on ``sys.path``). If it returns,
the node keeps running until a signal; if it raises, the node leaves the cluster and the
process exits with status 1. A signal cancels it.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
import traceback
from collections.abc import Awaitable, Callable
from typing import Any, TextIO

import trio

from .._clustered import ClusteredActorSystem
from ..cluster import MemberStatus, MemberUp, NodeDownedError
from ..config import CastyConfig

__all__ = ["AppError", "load_app", "run_node"]

App = Callable[[ClusteredActorSystem], Awaitable[Any]]


class AppError(Exception):
    """``--app`` does not name an importable callable."""


def load_app(spec: str) -> App:
    """The callable ``module:function`` names (``function`` may be dotted: ``mod:obj.fn``).

    The working directory is put on ``sys.path`` first, as ``python -m`` does.

    Raises:
        AppError: ``spec`` is not ``module:function``, the module cannot be imported, or the
            attribute is missing or not callable.

    Examples:
        >>> load_app("json:dumps").__name__
        'dumps'
        >>> load_app("json")
        Traceback (most recent call last):
        ...
        casty_trio.cli._node.AppError: --app must be 'module:function', got 'json'
    """
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise AppError(f"--app must be 'module:function', got {spec!r}")
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise AppError(f"--app {spec}: cannot import {module_name!r}: {exc}") from None
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            missing = f"{module_name!r} has no attribute {attribute!r}"
            raise AppError(f"--app {spec}: {missing}") from None
    if not callable(target):
        raise AppError(f"--app {spec}: {attribute!r} is not callable")
    app: App = target
    return app


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


async def _announce_up(system: ClusteredActorSystem, out: TextIO) -> None:
    async with system.event_stream.subscription(MemberUp) as ups:
        while True:
            state = await system.get_cluster_state()
            me = state.self_member
            if me is not None and me.status is MemberStatus.up:
                break
            await ups.receive()
    assert me is not None
    node = system.self_node
    out.write(
        f"casty-trio node: {me.node_id} up at {node.host}:{node.port} "
        f"(system {system.name!r}, {_count(len(state.up()), 'member')} up)\n"
    )
    out.flush()


async def run_node(
    config: CastyConfig,
    app: App | None = None,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
    signals: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM),
) -> int:
    """Run a node of ``config`` until one of ``signals``; return the process exit status.

    0 after a graceful leave; 1 when ``app`` raised or the cluster downed this node.
    A checkpoint (it runs until a signal). Must run in the main thread (signal handling).

    Raises:
        ConfigError: ``config`` has no ``[cluster]`` section or names unusable TLS files.

    Examples:
        >>> trio.run(run_node, load_config("casty.toml"))  # doctest: +SKIP
        0
    """
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    failed = False
    system = ClusteredActorSystem.from_config(config)
    with trio.open_signal_receiver(*signals) as received:
        try:
            async with system, trio.open_nursery() as nursery:

                async def run_app(app: App) -> None:
                    nonlocal failed
                    try:
                        await app(system)
                    except Exception:
                        failed = True
                        err.write("casty-trio node: the --app function raised:\n")
                        err.write(traceback.format_exc())
                        err.flush()
                        nursery.cancel_scope.cancel()

                nursery.start_soon(_announce_up, system, out)
                if app is not None:
                    nursery.start_soon(run_app, app)
                async for signum in received:
                    name = signal.Signals(signum).name
                    err.write(f"casty-trio node: {name} received, leaving the cluster\n")
                    err.flush()
                    break
                nursery.cancel_scope.cancel()
        except NodeDownedError as exc:
            out.write(f"casty-trio node: {exc}\n")
            out.flush()
            return 1
    node = system.self_node
    member = system.cluster_gossip().member(system.self_unique)
    who = member.node_id if member is not None else f"{node.host}:{node.port}"
    out.write(f"casty-trio node: {who} at {node.host}:{node.port} left the cluster\n")
    out.flush()
    return 1 if failed else 0
