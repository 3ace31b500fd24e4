"""Draw the records of ``benchmarks/run.py`` as an SVG chart: every scored figure against its goal.

Usage::

    python benchmarks/run.py > results.jsonl
    python benchmarks/chart.py results.jsonl -o benchmarks.svg
    python benchmarks/run.py --only local_tell local_ask | python benchmarks/chart.py -o chart.svg

Each scored figure is one row. Goals point different ways (a throughput ratio must reach its
bound, a latency ratio or a duration must stay under it), so every figure is drawn as its margin
over the goal, on a log scale: ``figure / bound`` for a lower bound, ``bound / figure`` for an
upper one. The goal is the line at 1; a bar to the right of it meets the goal by that factor, a
bar to the left misses it. The figure itself and its goal are written next to each row.
``rebalance``, whose goal is a check (no message lost, duplicated or reordered), is drawn as a
mark on the goal line.

Lines that are not JSON objects with a ``scenario`` key are ignored, so the runner's output can
be piped in as it is; when a scenario appears more than once, its last record is drawn. The
output is deterministic: the same records give the same bytes. Needs matplotlib (the ``bench``
extra: ``pip install -e '.[bench]'``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

__all__ = ["GOALS", "Goal", "Row", "main", "read_records", "rows", "write_chart"]


@dataclass(frozen=True)
class Goal:
    """One scored figure of a scenario: where it is in the record and the bound it must meet."""

    scenario: str
    label: str
    path: tuple[str, ...]
    bound: float
    at_least: bool  # True: the figure must reach the bound; False: it must stay under it
    unit: str = ""  # "" for a ratio, "s" for seconds, "B" for bytes


#: The scored figures, in the runner's order; the bounds are the scenarios' own goals.
GOALS: tuple[Goal, ...] = (
    Goal("local_tell", "local_tell", ("ratio",), 1.0, True),
    Goal("local_ask", "local_ask", ("ratio",), 0.8, True),
    Goal("many_actors", "many_actors: spawn", ("spawn_ratio",), 1.5, False),
    Goal("many_actors", "many_actors: memory", ("bytes_per_actor",), 2048, False, "B"),
    Goal("remote_tell", "remote_tell", ("ratio",), 0.4, True),
    Goal("remote_ask", "remote_ask", ("ratio",), 1.2, False),
    Goal(
        "cluster_formation",
        "cluster_formation: 2 nodes",
        ("ours", "nodes_2", "best_s"),
        0.3,
        False,
        "s",
    ),
    Goal(
        "failure_detection",
        "failure_detection: fast",
        ("ours", "fast_profile", "best_s"),
        2.0,
        False,
        "s",
    ),
    Goal("sharded_tell", "sharded_tell", ("ratio",), 0.6, True),
    Goal("sharded_ask", "sharded_ask", ("ratio",), 1.5, False),
    Goal("cross_node_sharded", "cross_node_sharded: tell", ("ratio",), 0.4, True),
    Goal("cross_node_sharded", "cross_node_sharded: ask", ("ask_ratio",), 1.2, False),
    Goal("rebalance", "rebalance", ("meets_goal",), 1.0, True, "check"),
    Goal("replicated_write", "replicated_write", ("ratio",), 2.0, False),
    Goal(
        "failover_time",
        "failover_time: fast",
        ("ours", "fast_profile", "best_s"),
        2.0,
        False,
        "s",
    ),
    Goal(
        "failover_time",
        "failover_time: default",
        ("ours", "default_profile", "best_s"),
        10.0,
        False,
        "s",
    ),
)

_MET = "#2e7d32"
_MISSED = "#c62828"


@dataclass(frozen=True)
class Row:
    """One row of the chart: the margin over the goal (1 = the goal) and its caption."""

    label: str
    margin: float
    met: bool
    caption: str


def read_records(lines: Iterable[str]) -> list[dict[str, Any]]:
    """The scenario records among ``lines`` (JSON objects with a ``scenario`` key)."""
    records: list[dict[str, Any]] = []
    for line in lines:
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and "scenario" in record:
            records.append(record)
    return records


def _lookup(record: dict[str, Any], path: Sequence[str]) -> Any:
    value: Any = record
    for key in path:
        if not isinstance(value, dict) or value.get(key) is None:
            return None
        value = value[key]
    return value


def _number(value: float, unit: str, *, exact: bool = False) -> str:
    """``value`` for a caption: a measured figure rounded, a bound (``exact``) as it is."""
    if unit == "s":
        return f"{value * 1000:.3g} ms" if value < 0.1 else f"{value:.3g} s"
    if unit == "B":
        return f"{value:,.0f} B"
    return f"{value:g}" if exact else f"{value:.2f}"


def rows(records: Iterable[dict[str, Any]]) -> list[Row]:
    """The chart's rows for ``records``: one per scored figure present, in :data:`GOALS` order."""
    latest = {record["scenario"]: record for record in records}
    result: list[Row] = []
    for goal in GOALS:
        record = latest.get(goal.scenario)
        if record is None:
            continue
        if goal.unit == "check":
            met = bool(record.get("meets_goal"))
            lost = record.get("lost", "?")
            bad = record.get("duplicated_or_reordered", "?")
            caption = f"lost {lost}, duplicated or reordered {bad} (goal: 0)"
            result.append(Row(goal.label, 1.0, met, caption))
            continue
        value = _lookup(record, goal.path)
        if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
            continue
        margin = value / goal.bound if goal.at_least else goal.bound / value
        sign = "≥" if goal.at_least else "≤"
        bound = _number(goal.bound, goal.unit, exact=True)
        caption = f"{_number(value, goal.unit)} (goal {sign} {bound})"
        result.append(Row(goal.label, margin, margin >= 1.0, caption))
    return result


