"""``casty-trio node`` and ``casty-trio status`` as real OS processes on loopback.

Two ``python -m casty_trio node --config ...`` processes form a cluster (each runs an ``--app``
that meets the other at a barrier); ``status`` against one of them shows both up; SIGTERM makes
one leave gracefully (exit status 0) and the other's table no longer lists it. Every wait is
bounded and every process is killed in a ``finally``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import attrs
import trio

ROOT = Path(__file__).resolve().parents[2]
LOCAL = "127.0.0.1"
BOUND = 15.0  # seconds for any start-up, convergence or exit (process start included)

APP = """
import sys

async def main(system):
    await system.barrier("both-up", 2, timeout=30)
    print("app: passed the barrier", flush=True)
"""


def env() -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }


async def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    listeners = await trio.open_tcp_listeners(0, host=LOCAL)
    port: int = listeners[0].socket.getsockname()[1]
    for listener in listeners:
        await listener.aclose()
    return port


@attrs.define
class NodeProcess:
    process: trio.Process
    lines: list[str] = attrs.field(factory=list)
    eof: bool = False

    def saw(self, text: str) -> bool:
        return any(text in line for line in self.lines)


async def read_lines(node: NodeProcess) -> None:
    assert node.process.stdout is not None
    buffer = b""
    while chunk := await node.process.stdout.receive_some(65536):
        buffer += chunk
        *complete, buffer = buffer.split(b"\n")
        node.lines.extend(line.decode() for line in complete)
    node.eof = True


async def until(condition: Callable[[], bool], what: str, *nodes: NodeProcess) -> None:
    try:
        with trio.fail_after(BOUND):
            while not condition():
                await trio.sleep(0.05)
    except trio.TooSlowError:
        printed = [n.lines for n in nodes]
        raise AssertionError(f"not within {BOUND}s: {what}; printed {printed}") from None


@asynccontextmanager
async def node_process(
    nursery: trio.Nursery, workdir: Path, node_id: str, port: int, seed: int
) -> AsyncIterator[NodeProcess]:
    config = workdir / f"{node_id}.toml"
    config.write_text(
        textwrap.dedent(
            f"""
            [system]
            name = "cli-test"
            [cluster]
            host = "{LOCAL}"
            port = {port}
            node_id = "{node_id}"
            seed_nodes = ["{LOCAL}:{seed}"]
            roles = ["worker"]
            """
        )
    )
    cmd = [sys.executable, "-m", "casty_trio", "node", "--config", str(config)]
    cmd += ["--app", "cli_test_app:main"]
    process = await trio.lowlevel.open_process(cmd, stdout=subprocess.PIPE, cwd=workdir, env=env())
    node = NodeProcess(process)
    try:
        nursery.start_soon(read_lines, node)
        yield node
    finally:
        with trio.CancelScope(shield=True):
            if process.returncode is None:
                process.kill()
            await process.wait()


async def status(*args: str) -> subprocess.CompletedProcess[bytes]:
    with trio.fail_after(BOUND):
        return await trio.run_process(
            [sys.executable, "-m", "casty_trio", "status", *args],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            cwd=ROOT,
            env=env(),
        )


async def table_of(port: int) -> str:
    result = await status(f"{LOCAL}:{port}", "--system", "cli-test")
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()


def up_rows(table: str) -> set[str]:
    """The node ids listed ``up`` in a status table."""
    rows = [line.split() for line in table.splitlines()[2:]]
    return {row[1] for row in rows if "up" in row}


async def test_two_node_processes_status_and_a_graceful_sigterm(tmp_path: Path) -> None:
    (tmp_path / "cli_test_app.py").write_text(APP)
    port_a, port_b = await free_port(), await free_port()
    async with trio.open_nursery() as nursery:
        async with (
            node_process(nursery, tmp_path, "alpha", port_a, port_a) as a,
            node_process(nursery, tmp_path, "beta", port_b, port_a) as b,
        ):
            await until(lambda: a.saw("alpha up at") and b.saw("beta up at"), "both nodes up", a, b)
            assert a.saw(f"up at {LOCAL}:{port_a}") and b.saw(f"up at {LOCAL}:{port_b}")
            # the apps met at a cluster barrier across the two processes
            await until(
                lambda: a.saw("app: passed the barrier") and b.saw("app: passed the barrier"),
                "both apps pass the barrier",
                a,
                b,
            )

            tables: list[str] = []

            async def both_up_in_table() -> bool:
                tables.append(await table_of(port_a))
                return up_rows(tables[-1]) == {"alpha", "beta"}

            with trio.fail_after(BOUND):
                while not await both_up_in_table():
                    await trio.sleep(0.1)
            table = tables[-1]
            assert f"cluster 'cli-test' as seen by {LOCAL}:{port_a}: 2 members, 2 up" in table
            header, *rows = table.splitlines()[1:]
            assert header.split() == [
                "ADDRESS",
                "NODE",
                "ID",
                "STATUS",
                "ROLES",
                "REACHABILITY",
                "LEADER",
            ]
            assert any(
                row.startswith(f"{LOCAL}:{port_a}") and "alpha (this node)" in row for row in rows
            )
            assert all("worker" in row and " reachable" in row for row in rows)
            assert sum(row.rstrip().endswith("*") for row in rows) == 1  # one leader

            # a wrong system name is a clear error, not a hang
            wrong = await status(f"{LOCAL}:{port_a}", "--system", "other", "--timeout", "5")
            assert wrong.returncode == 1
            assert b"system" in wrong.stderr and b"cli-test" in wrong.stderr

            # SIGTERM: beta leaves gracefully and exits 0; alpha sees it gone
            b.process.send_signal(signal.SIGTERM)
            with trio.fail_after(BOUND):
                assert await b.process.wait() == 0
            await until(lambda: b.eof, "beta's output ends", b)
            assert b.saw("beta at") and b.lines[-1].endswith("left the cluster")
            with trio.fail_after(BOUND):
                while up_rows(table := await table_of(port_a)) != {"alpha"}:
                    await trio.sleep(0.1)
            assert "beta" not in table  # removed members are not listed

            a.process.send_signal(signal.SIGINT)
            with trio.fail_after(BOUND):
                assert await a.process.wait() == 0
        nursery.cancel_scope.cancel()


async def test_status_of_a_port_where_nothing_listens_fails_clearly() -> None:
    port = await free_port()
    result = await status(f"{LOCAL}:{port}", "--timeout", "5")
    assert result.returncode == 1
    err = result.stderr.decode()
    assert err.startswith("casty-trio status: error:")
    assert f"{LOCAL}:{port}" in err and "refused" in err.lower()
