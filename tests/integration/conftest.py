"""Fixtures for integration tests: real loopback sockets and a throwaway certificate authority."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest
import trustme


@attrs.frozen
class CertFiles:
    """PEM files of one node's identity and the CA it trusts."""

    certfile: Path
    keyfile: Path
    cafile: Path


def write_identity(ca: trustme.CA, directory: Path, *identities: str) -> CertFiles:
    """Issue a certificate for ``identities`` from ``ca`` and write it, its key and the CA."""
    directory.mkdir(parents=True, exist_ok=True)
    cert = ca.issue_cert(*identities)
    files = CertFiles(directory / "node.pem", directory / "node.key", directory / "ca.pem")
    cert.cert_chain_pems[0].write_to_path(files.certfile)
    cert.private_key_pem.write_to_path(files.keyfile)
    ca.cert_pem.write_to_path(files.cafile)
    return files


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    """The cluster's private CA."""
    return trustme.CA()


@pytest.fixture(scope="session")
def other_ca() -> trustme.CA:
    """A CA the cluster does not trust."""
    return trustme.CA()


@pytest.fixture
def node_files(ca: trustme.CA, tmp_path: Path) -> CertFiles:
    """A node identity for 127.0.0.1 and localhost signed by ``ca``."""
    return write_identity(ca, tmp_path / "node", "127.0.0.1", "localhost")
