"""Smoke test for benchmarks/: every scenario runs with tiny counts and returns a full record.

No timing assertions: benchmark figures are reported by ``benchmarks/run.py``, not tested here.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
SCENARIOS = [
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
]
REQUIRED = {"scenario", "ours", "baseline", "ratio", "goal", "meets_goal"}


@pytest.mark.parametrize("name", SCENARIOS)
def test_scenario_quick_run_returns_a_record(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # the scripts import their sibling `_common`
    module = importlib.import_module(name)

    record = module.run(quick=True)

    assert record.keys() >= REQUIRED
    assert record["scenario"] == name
    assert isinstance(record["ours"], dict) and record["ours"]
    assert isinstance(record["baseline"], dict) and record["baseline"]
    assert isinstance(record["ratio"], float) and record["ratio"] > 0
    assert isinstance(record["goal"], str) and record["goal"]
    assert isinstance(record["meets_goal"], bool)
    assert record["quick"] is True
    json.dumps(record, sort_keys=True)  # what emit() prints must be valid JSON
    if name == "many_actors":
        assert record.keys() >= {"spawn_ratio", "bytes_per_actor", "msgs_per_s"}
    if name == "remote_tell":
        assert record["ours"]["messages_out"] == record["n"] + 1  # the ticks and the flush
        assert record["ours"]["frames_out"] >= 1
    if name == "remote_ask":
        assert record["baseline"]["raw_tcp"]["p50_us"] > 0
    if name == "cluster_formation":
        for n in (2, 3):
            assert record["ours"][f"nodes_{n}"]["best_s"] > 0
            assert record["baseline"][f"nodes_{n}"]["best_s"] > 0
    if name == "failure_detection":
        assert record["ours"]["fast_profile"]["best_s"] > 0
        assert record["ours"]["default_profile"] is None  # skipped in quick mode
    if name == "sharded_tell":
        assert record["ours"]["fast_path_entities"] == record["entities"]
        assert record["ours"]["cold"]["msgs_per_s"] > 0
    if name == "cross_node_sharded":
        assert record["a_hosted_shards"] == 0  # every entity lives in the other process
        assert record["ask_ratio"] > 0
        assert record["floor_ratio"] > 0 and record["of_floor"] > 0
        assert record["baseline"]["floor"]["msgs_per_s"] > 0
    if name == "replicated_write":
        assert record["ours"]["concurrent"]["writes_per_s"] > 0
        assert record["baseline"]["unreplicated_write"]["p50_us"] > 0
    if name == "failover_time":
        assert record["ours"]["fast_profile"]["best_s"] > 0
        assert record["ours"]["default_profile"] is None  # skipped in quick mode
    if name == "rebalance":
        assert record["lost"] == 0
        run = record["ours"]["runs"][0]
        assert run["shards_after"][3] >= run["share_target"]
