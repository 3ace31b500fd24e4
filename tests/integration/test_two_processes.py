"""Two real OS processes on loopback: this test process (A) and an echo node (B).

B runs ``tests/integration/_echo_node.py``: a RemoteActorSystem with an ``/echo`` actor that
answers :class:`Ping` with :class:`Pong` and passes :class:`Forward` notes on to the refs inside
them. A tells and asks it over ``ws://`` and over ``wss://`` with mutual TLS, watches it while B
is killed with SIGKILL, and talks to B again once it restarts on the same port.

Every wait has a generous bound; B is always killed in a ``finally``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import trio
import trustme

from casty_trio import ActorContext, ActorRef, Behavior, Behaviors, NodeAddress, Terminated
from casty_trio.remote import RemoteActorSystem
from casty_trio.tls import TlsConfig
from tests.integration._messages import Forward, Note, Ping, Pong
from tests.integration.conftest import CertFiles, write_identity

ROOT = Path(__file__).resolve().parents[2]
SYSTEM = "two-processes"  # as in _echo_node.py
LOCAL = "127.0.0.1"
BOUND = 10.0  # seconds: generous upper bound for any wait on loopback (process start included)


@attrs.frozen
class EchoNode:
    """Process B, and the address its RemoteActorSystem listens at."""

    process: trio.Process
    address: NodeAddress


@asynccontextmanager
async def echo_node(*, port: int = 0, tls_dir: Path | None = None) -> AsyncIterator[EchoNode]:
    """Start process B, wait until it listens, and always kill it on the way out."""
    cmd = [sys.executable, "-m", "tests.integration._echo_node", "--port", str(port)]
    if tls_dir is not None:
        cmd += ["--tls", str(tls_dir)]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    process = await trio.lowlevel.open_process(
        cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT, env=env
    )
    try:
        assert process.stdout is not None
        line = b""
        with trio.fail_after(BOUND):
            while not line.endswith(b"\n"):
                chunk = await process.stdout.receive_some(4096)
                assert chunk, f"echo node exited before it was ready (status {process.poll()})"
                line += chunk
        info = json.loads(line)
        assert info["pid"] == process.pid
        yield EchoNode(process, NodeAddress(LOCAL, info["port"]))
    finally:
        with trio.CancelScope(shield=True):
            if process.returncode is None:
                process.kill()
            await process.wait()
            for pipe in (process.stdin, process.stdout):
                if pipe is not None:
                    await pipe.aclose()


@attrs.frozen
class WatchIt:
    """Local message: watch ``target``, then confirm."""

    target: ActorRef[Any]
    reply_to: ActorRef[bool]


def forwarding(name: str, out: trio.MemorySendChannel[Any]) -> Behavior[Any]:
    """Passes every message (or Terminated signal) it gets to ``out``, tagged with ``name``."""

    async def receive(ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
        if isinstance(msg, WatchIt):
            ctx.watch(msg.target)
            msg.reply_to.tell(True)
        else:
            out.send_nowait((name, msg))
        return Behaviors.same()

    return Behaviors.receive(receive)


def tls_files(ca: trustme.CA, directory: Path) -> CertFiles:
    return write_identity(ca, directory, LOCAL, "localhost")


def tls_config(files: CertFiles) -> TlsConfig:
    return TlsConfig.from_paths(certfile=files.certfile, keyfile=files.keyfile, cafile=files.cafile)


async def ask_echo(a: RemoteActorSystem, echo: ActorRef[Any], n: int) -> Pong:
    with trio.fail_after(BOUND):
        reply = await a.ask(echo, lambda r: Ping(n, r), timeout=BOUND)
    assert isinstance(reply, Pong)
    return reply


async def check_tell_and_ask(a: RemoteActorSystem, b: NodeAddress) -> None:
    """Asks, refs travelling both ways inside messages, and FIFO order of many tells."""
    echo = a.lookup("/echo", node=b)
    assert echo is not None
    out, received = trio.open_memory_channel[Any](1000)
    first = a.spawn(forwarding("first", out), "first")
    second = a.spawn(forwarding("second", out), "second")

    pong = await ask_echo(a, echo, 1)
    assert pong.n == 1
    assert pong.sender == echo  # B's own ref, arrived inside the reply
    again = await ask_echo(a, pong.sender, 2)  # ... and it works as a ref
    assert again == Pong(2, echo)

    # refs of A's actors nested in a dict travel to B, which tells them
    echo.tell(Forward(Note("hello"), {"one": first, "two": second}))
    with trio.fail_after(BOUND):
        got = {await received.receive(), await received.receive()}
    assert got == {("first", Note("hello")), ("second", Note("hello"))}

    # many tells in a row arrive in order (batched into few frames)
    count = 500
    for i in range(count):
        echo.tell(Forward(Note(str(i)), {"one": first}))
    with trio.fail_after(BOUND):
        texts = [(await received.receive())[1].text for _ in range(count)]
    assert texts == [str(i) for i in range(count)]

    stats = a.link_statistics()[b]
    assert stats.connected
    assert stats.messages_out >= count + 3
    assert 1 <= stats.frames_out < stats.messages_out
    assert stats.frames_in >= 1 and stats.messages_in >= count + 4
    assert stats.decode_errors == 0 and stats.dropped == 0


async def test_tell_and_ask_an_actor_in_another_process() -> None:
    async with (
        echo_node() as b,
        RemoteActorSystem(SYSTEM, host=LOCAL, port=0) as a,
    ):
        await check_tell_and_ask(a, b.address)


async def test_wss_with_mutual_tls(ca: trustme.CA, other_ca: trustme.CA, tmp_path: Path) -> None:
    tls_files(ca, tmp_path / "b")
    async with (
        echo_node(tls_dir=tmp_path / "b") as b,
        RemoteActorSystem(
            SYSTEM, host=LOCAL, port=0, tls=tls_config(tls_files(ca, tmp_path / "a"))
        ) as a,
    ):
        await check_tell_and_ask(a, b.address)

        # a node that trusts B but whose certificate B's CA did not sign gets nowhere (B
        # refuses its client certificate); B keeps serving A
        stranger_files = tls_files(other_ca, tmp_path / "stranger")
        ca.cert_pem.write_to_path(stranger_files.cafile)
        stranger_tls = tls_config(stranger_files)
        async with RemoteActorSystem(SYSTEM, host=LOCAL, port=0, tls=stranger_tls) as stranger:
            echo = stranger.lookup("/echo", node=b.address)
            assert echo is not None
            out, received = trio.open_memory_channel[Any](10)
            probe = stranger.spawn(forwarding("probe", out), "probe")
            echo.tell(Forward(Note("let me in"), {"one": probe}))
            with trio.fail_after(BOUND):
                while stranger.link_statistics()[b.address].dropped < 1:  # declared unreachable
                    await trio.sleep(0.05)
            assert not stranger.link_statistics()[b.address].connected
            assert received.statistics().current_buffer_used == 0
        echo = a.lookup("/echo", node=b.address)
        assert echo is not None
        assert (await ask_echo(a, echo, 3)).n == 3


async def test_killed_peer_is_declared_lost_then_its_restart_answers() -> None:
    async with RemoteActorSystem(SYSTEM, host=LOCAL, port=0) as a:
        out, received = trio.open_memory_channel[Any](10)
        watcher = a.spawn(forwarding("watcher", out), "watcher")

        async with echo_node() as b:
            node = b.address
            echo = a.lookup("/echo", node=node)
            assert echo is not None
            await ask_echo(a, echo, 1)
            with trio.fail_after(BOUND):
                assert await a.ask(watcher, lambda r: WatchIt(echo, r), timeout=BOUND)
            await ask_echo(a, echo, 2)  # FIFO: B has the Watch before it answers this

            b.process.kill()  # SIGKILL: no goodbye, no death notice
            with trio.fail_after(BOUND):
                await b.process.wait()
                name, signal = await received.receive()
            assert (name, signal) == ("watcher", Terminated(echo))
            assert not a.link_statistics()[node].connected

        # B comes back on the same port as a new incarnation; the same ref reaches it
        async with echo_node(port=node.port) as b:
            assert b.address == node
            pong = await ask_echo(a, echo, 3)
            assert pong == Pong(3, echo)
            stats = a.link_statistics()[node]
            assert stats.connected and stats.connections == 2

            # and watching works again: a graceful stop of B ends its actors
            with trio.fail_after(BOUND):
                assert await a.ask(watcher, lambda r: WatchIt(echo, r), timeout=BOUND)
            await ask_echo(a, echo, 4)
            assert b.process.stdin is not None
            await b.process.stdin.aclose()  # B's cue to shut down
            with trio.fail_after(BOUND):
                name, signal = await received.receive()
                await b.process.wait()
            assert (name, signal) == ("watcher", Terminated(echo))
            assert b.process.returncode == 0
