"""benchmarks/chart.py: the runner's JSON lines in, one SVG chart out, the same bytes each time."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def _import(name: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # the scripts import their siblings
    return importlib.import_module(name)


def _record(scenario: str, **fields: Any) -> str:
    record = {"ours": {}, "baseline": {}, "goal": "...", "meets_goal": True, **fields}
    return json.dumps({"scenario": scenario, **record})


LINES = [
    _record("local_tell", ratio=0.8, meets_goal=False, env={"python": "3.11.7", "cpus": 2}),
    "[bench] local_tell: ratio=0.8 MISSES goal (ratio >= 1.0) in 12.0s",  # stderr mixed in
    _record("remote_ask", ratio=0.6),
    _record("failover_time", ratio=1.3, ours={"fast_profile": {"best_s": 1.0}}),
]


def test_rows_are_margins_over_the_goal(monkeypatch: pytest.MonkeyPatch) -> None:
    chart = _import("chart", monkeypatch)

    rows = chart.rows(chart.read_records(LINES))

    assert [(r.label, round(r.margin, 3), r.met) for r in rows] == [
        ("local_tell", 0.8, False),  # at least 1.0: 0.8 / 1.0
        ("remote_ask", 2.0, True),  # at most 1.2: 1.2 / 0.6
        ("failover_time: fast", 2.0, True),  # at most 2 s: 2.0 / 1.0
    ]  # the default profile is absent from the record, so it has no row


def test_chart_writes_the_same_svg_from_json_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("matplotlib")
    chart = _import("chart", monkeypatch)
    source = tmp_path / "results.jsonl"
    source.write_text("\n".join(LINES) + "\n", encoding="utf-8")
    first, second = tmp_path / "first.svg", tmp_path / "second.svg"

    assert chart.main([str(source), "-o", str(first)]) == 0
    assert chart.main([str(source), "-o", str(second)]) == 0

    svg = first.read_text(encoding="utf-8")
    assert svg.startswith("<?xml") and "<svg" in svg
    assert "remote_ask" in svg and "failover_time: fast" in svg
    assert "<dc:date>" not in svg
    assert first.read_bytes() == second.read_bytes()


def test_chart_refuses_records_without_a_scored_figure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chart = _import("chart", monkeypatch)
    source = tmp_path / "results.jsonl"
    source.write_text("not a record\n", encoding="utf-8")

    assert chart.main([str(source), "-o", str(tmp_path / "chart.svg")]) == 1
    assert not (tmp_path / "chart.svg").exists()


@pytest.mark.parametrize(
    ("label", "module", "constant"),
    [
        ("local_tell", "local_tell", "GOAL"),
        ("local_ask", "local_ask", "GOAL"),
        ("many_actors: spawn", "many_actors", "SPAWN_GOAL"),
        ("many_actors: memory", "many_actors", "BYTES_GOAL"),
        ("remote_tell", "remote_tell", "GOAL"),
        ("remote_ask", "remote_ask", "GOAL"),
        ("cluster_formation: 2 nodes", "cluster_formation", "GOAL_S"),
        ("failure_detection: fast", "failure_detection", "GOAL_S"),
        ("sharded_tell", "sharded_tell", "GOAL"),
        ("sharded_ask", "sharded_ask", "GOAL"),
        ("cross_node_sharded: tell", "cross_node_sharded", "TELL_GOAL"),
        ("cross_node_sharded: ask", "cross_node_sharded", "ASK_GOAL"),
        ("replicated_write", "replicated_write", "GOAL"),
        ("failover_time: fast", "failover_time", "FAST_GOAL_S"),
        ("failover_time: default", "failover_time", "DEFAULT_GOAL_S"),
    ],
)
def test_chart_bounds_are_the_scenarios_goals(
    label: str, module: str, constant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    chart = _import("chart", monkeypatch)
    goal = next(g for g in chart.GOALS if g.label == label)

    assert goal.bound == getattr(_import(module, monkeypatch), constant)
