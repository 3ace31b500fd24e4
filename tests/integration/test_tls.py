"""TlsConfig, and WebSocketTransport over mutual TLS (``wss://``) with a throwaway CA."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import trio
import trustme

from casty_trio import ConfigError, NodeAddress
from casty_trio.remote._transport import Connection, ConnectionClosed, TransportError
from casty_trio.remote._websocket import WebSocketTransport
from casty_trio.tls import TlsConfig
from tests.integration.conftest import CertFiles, write_identity

LOCAL = "127.0.0.1"
BOUND = 10  # seconds: generous upper bound for any network wait on loopback


def config(files: CertFiles) -> TlsConfig:
    return TlsConfig.from_paths(certfile=files.certfile, keyfile=files.keyfile, cafile=files.cafile)


async def echo(conn: Connection) -> None:
    while True:
        try:
            frame = await conn.receive()
        except ConnectionClosed:
            return
        await conn.send(frame)


async def serve_tls(nursery: trio.Nursery, tls: TlsConfig) -> tuple[NodeAddress, list[str]]:
    """An echo server over TLS; returns its address and the peers its handler saw."""
    handled: list[str] = []

    async def handler(conn: Connection) -> None:
        handled.append(conn.peer)
        await echo(conn)

    address: NodeAddress = await nursery.start(WebSocketTransport(LOCAL, 0, tls=tls).serve, handler)
    return address, handled


# -- TlsConfig ---------------------------------------------------------------------------------


def test_from_paths_builds_mutual_tls_contexts(node_files: CertFiles) -> None:
    tls = config(node_files)
    assert tls.server_context.verify_mode == ssl.CERT_REQUIRED
    assert tls.client_context.verify_mode == ssl.CERT_REQUIRED
    assert tls.client_context.check_hostname is True
    for context in (tls.server_context, tls.client_context):
        assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
        assert len(context.get_ca_certs()) == 1


def test_from_paths_accepts_str_paths(node_files: CertFiles) -> None:
    tls = TlsConfig.from_paths(
        certfile=str(node_files.certfile),
        keyfile=str(node_files.keyfile),
        cafile=str(node_files.cafile),
    )
    assert isinstance(tls.server_context, ssl.SSLContext)


@pytest.mark.parametrize("which", ["certfile", "keyfile", "cafile"])
def test_a_missing_file_is_named(node_files: CertFiles, tmp_path: Path, which: str) -> None:
    missing = tmp_path / f"missing-{which}.pem"
    paths = {
        "certfile": node_files.certfile,
        "keyfile": node_files.keyfile,
        "cafile": node_files.cafile,
        which: missing,
    }
    with pytest.raises(ConfigError, match=which) as info:
        TlsConfig.from_paths(**paths)
    assert str(missing) in str(info.value)


@pytest.mark.parametrize("which", ["certfile", "keyfile", "cafile"])
def test_a_file_that_is_not_pem_is_named(node_files: CertFiles, tmp_path: Path, which: str) -> None:
    garbage = tmp_path / f"garbage-{which}.pem"
    garbage.write_text("this is not PEM\n")
    paths = {
        "certfile": node_files.certfile,
        "keyfile": node_files.keyfile,
        "cafile": node_files.cafile,
        which: garbage,
    }
    with pytest.raises(ConfigError, match=which) as info:
        TlsConfig.from_paths(**paths)
    assert str(garbage) in str(info.value)


def test_a_corrupt_certificate_is_named(node_files: CertFiles, tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.pem"
    corrupt.write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    with pytest.raises(ConfigError, match=r"corrupt\.pem"):
        TlsConfig.from_paths(certfile=corrupt, keyfile=node_files.keyfile, cafile=node_files.cafile)
    with pytest.raises(ConfigError, match=r"cafile .*corrupt\.pem"):
        TlsConfig.from_paths(
            certfile=node_files.certfile, keyfile=node_files.keyfile, cafile=corrupt
        )


def test_a_key_that_does_not_match_the_certificate_is_named(
    ca: trustme.CA, node_files: CertFiles, tmp_path: Path
) -> None:
    other = write_identity(ca, tmp_path / "other", "127.0.0.1")
    with pytest.raises(ConfigError, match="not a valid PEM certificate with its matching") as info:
        TlsConfig.from_paths(
            certfile=node_files.certfile, keyfile=other.keyfile, cafile=node_files.cafile
        )
    assert str(other.keyfile) in str(info.value)
    assert isinstance(info.value, ValueError)


def test_contexts_are_type_checked() -> None:
    context = ssl.create_default_context()
    with pytest.raises(TypeError):
        TlsConfig(server_context="server.pem", client_context=context)  # type: ignore[arg-type]
    tls = TlsConfig(server_context=context, client_context=context)
    assert tls == TlsConfig(server_context=context, client_context=context)


# -- wss:// with mutual TLS --------------------------------------------------------------------


async def test_frames_travel_over_mutual_tls(nursery: trio.Nursery, node_files: CertFiles) -> None:
    tls = config(node_files)
    frames = [b"", b"secret", b"\xff" * 300_000]
    with trio.fail_after(BOUND):
        address, handled = await serve_tls(nursery, tls)
        async with WebSocketTransport(LOCAL, 0, tls=tls).open_connection(address) as conn:
            for frame in frames:
                await conn.send(frame)
                assert await conn.receive() == frame
    assert len(handled) == 1


async def test_tls_dial_by_host_name(nursery: trio.Nursery, node_files: CertFiles) -> None:
    tls = config(node_files)
    with trio.fail_after(BOUND):
        address, _ = await serve_tls(nursery, tls)
        named = NodeAddress("localhost", address.port)
        async with WebSocketTransport(LOCAL, 0, tls=tls).open_connection(named) as conn:
            await conn.send(b"by name")
            assert await conn.receive() == b"by name"


async def test_client_without_a_certificate_is_refused(
    nursery: trio.Nursery, node_files: CertFiles, caplog: pytest.LogCaptureFixture
) -> None:
    tls = config(node_files)
    anonymous = ssl.create_default_context(cafile=str(node_files.cafile))  # trusts, no identity
    client = WebSocketTransport(LOCAL, 0, tls=TlsConfig(tls.server_context, anonymous))
    with trio.fail_after(BOUND):
        address, handled = await serve_tls(nursery, tls)
        with pytest.raises(TransportError) as info:
            async with client.open_connection(address):
                pass  # pragma: no cover
        # The listener keeps serving properly configured nodes.
        async with WebSocketTransport(LOCAL, 0, tls=tls).open_connection(address) as conn:
            await conn.send(b"still serving")
            assert await conn.receive() == b"still serving"
    assert str(address) in str(info.value)
    assert len(handled) == 1  # only the good client reached the handler
    assert "refused a connection" in caplog.text


async def test_client_trusting_another_ca_is_refused(
    nursery: trio.Nursery, node_files: CertFiles, other_ca: trustme.CA, tmp_path: Path
) -> None:
    stranger = config(write_identity(other_ca, tmp_path / "stranger", "127.0.0.1"))
    with trio.fail_after(BOUND):
        address, handled = await serve_tls(nursery, config(node_files))
        with pytest.raises(TransportError, match="TLS handshake") as info:
            async with WebSocketTransport(LOCAL, 0, tls=stranger).open_connection(address):
                pass  # pragma: no cover
    assert str(address) in str(info.value)
    assert "certificate verify failed" in str(info.value)
    assert handled == []


async def test_client_certificate_from_another_ca_is_refused(
    nursery: trio.Nursery, node_files: CertFiles, other_ca: trustme.CA, tmp_path: Path
) -> None:
    # The client trusts the cluster CA (so it accepts the server) but presents a certificate
    # the server's CA did not sign.
    forged = write_identity(other_ca, tmp_path / "forged", "127.0.0.1")
    tls = config(node_files)
    impostor = ssl.create_default_context(cafile=str(node_files.cafile))
    impostor.load_cert_chain(forged.certfile, forged.keyfile)
    client = WebSocketTransport(LOCAL, 0, tls=TlsConfig(tls.server_context, impostor))
    with trio.fail_after(BOUND):
        address, handled = await serve_tls(nursery, tls)
        with pytest.raises(TransportError) as info:
            async with client.open_connection(address):
                pass  # pragma: no cover
    assert str(address) in str(info.value)
    assert handled == []


async def test_server_certificate_for_another_host_is_refused(
    nursery: trio.Nursery, ca: trustme.CA, node_files: CertFiles, tmp_path: Path
) -> None:
    elsewhere = config(write_identity(ca, tmp_path / "elsewhere", "node-7.example"))
    with trio.fail_after(BOUND):
        address, _ = await serve_tls(nursery, elsewhere)
        with pytest.raises(TransportError, match="TLS handshake") as info:
            async with WebSocketTransport(LOCAL, 0, tls=config(node_files)).open_connection(
                address
            ):
                pass  # pragma: no cover
    assert "127.0.0.1" in str(info.value)


async def test_plain_client_cannot_talk_to_a_tls_server(
    nursery: trio.Nursery, node_files: CertFiles
) -> None:
    with trio.fail_after(BOUND):
        address, handled = await serve_tls(nursery, config(node_files))
        with pytest.raises(TransportError, match=str(address)):
            async with WebSocketTransport(LOCAL, 0).open_connection(address):
                pass  # pragma: no cover
    assert handled == []


async def test_tls_client_cannot_talk_to_a_plain_server(
    nursery: trio.Nursery, node_files: CertFiles
) -> None:
    with trio.fail_after(BOUND):
        address = await nursery.start(WebSocketTransport(LOCAL, 0).serve, echo)
        client = WebSocketTransport(LOCAL, 0, tls=config(node_files))
        with pytest.raises(TransportError, match="TLS handshake"):
            async with client.open_connection(address):
                pass  # pragma: no cover
