"""How a durable journal stores values: a manifest naming the type plus msgpack bytes.

A *manifest* is ``"<module>:<qualname>"`` of the value's class (``"myapp.bank:Deposited"``,
``"builtins:int"``). Decoding looks the manifest up among the ``types`` given to the journal,
then among classes of modules already present in ``sys.modules``, reading module and class
namespaces directly: stored bytes never cause an import, are never unpickled and never run code.
Naming and resolving follow the same rules as messages on the wire (:mod:`casty_trio._manifest`,
shared with the serialization layer).

This module is the persistence layer's own small codec; it does not use the serialization layer
(the two are independent siblings).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

from .._errors import JournalError
from .._manifest import (
    BUILTIN_TYPES,
    KINDS,
    ManifestError,
    is_user_type,
    manifest_of,
    resolve_loaded,
)

__all__ = ["ValueCodec"]


class ValueCodec:
    """Encodes events and states to ``(manifest, bytes)`` and back. Not a checkpoint.

    Args:
        types: Classes to resolve first (needed for classes defined inside functions, whose
            qualname contains ``<locals>``, and for modules not imported when reading).

    Examples:
        >>> codec = ValueCodec()
        >>> codec.decode(*codec.encode((1, "a")))
        (1, 'a')
    """

    __slots__ = ("_decoders", "_encoder", "_known")

    def __init__(self, types: Iterable[type] = ()) -> None:
        self._known: dict[str, Any] = dict(BUILTIN_TYPES)
        for cls in types:
            if not is_user_type(cls) and cls not in BUILTIN_TYPES.values():
                raise TypeError(f"{cls!r} cannot be stored in a journal: use {KINDS}")
            self._known[manifest_of(cls)] = cls
        self._encoder = msgspec.msgpack.Encoder(enc_hook=_refuse)
        self._decoders: dict[str, msgspec.msgpack.Decoder[Any]] = {}

    def encode(self, value: Any) -> tuple[str, bytes]:
        """``(manifest, msgpack bytes)`` of ``value``.

        Raises:
            JournalError: The value (or something inside it) cannot be encoded.
        """
        cls = type(value)
        manifest = manifest_of(cls)
        if manifest not in self._known and not is_user_type(cls):
            raise JournalError(f"cannot store a value of type {manifest}: use {KINDS}")
        try:
            return manifest, self._encoder.encode(value)
        except Exception as exc:
            raise JournalError(f"cannot store a value of type {manifest}: {exc}") from exc

    def decode(self, manifest: str, payload: bytes) -> Any:
        """The value stored as ``(manifest, payload)``.

        Raises:
            JournalError: The type cannot be resolved, or the bytes do not match it.
        """
        decoder = self._decoders.get(manifest)
        if decoder is None:
            cls = self._resolve(manifest)
            try:
                decoder = msgspec.msgpack.Decoder(cls)
            except Exception as exc:
                raise JournalError(f"cannot read a stored {manifest!r}: {exc}") from exc
            self._decoders[manifest] = decoder
        try:
            return decoder.decode(payload)
        except Exception as exc:
            raise JournalError(f"cannot read a stored {manifest!r}: {exc}") from exc

    def _resolve(self, manifest: str) -> Any:
        known = self._known.get(manifest)
        if known is not None:
            return known
        try:
            return resolve_loaded(
                manifest,
                what="storable type",
                local_hint="pass classes defined in functions in types=...",
            )
        except ManifestError as exc:
            raise JournalError(f"cannot read a stored value: {exc}") from None


def _refuse(obj: Any) -> Any:
    cls = type(obj)
    raise TypeError(f"{cls.__module__}.{cls.__qualname__} values cannot be stored")
