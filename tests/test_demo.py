"""The README's first command: ``python -m casty_trio demo``.

The demo starts 3 node processes on loopback, writes to replicated accounts under load, SIGKILLs
the node with the most primaries and audits every account; it must lose no confirmed write.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from casty_trio.cli import main
from casty_trio.cli._demo import DemoReport, _NodeRow


def test_python_dash_m_runs_the_demo() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "casty_trio", "demo", "--load", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "every confirmed deposit survived the crash." in out
    assert "killed (SIGKILL)" in out
    lines = {line.split("  ")[0]: line for line in out.splitlines() if line}
    assert lines["writes lost"].split()[2] == "0"
    assert lines["balances short"].split()[2] == "0"
    confirmed = int(lines["writes confirmed"].split()[2].replace(",", ""))
    assert confirmed > 100
    failover = lines["failover time"].split()[2]
    assert float(failover) < 10
    # every node row: the killed one has no primaries after, the others took its shards over
    rows = [line.split() for line in out.splitlines() if line.startswith("node-")]
    assert len(rows) == 3
    killed = [r for r in rows if r[-1] == "(SIGKILL)"]
    assert len(killed) == 1 and killed[0][3] == "-"
    survivors = [r for r in rows if r[-1] != "(SIGKILL)"]
    assert sum(int(r[3]) for r in survivors) == sum(int(r[2]) for r in rows)


def test_report_without_failover_is_not_consistent() -> None:
    report = DemoReport([_NodeRow("node-0", "127.0.0.1:1", 3, None, True)], 1, 1, sent=2)
    assert not report.consistent
    assert "did not complete" in report.render()
    report.failover_s = 1.0
    assert report.consistent
    report.lost.append(("acc-1", 7))
    assert not report.consistent
    assert "WERE LOST" in report.render()


def test_cli_without_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "demo" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["--accounts", "0"], ["--clients", "0"], ["--load", "-1"]])
def test_cli_rejects_bad_arguments(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        main(["demo", *argv])
