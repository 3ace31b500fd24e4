"""Argument parsing and dispatch for ``casty-trio``."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

import trio

from .._core import NodeAddress
from .._errors import ConfigError
from ..config import parse_host_port

_LOG_LEVELS = ("debug", "info", "warning", "error")


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return value


def _host_port(text: str) -> NodeAddress:
    try:
        return NodeAddress(*parse_host_port(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="casty-trio",
        description="Typed, clustered actors on Trio.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="run the replication demo: a 3-node cluster of bank accounts, a node killed "
        "under load, no confirmed write lost",
    )
    demo.add_argument(
        "--accounts", type=int, default=30, help="number of bank accounts (default: 30)"
    )
    demo.add_argument(
        "--clients", type=int, default=16, help="concurrent writing clients (default: 16)"
    )
    demo.add_argument(
        "--load",
        type=_positive,
        default=2.0,
        metavar="S",
        help="seconds of load before a node is killed (default: 2)",
    )
    demo.add_argument("--seed", type=int, default=7, help="random seed (default: 7)")

    node = commands.add_parser(
        "node",
        help="run a cluster node from a casty.toml until SIGINT/SIGTERM, then leave gracefully",
    )
    node.add_argument(
        "--config", required=True, metavar="PATH", help="the configuration file (casty.toml)"
    )
    node.add_argument(
        "--app",
        metavar="MODULE:FUNCTION",
        help="an async function f(system) to run inside the node",
    )
    node.add_argument(
        "--log-level",
        choices=_LOG_LEVELS,
        default="warning",
        help="level of the framework's log messages on stderr (default: warning)",
    )

    status = commands.add_parser(
        "status", help="print the membership table of a running node (without joining)"
    )
    status.add_argument("address", type=_host_port, metavar="HOST:PORT", help="a node's address")
    status.add_argument(
        "--system",
        default="casty-system",
        metavar="NAME",
        help="the cluster's actor system name (default: casty-system)",
    )
    status.add_argument(
        "--timeout",
        type=_positive,
        default=5.0,
        metavar="S",
        help="seconds to wait for the node (default: 5)",
    )
    return parser


def _node(args: argparse.Namespace) -> int:
    from ..config import load_config
    from ._node import AppError, load_app, run_node

    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        config = load_config(args.config)
        app = load_app(args.app) if args.app else None
        return trio.run(run_node, config, app)
    except (ConfigError, AppError, OSError) as exc:
        sys.stderr.write(f"casty-trio node: error: {exc}\n")
        return 2


def _status(args: argparse.Namespace) -> int:
    from ..cluster._membership import Gossip
    from ..cluster._wire import gossip_from_wire, unique_address_from_wire
    from ._status import StatusError, format_table, query_status, status_rows, summary

    try:
        answer = trio.run(
            lambda: query_status(args.address, system_name=args.system, timeout=args.timeout)
        )
        gossip: Gossip = gossip_from_wire(answer.gossip)
        me = unique_address_from_wire(answer.node)
    except (StatusError, ValueError) as exc:
        sys.stderr.write(f"casty-trio status: error: {exc}\n")
        return 1
    sys.stdout.write(summary(answer, args.system))
    sys.stdout.write(format_table(status_rows(gossip, me)))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit status.

    Commands: ``demo``, ``node --config casty.toml [--app module:function]`` and
    ``status HOST:PORT [--system NAME] [--timeout S]``. Exit status 0 on success, 1 when a
    command fails (a node unreachable, an app raising, a node downed), 2 for bad arguments or
    configuration.

    Examples:
        >>> main(["demo", "--load", "1"])             # doctest: +SKIP
        0
        >>> main(["status", "127.0.0.1:25520"])      # doctest: +SKIP
        0
    """
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command == "demo":
        from ._demo import run_demo

        if args.accounts < 1 or args.clients < 1:
            parser.error("--accounts and --clients must be >= 1")
        report = trio.run(run_demo, args.accounts, args.clients, args.load, args.seed)
        sys.stdout.write(report.render())
        return 0 if report.consistent else 1
    if args.command == "node":
        return _node(args)
    if args.command == "status":
        return _status(args)
    parser.print_help()
    return 2