def _footer(records: Sequence[dict[str, Any]]) -> str:
    env = next((r["env"] for r in records if isinstance(r.get("env"), dict)), {})
    parts = []
    if env.get("python"):
        parts.append(f"{env.get('implementation', 'Python')} {env['python']}")
    if env.get("trio"):
        parts.append(f"Trio {env['trio']}")
    if env.get("cpus"):
        parts.append(f"{env['cpus']} CPUs ({env.get('machine', '?')})")
    if env.get("revision"):
        parts.append(f"revision {env['revision']}")
    if any(r.get("quick") for r in records):
        parts.append("quick run (tiny counts)")
    return ", ".join(parts)


def write_chart(records: Sequence[dict[str, Any]], output: Path | str | TextIO) -> None:
    """Draw the chart of ``records`` and write it as SVG to ``output`` (a path or a text file)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    chart_rows = rows(records)
    if not chart_rows:
        raise ValueError("no scored figure in the records")
    style = {
        "svg.hashsalt": "casty_trio-benchmarks",  # fixed ids: the same records, the same bytes
        "svg.fonttype": "none",  # text stays text
        "font.family": "sans-serif",
        "font.size": 10,
    }
    with matplotlib.rc_context(style):
        height = 1.3 + 0.36 * len(chart_rows)
        figure = Figure(figsize=(10, height), facecolor="white")
        axes = figure.add_axes((0.27, 1.0 / height, 0.40, 1 - 1.75 / height))
        positions = list(range(len(chart_rows)))[::-1]  # first row on top
        margins = [row.margin for row in chart_rows]
        low = min(0.5, min(margins) / 1.5)
        high = max(2.0, max(margins) * 1.5)
        axes.set_xscale("log")
        axes.set_xlim(low, high)
        axes.set_ylim(-0.7, len(chart_rows) - 0.3)
        colors = [_MET if row.met else _MISSED for row in chart_rows]
        for y, row, color in zip(positions, chart_rows, colors, strict=True):
            if row.margin == 1.0:
                axes.plot([1.0], [y], marker="o", markersize=7, color=color, zorder=3)
            else:
                axes.barh(y, row.margin - 1.0, left=1.0, height=0.6, color=color, zorder=2)
        axes.axvline(1.0, color="black", linestyle="--", linewidth=1, zorder=4)
        axes.text(1.0, len(chart_rows) - 0.35, "goal", ha="center", va="bottom", fontsize=9)
        decades = range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
        ticks = [m * 10.0**d for d in decades for m in (1, 2, 5) if low <= m * 10.0**d <= high]
        axes.xaxis.set_major_locator(FixedLocator(ticks))
        axes.xaxis.set_minor_locator(NullLocator())
        axes.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}\u00d7"))
        axes.set_yticks(positions, [row.label for row in chart_rows])
        axes.tick_params(axis="y", length=0)
        axes.grid(axis="x", color="#dddddd", zorder=0)
        axes.set_xlabel("margin over the goal (log scale): right of the line meets it")
        for side in ("top", "right"):
            axes.spines[side].set_visible(False)
        captions = axes.twinx()
        captions.set_ylim(axes.get_ylim())
        captions.set_yticks(positions, [row.caption for row in chart_rows])
        captions.tick_params(axis="y", length=0)
        for label, color in zip(captions.get_yticklabels()[::-1], colors[::-1], strict=True):
            label.set_color(color)
        for side in ("top", "right", "left"):
            captions.spines[side].set_visible(False)
        figure.suptitle("casty_trio benchmarks: each scored figure against its goal", y=0.985)
        figure.text(0.01, 0.01, _footer(records), fontsize=8, color="#555555")
        figure.savefig(output, format="svg", metadata={"Date": None})


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "input",
        nargs="?",
        default="-",
        help="JSON lines of benchmarks/run.py ('-' or nothing: standard input)",
    )
    parser.add_argument(
        "-o", "--output", default="benchmarks.svg", help="SVG file to write (default: %(default)s)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    if args.input == "-":
        records = read_records(sys.stdin)
    else:
        with open(args.input, encoding="utf-8") as source:
            records = read_records(source)
    try:
        write_chart(records, Path(args.output))
    except ValueError as exc:
        print(f"chart: {exc}", file=sys.stderr)
        return 1
    print(f"chart: {len(rows(records))} rows written to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
