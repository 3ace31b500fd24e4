"""How a durable journal stores values: a manifest naming the type plus msgpack bytes.

A *manifest* is ``"<module>:<qualname>"`` of the value's class (``"myapp.bank:Deposited"``,
``"builtins:int"``). Decoding looks the manifest up among the ``types`` given to the journal,
then among classes of modules already present in ``sys.modules``, reading module and class
namespaces directly: stored bytes never cause an import, are never unpickled and never run code.

This module is the persistence layer's own small codec; it does not use the serialization layer
(the two are independent siblings).
"""

from __future__ import annotations

import dataclasses
import enum
import sys
from collections.abc import Iterable, Mapping
from typing import Any, Final

import attrs
import msgspec

from .._errors import JournalError

__all__ = ["ValueCodec", "manifest_of"]

_BUILTINS: Final[dict[str, Any]] = {
    f"builtins:{cls.__qualname__}": cls
    for cls in (int, float, str, bytes, bool, list, dict, tuple, set, frozenset)
}
_BUILTINS["builtins:NoneType"] = None  # msgspec spells the None type as None
_KINDS = "a msgspec Struct, an attrs class, a dataclass, an Enum or a builtin value"
_ENUM_BASES = frozenset({enum.Enum, enum.IntEnum, enum.Flag, enum.IntFlag, enum.StrEnum})
_MISSING: Final = object()


def manifest_of(cls: type) -> str:
    """``"<module>:<qualname>"`` of a class.

    Examples:
        >>> manifest_of(int)
        'builtins:int'
    """
    return f"{cls.__module__}:{cls.__qualname__}"


def _is_user_type(cls: object) -> bool:
    if not isinstance(cls, type):
        return False
    if issubclass(cls, msgspec.Struct):
        return cls is not msgspec.Struct
    if issubclass(cls, enum.Enum):
        return cls not in _ENUM_BASES
    return attrs.has(cls) or dataclasses.is_dataclass(cls)


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
        self._known: dict[str, Any] = dict(_BUILTINS)
        for cls in types:
            if not _is_user_type(cls) and cls not in _BUILTINS.values():
                raise TypeError(f"{cls!r} cannot be stored in a journal: use {_KINDS}")
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
        if manifest not in self._known and not _is_user_type(cls):
            raise JournalError(f"cannot store a value of type {manifest}: use {_KINDS}")
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
        known = self._known.get(manifest, _MISSING)
        if known is not _MISSING:
            return known
        module_name, sep, qualname = manifest.partition(":")
        if not sep or not module_name or not qualname:
            raise JournalError(f"malformed manifest {manifest!r}: expected 'module:QualName'")
        module = sys.modules.get(module_name)
        if module is None:
            raise JournalError(
                f"cannot read a stored {manifest!r}: module {module_name!r} is not imported "
                "(journals never import modules; import it or pass the class in types=...)"
            )
        found: object = module
        for part in qualname.split("."):
            namespace: Any = getattr(found, "__dict__", {})  # no module __getattr__ runs
            found = namespace.get(part, _MISSING) if isinstance(namespace, Mapping) else _MISSING
            if found is _MISSING:
                hint = " (pass classes defined in functions in types=...)" if "<" in part else ""
                raise JournalError(f"cannot read a stored {manifest!r}: no such class{hint}")
        if not _is_user_type(found) or manifest_of(found) != manifest:  # type: ignore[arg-type]
            raise JournalError(f"cannot read a stored {manifest!r}: not a storable type")
        return found


def _refuse(obj: Any) -> Any:
    cls = type(obj)
    raise TypeError(f"{cls.__module__}.{cls.__qualname__} values cannot be stored")
