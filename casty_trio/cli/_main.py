"""Argument parsing and dispatch for ``casty-trio``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import trio


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="casty-trio",
        description="Typed, clustered actors on Trio.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="run the bank demo: supervised accounts, asks, a crash and its restart",
    )
    demo.add_argument(
        "--accounts", type=int, default=5, help="number of account actors (default: 5)"
    )
    demo.add_argument(
        "--operations",
        type=int,
        default=20_000,
        help="deposits and withdrawals to send in all (default: 20000)",
    )
    demo.add_argument("--seed", type=int, default=7, help="random seed (default: 7)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit status.

    Examples:
        >>> main(["demo", "--operations", "100"])     # doctest: +SKIP
        0
    """
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command == "demo":
        from ._demo import run_demo

        if args.accounts < 1 or args.operations < 0:
            parser.error("--accounts must be >= 1 and --operations >= 0")
        report = trio.run(run_demo, args.accounts, args.operations, args.seed)
        sys.stdout.write(report.render())
        return 0 if report.consistent else 1
    parser.print_help()
    return 2
