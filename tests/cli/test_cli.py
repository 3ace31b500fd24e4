"""The ``node`` and ``status`` commands without processes: parsing, formatting, app loading."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from casty_trio import NodeAddress
from casty_trio.cli import main
from casty_trio.cli._main import _build_parser
from casty_trio.cli._node import AppError, load_app
from casty_trio.cli._status import StatusRow, format_table, status_rows, summary
from casty_trio.cluster import Gossip, Member, MemberStatus, UniqueAddress
from casty_trio.cluster._membership import (
    join,
    leader_actions,
    mark_unreachable,
    merge,
    seen_by,
)
from casty_trio.cluster._wire import NodeStatus, gossip_to_wire, unique_address_to_wire

A = UniqueAddress(NodeAddress("10.0.0.1", 25520), 1)
B = UniqueAddress(NodeAddress("10.0.0.2", 25520), 2)
C = UniqueAddress(NodeAddress("::1", 25521), 3)


def three_members() -> Gossip:
    """A up (leader), B up and unreachable from A, C joining."""
    g = leader_actions(join(Gossip(), Member(A, "alpha", roles={"web", "db"}), by=A), A)
    g = join(g, Member(B, "beta"), by=A)
    g = seen_by(merge(g, seen_by(g, B)), A)
    g = leader_actions(g, A)
    g = join(g, Member(C, "gamma"), by=A)
    return mark_unreachable(g, A, B)


# ------------------------------------------------------------------ parsing


def test_status_arguments() -> None:
    args = _build_parser().parse_args(["status", "10.0.0.5:25520"])
    assert args.command == "status"
    assert args.address == NodeAddress("10.0.0.5", 25520)
    assert args.system == "casty-system"
    assert args.timeout == 5.0
    args = _build_parser().parse_args(
        ["status", "[::1]:7000", "--system", "shop", "--timeout", "0.5"]
    )
    assert (args.address, args.system, args.timeout) == (NodeAddress("::1", 7000), "shop", 0.5)


@pytest.mark.parametrize(
    "argv",
    [
        ["status"],
        ["status", "no-port"],
        ["status", "h:0"],
        ["status", "h:1", "--timeout", "0"],
        ["status", "h:1", "--timeout", "-1"],
        ["node"],
        ["node", "--config", "c.toml", "--log-level", "loud"],
    ],
)
def test_bad_arguments_exit_with_status_2(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "usage: casty-trio" in capsys.readouterr().err


def test_node_arguments() -> None:
    args = _build_parser().parse_args(["node", "--config", "casty.toml", "--app", "app:main"])
    assert (args.command, args.config, args.app, args.log_level) == (
        "node",
        "casty.toml",
        "app:main",
        "warning",
    )
    assert _build_parser().parse_args(["node", "--config", "c.toml"]).app is None


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    out = capsys.readouterr().out
    assert "status" in out and "node" in out and "demo" in out


def test_node_with_a_missing_config_fails_clearly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["node", "--config", str(tmp_path / "absent.toml")]) == 2
    assert "casty-trio node: error:" in capsys.readouterr().err


def test_node_without_a_cluster_section_fails_clearly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "casty.toml"
    path.write_text('[system]\nname = "shop"\n')
    assert main(["node", "--config", str(path)]) == 2
    assert "[cluster]" in capsys.readouterr().err


def test_node_with_a_bad_app_fails_clearly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "casty.toml"
    path.write_text("[cluster]\nport = 25520\n")
    assert main(["node", "--config", str(path), "--app", "no_such_module_xyz:main"]) == 2
    assert "cannot import 'no_such_module_xyz'" in capsys.readouterr().err


# ------------------------------------------------------------------ --app


def test_load_app_finds_a_function_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "my_cli_app.py").write_text(
        textwrap.dedent(
            """
            class Service:
                @staticmethod
                async def start(system):
                    return system
            async def main(system):
                return system
            NOT_CALLABLE = 3
            """
        )
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    monkeypatch.delitem(sys.modules, "my_cli_app", raising=False)
    assert load_app("my_cli_app:main").__name__ == "main"
    assert load_app("my_cli_app:Service.start").__name__ == "start"
    with pytest.raises(AppError, match="not callable"):
        load_app("my_cli_app:NOT_CALLABLE")
    with pytest.raises(AppError, match="no attribute 'absent'"):
        load_app("my_cli_app:absent")


@pytest.mark.parametrize("spec", ["", "module", ":main", "module:"])
def test_load_app_wants_module_colon_function(spec: str) -> None:
    with pytest.raises(AppError, match="module:function"):
        load_app(spec)


# ------------------------------------------------------------------ the table


def test_status_rows_show_status_roles_reachability_and_leader() -> None:
    rows = status_rows(three_members(), me=C)
    assert [r.cells() for r in rows] == [
        ("10.0.0.1:25520", "alpha", "up", "db,web", "reachable", "*"),
        ("10.0.0.2:25520", "beta", "up", "-", "unreachable", ""),
        ("[::1]:25521", "gamma (this node)", "joining", "-", "reachable", ""),
    ]
    # The table is the queried node's view: a node never counts itself unreachable.
    assert [r.reachability for r in status_rows(three_members(), me=B)][1] == "reachable"


def test_removed_members_are_not_listed() -> None:
    g = three_members()
    others = [m for m in g.members.values() if m.unique != C]
    g = Gossip([*others, Member(C, "gamma", MemberStatus.removed)])
    assert [r.node_id for r in status_rows(g)] == ["alpha", "beta"]


def test_format_table_aligns_columns() -> None:
    table = format_table(status_rows(three_members(), me=A))
    assert table == (
        "ADDRESS         NODE ID            STATUS   ROLES   REACHABILITY  LEADER\n"
        "10.0.0.1:25520  alpha (this node)  up       db,web  reachable     *\n"
        "10.0.0.2:25520  beta               up       -       unreachable\n"
        "[::1]:25521     gamma              joining  -       reachable\n"
    )


def test_format_table_of_no_member_is_the_header() -> None:
    assert format_table([]) == "ADDRESS  NODE ID  STATUS  ROLES  REACHABILITY  LEADER\n"


def test_summary_line() -> None:
    status = NodeStatus(unique_address_to_wire(A), gossip_to_wire(three_members()))
    assert summary(status, "shop") == (
        "cluster 'shop' as seen by 10.0.0.1:25520: 3 members, 2 up\n"
    )


def test_status_row_marks() -> None:
    row = StatusRow("h:1", "n", "up", "-", "reachable", leader=False, is_self=False)
    assert row.cells()[-1] == "" and row.cells()[1] == "n"
