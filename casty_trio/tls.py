"""TLS settings for node-to-node traffic: mutual TLS, where both ends verify each other.

A :class:`TlsConfig` holds two :class:`ssl.SSLContext` objects: the one a node uses to accept
connections and the one it uses to dial. :meth:`TlsConfig.from_paths` builds both from PEM files
for the usual cluster setup — every node has a certificate signed by one private CA, every node
requires the other end to present such a certificate.

Examples:
    >>> tls = TlsConfig.from_paths(                     # doctest: +SKIP
    ...     certfile="node.pem", keyfile="node.key", cafile="cluster-ca.pem"
    ... )
    >>> transport = WebSocketTransport("10.0.0.5", 25520, tls=tls)  # doctest: +SKIP
"""

from __future__ import annotations

import os
import ssl

import attrs

from ._errors import ConfigError

__all__ = ["TlsConfig"]

StrPath = str | os.PathLike[str]


@attrs.frozen
class TlsConfig:
    """The TLS contexts of one node: one to accept connections, one to dial.

    Build it with :meth:`from_paths` for mutual TLS against a private CA, or pass contexts you
    configured yourself (for instance to pin ciphers or use a system trust store). The contexts
    are used as given: with a hand-made ``server_context`` that does not set
    ``verify_mode = ssl.CERT_REQUIRED``, clients are not asked for a certificate.

    The dialing side checks the peer's certificate against the host it dials (the ``host`` of
    the peer's :class:`~casty_trio.NodeAddress`) when ``client_context.check_hostname`` is set, as
    it is with :meth:`from_paths`: each node's certificate must name that host or IP address.

    Args:
        server_context: Context for accepted connections (a server-side context).
        client_context: Context for outgoing connections (a client-side context).

    Raises:
        TypeError: Either argument is not an :class:`ssl.SSLContext`.

    Examples:
        >>> import ssl
        >>> server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        >>> client = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        >>> TlsConfig(server_context=server, client_context=client).client_context is client
        True
    """

    server_context: ssl.SSLContext = attrs.field(
        validator=attrs.validators.instance_of(ssl.SSLContext)
    )
    client_context: ssl.SSLContext = attrs.field(
        validator=attrs.validators.instance_of(ssl.SSLContext)
    )

    @classmethod
    def from_paths(cls, *, certfile: StrPath, keyfile: StrPath, cafile: StrPath) -> TlsConfig:
        """Build mutual-TLS contexts from PEM files.

        Both contexts present ``certfile``/``keyfile`` as this node's identity and trust only
        certificates signed by ``cafile``. The server context *requires* a client certificate
        (``ssl.CERT_REQUIRED``); the client context verifies the server's certificate and its
        host name. TLS 1.2 is the minimum version. Reads the files once, synchronously.

        Args:
            certfile: PEM certificate of this node (may include the intermediate chain).
            keyfile: PEM private key matching ``certfile`` (unencrypted).
            cafile: PEM certificate(s) of the CA that signs every node's certificate.

        Returns:
            A :class:`TlsConfig` with a server and a client context.

        Raises:
            ConfigError: A file is missing, unreadable, not valid PEM, or the key does not
                match the certificate. The message names the offending path.

        Examples:
            >>> tls = TlsConfig.from_paths(                 # doctest: +SKIP
            ...     certfile="certs/node-1.pem",
            ...     keyfile="certs/node-1.key",
            ...     cafile="certs/ca.pem",
            ... )
            >>> tls.server_context.verify_mode == ssl.CERT_REQUIRED  # doctest: +SKIP
            True
        """
        _check_pem("certfile", certfile, b"-----BEGIN CERTIFICATE-----", "certificate")
        _check_pem("keyfile", keyfile, b"PRIVATE KEY-----", "private key")
        _check_pem("cafile", cafile, b"-----BEGIN CERTIFICATE-----", "CA certificate")
        server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server.verify_mode = ssl.CERT_REQUIRED
        client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED + check_hostname
        for context in (server, client):
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            _load_ca(context, cafile)
            _load_identity(context, certfile, keyfile)
        return cls(server_context=server, client_context=client)


def _check_pem(what: str, path: StrPath, marker: bytes, holds: str) -> None:
    """Fail early, naming the file, when it is missing or plainly not the PEM it should be."""
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError as exc:
        raise ConfigError(f"TLS {what} {os.fspath(path)!r} cannot be read: {exc}") from exc
    if marker not in data:
        raise ConfigError(f"TLS {what} {os.fspath(path)!r} is not a PEM file holding a {holds}")


def _load_ca(context: ssl.SSLContext, cafile: StrPath) -> None:
    try:
        context.load_verify_locations(cafile=cafile)
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise ConfigError(
            f"TLS cafile {os.fspath(cafile)!r} holds no usable CA certificate: {exc}"
        ) from exc


def _load_identity(context: ssl.SSLContext, certfile: StrPath, keyfile: StrPath) -> None:
    try:
        context.load_cert_chain(certfile=certfile, keyfile=keyfile)
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise ConfigError(
            f"TLS certfile {os.fspath(certfile)!r} and keyfile {os.fspath(keyfile)!r} are not "
            f"a valid PEM certificate with its matching private key: {exc}"
        ) from exc
