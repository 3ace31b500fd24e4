"""The README's first command: ``python -m casty_trio demo``."""

from __future__ import annotations

import subprocess
import sys

import pytest

from casty_trio.cli import main
from casty_trio.cli._demo import run_demo


async def test_demo_keeps_every_confirmed_write_through_a_crash() -> None:
    report = await run_demo(accounts=4, operations=2_000, seed=3)
    assert report.consistent
    assert report.operations == 2_000
    assert sum(row.restarts for row in report.rows) == 1
    crashed = next(row for row in report.rows if row.account_id == report.crashed)
    assert crashed.restarts == 1
    assert sum(row.deposits + row.withdrawals + row.rejected for row in report.rows) == 2_000
    assert any("restarting" in line for line in report.log)
    table = report.render()
    assert "every balance matches" in table
    assert report.crashed in table


def test_cli_demo_prints_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--operations", "500", "--accounts", "3"]) == 0
    out = capsys.readouterr().out
    assert "account" in out and "restarts" in out and "acc-3" in out


def test_cli_without_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "demo" in capsys.readouterr().out


def test_cli_rejects_bad_arguments() -> None:
    with pytest.raises(SystemExit):
        main(["demo", "--accounts", "0"])


def test_python_dash_m_runs_the_demo() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "casty_trio", "demo", "--operations", "200"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "every balance matches" in done.stdout
