"""Every example runs, under the virtual clock, and does what its docstring says."""

from __future__ import annotations

import importlib.util
import runpy
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"examples_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # attrs classes need their module registered
    spec.loader.exec_module(module)
    return module


def test_every_example_is_covered() -> None:
    assert {p.stem for p in EXAMPLES.glob("*.py")} == {
        "bank_account",
        "event_sourced_account",
        "sharded_counters",
        "supervision_tree",
        "timers_and_stash",
    }


async def test_bank_account(capsys: pytest.CaptureFixture[str]) -> None:
    assert await load("bank_account").main() == 42
    assert "balance of /acc-1: 42" in capsys.readouterr().out


async def test_event_sourced_account(capsys: pytest.CaptureFixture[str]) -> None:
    # real clock: SQLite works in a worker thread, which the virtual clock would jump over
    assert await load("event_sourced_account").main() == [45, 60]
    assert "balance of acc-1: 60" in capsys.readouterr().out


async def test_supervision_tree(autojump_clock: Any) -> None:
    report = await load("supervision_tree").main()
    done = [line for line in report if " did " in line]
    # "" was resumed (state kept), "crash" restarted w1 (job counter reset by setup).
    assert "w1 did 'a' (job #1 since start)" in done
    assert "w1 did 'b' (job #2 since start)" in done
    assert "w1 did 'c' (job #1 since start)" in done
    assert "w1 did 'd' (job #2 since start)" in done
    assert sorted(line for line in report if line.startswith("supervisor saw")) == [
        "supervisor saw /supervisor/w1 stop",
        "supervisor saw /supervisor/w2 stop",
    ]


async def test_timers_and_stash(autojump_clock: Any, capsys: pytest.CaptureFixture[str]) -> None:
    answers = await load("timers_and_stash").main()
    assert answers == ["session-1 answered 'first'", "session-1 answered 'second'"]
    assert "3 heartbeats" in capsys.readouterr().out


async def test_sharded_counters(autojump_clock: Any, capsys: pytest.CaptureFixture[str]) -> None:
    totals = await load("sharded_counters").main()
    assert totals == {f"page-{k}": 3 * k + 3 for k in range(12)}
    out = capsys.readouterr().out
    assert "node-2 left" in out and "totals:" in out


def test_sharded_counters_run_as_a_script(capsys: pytest.CaptureFixture[str]) -> None:
    # As ``python examples/sharded_counters.py``: its messages' module is then __main__.
    runpy.run_path(str(EXAMPLES / "sharded_counters.py"), run_name="__main__")
    out = capsys.readouterr().out
    totals = {f"'page-{k}': {3 * k + 3}" for k in range(12)}
    assert all(total in out for total in totals), out
