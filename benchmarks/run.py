"""Run the benchmark scenarios, each in its own subprocess, and relay their JSON lines.

Usage::

    python benchmarks/run.py                      # every scenario, full counts
    python benchmarks/run.py --quick              # tiny counts: a smoke run
    python benchmarks/run.py --only local_tell local_ask

Each scenario prints one JSON record (``scenario``, ``ours``, ``baseline``, ``ratio``, ``goal``,
``meets_goal``, ...); they are relayed to stdout as they arrive. A summary goes to stderr.
The whole run is bounded by ``--budget`` seconds (default 600): a scenario still running when
the budget is spent is killed and counts as a crash.

Exit status: 0 when every scenario produced a valid record, even if some goal is missed
(benchmarks report, tests decide); 1 when a scenario crashed, timed out or printed no valid record;
2 for bad arguments.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SCENARIOS = (
    "local_tell",
    "local_ask",
    "many_actors",
    "remote_tell",
    "remote_ask",
    "cluster_formation",
    "failure_detection",
    "sharded_tell",
    "sharded_ask",
    "cross_node_sharded",
    "rebalance",
    "replicated_write",
    "failover_time",
)
REQUIRED_KEYS = frozenset({"scenario", "ours", "baseline", "ratio", "goal", "meets_goal"})


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="NAME",
        choices=SCENARIOS,
        help=f"run only these scenarios (of: {', '.join(SCENARIOS)})",
    )
    parser.add_argument("--quick", action="store_true", help="tiny counts, for a smoke run")
    parser.add_argument(
        "--budget",
        type=float,
        default=600.0,
        help="seconds the whole run may take (default: 600)",
    )
    return parser.parse_args(argv)


def _run_one(name: str, *, quick: bool, timeout: float) -> tuple[list[dict[str, Any]], str]:
    """Run one scenario; return its valid records and an error description ('' if none)."""
    cmd = [sys.executable, str(HERE / f"{name}.py")]
    if quick:
        cmd.append("--quick")
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, check=False, cwd=HERE.parent
        )
    except subprocess.TimeoutExpired as exc:
        stderr = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else ""
        return [], f"timed out after {timeout:.0f}s\n{stderr}"
    records: list[dict[str, Any]] = []
    problems: list[str] = []
    for line in proc.stdout.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            problems.append(f"not JSON: {line[:200]}")
            continue
        missing = REQUIRED_KEYS - record.keys() if isinstance(record, dict) else REQUIRED_KEYS
        if missing:
            problems.append(f"record lacks {sorted(missing)}: {line[:200]}")
            continue
        records.append(record)
    if proc.returncode != 0:
        problems.insert(0, f"exit status {proc.returncode}\n{proc.stderr}")
    elif not records:
        problems.insert(0, f"no record printed\n{proc.stderr}")
    elif proc.stderr.strip():
        sys.stderr.write(proc.stderr)
    return records, "\n".join(problems)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    names = args.only or list(SCENARIOS)
    deadline = time.monotonic() + args.budget
    failed: list[str] = []
    for name in names:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            failed.append(name)
            print(f"[bench] {name}: skipped, time budget spent", file=sys.stderr)
            continue
        started = time.monotonic()
        records, error = _run_one(name, quick=args.quick, timeout=remaining)
        took = time.monotonic() - started
        for record in records:
            print(json.dumps(record, sort_keys=True), flush=True)
            verdict = "meets" if record["meets_goal"] else "MISSES"
            print(
                f"[bench] {record['scenario']}: ratio={record['ratio']} {verdict} goal "
                f"({record['goal']}) in {took:.1f}s",
                file=sys.stderr,
            )
        if error:
            failed.append(name)
            print(f"[bench] {name}: FAILED: {error}", file=sys.stderr)
    if failed:
        print(f"[bench] failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
