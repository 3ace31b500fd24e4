"""Shared helpers for the benchmark scenarios: timing, GC guard, RSS, percentiles, JSON output.

Every scenario measures casty_trio and a raw Trio baseline in the same process, repeats each a
few times and keeps the best run (machines are noisy; the best run is the least disturbed one).
Records are printed as one JSON line each, keys sorted, so runs can be diffed and collected.
"""

from __future__ import annotations

import contextlib
import gc
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any, TypeVar

import trio

__all__ = [
    "REQUIRED_KEYS",
    "best_of",
    "emit",
    "environment",
    "gc_paused",
    "make_record",
    "now",
    "now_ns",
    "paired_ratio_median",
    "percentile",
    "quick_from_argv",
    "rss_bytes",
]

T = TypeVar("T")

#: Keys every scenario record carries (``run.py`` and the smoke test check them).
REQUIRED_KEYS = frozenset({"scenario", "ours", "baseline", "ratio", "goal", "meets_goal"})

now = time.perf_counter
now_ns = time.perf_counter_ns


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Collect garbage, then keep the cyclic GC off for the timed region; restore it after.

    Collecting first means a run does not pay for the garbage of the previous one.
    """
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def rss_bytes() -> int:
    """Current resident set size of this process in bytes.

    Reads ``VmRSS`` from ``/proc/self/status``; where that does not exist, falls back to the
    *peak* RSS from :func:`resource.getrusage` (only meaningful as an upper bound).
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def percentile(values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (0..100) of ``values``, linear between closest ranks.

    ``values`` need not be sorted. Returns ``nan`` for an empty sequence.
    """
    if not values:
        return math.nan
    ordered = sorted(values)
    if len(ordered) == 1:
        return float(ordered[0])
    rank = (len(ordered) - 1) * (p / 100.0)
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    fraction = rank - low
    return float(ordered[low] + (ordered[high] - ordered[low]) * fraction)


def best_of(results: Sequence[T], key: Callable[[T], float], *, highest: bool = True) -> T:
    """The best of several runs: highest ``key`` (throughput) or lowest (durations)."""
    return max(results, key=key) if highest else min(results, key=key)


async def alternate(
    repeats: int,
    n: int,
    warmup: int,
    *runners: Callable[[int], Awaitable[dict[str, float]]],
) -> list[list[dict[str, float]]]:
    """Warm each runner up once with ``warmup`` items, then run them in turn, ``repeats``
    times with ``n`` items, so that drifts of a noisy machine hit every side alike.

    Returns the results per runner, in the order given.
    """
    for runner in runners:
        await runner(warmup)
    results: list[list[dict[str, float]]] = [[] for _ in runners]
    for _ in range(repeats):
        for runner, runs in zip(runners, results, strict=True):
            runs.append(await runner(n))
    return results


def compare(
    ours_runs: Sequence[dict[str, float]],
    base_runs: Sequence[dict[str, float]],
    metric: str,
    *,
    highest: bool = True,
) -> tuple[dict[str, float], dict[str, float], float, float]:
    """Best run of each side by ``metric``, their ratio (ours / baseline), and the median of
    the run-by-run ratios: what every scenario reports."""
    ours = best_of(ours_runs, key=lambda r: r[metric], highest=highest)
    base = best_of(base_runs, key=lambda r: r[metric], highest=highest)
    pairs = paired_ratio_median([r[metric] for r in ours_runs], [r[metric] for r in base_runs])
    return ours, base, ours[metric] / base[metric], pairs


def paired_ratio_median(ours: Sequence[float], baseline: Sequence[float]) -> float:
    """Median of ``ours[i] / baseline[i]`` over runs taken back to back.

    A second view of the ratio, robust to a slow minute hitting only one side's best run.
    """
    ratios = [o / b for o, b in zip(ours, baseline, strict=True) if b]
    return percentile(ratios, 50)


def _git_revision() -> str | None:
    """The checkout's commit (``+dirty`` if ``casty_trio/`` has changes), or None."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "casty_trio"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}+dirty" if dirty else head


def environment() -> dict[str, Any]:
    """Versions, revision and machine facts worth keeping next to a figure."""
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "trio": trio.__version__,
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "revision": _git_revision(),
    }


def make_record(
    scenario: str,
    *,
    ours: dict[str, Any],
    baseline: dict[str, Any],
    ratio: float,
    goal: str,
    meets_goal: bool,
    **extra: Any,
) -> dict[str, Any]:
    """Build a scenario record with the keys every line must carry (plus ``extra``)."""
    record: dict[str, Any] = {
        "scenario": scenario,
        "ours": ours,
        "baseline": baseline,
        "ratio": round(ratio, 4),
        "goal": goal,
        "meets_goal": bool(meets_goal),
        "env": environment(),
    }
    record.update(extra)
    return record


def emit(record: dict[str, Any]) -> None:
    """Print ``record`` as one JSON line (keys sorted) and flush."""
    print(json.dumps(record, sort_keys=True), flush=True)


def quick_from_argv(argv: Sequence[str] | None = None) -> bool:
    """Whether ``--quick`` was passed on the command line."""
    return "--quick" in (sys.argv[1:] if argv is None else argv)
