"""Manifests: a class named as ``"<module>:<qualname>"``, and found again without importing.

A *manifest* names the type of a stored or sent value: ``"myapp.bank:Deposit"``,
``"builtins:int"`` (``None`` is ``"builtins:NoneType"``). The serialization layer names the
payloads of messages with it, the persistence layer the events and snapshots of its journals;
both resolve a manifest they read back to a class with :func:`resolve_loaded`, under the same
rules: only modules already in ``sys.modules`` are searched, module and class namespaces are
read directly (no ``getattr``, so no module ``__getattr__`` runs), nothing is ever imported, and
only user value types (:func:`is_user_type`) are accepted, under their canonical name. Bytes
read from the network or from disk so never cause an import or run code.

This module belongs to no layer: it imports nothing from ``casty_trio``, and both layers use it.
Its errors are :class:`ManifestError`, which each caller maps to its own error type.
"""

from __future__ import annotations

import dataclasses
import enum
import sys
from collections.abc import Mapping
from typing import Any, Final

import attrs
import msgspec

__all__ = [
    "BUILTIN_TYPES",
    "KINDS",
    "ManifestError",
    "is_user_type",
    "manifest_of",
    "resolve_loaded",
]

BUILTIN_TYPES: Final[dict[str, type]] = {
    f"builtins:{cls.__qualname__}": cls
    for cls in (
        int,
        float,
        str,
        bytes,
        bool,
        type(None),
        list,
        dict,
        tuple,
        set,
        frozenset,
    )
}
"""Builtin value types, always allowed, keyed by manifest (``"builtins:int"``, ...)."""

KINDS: Final = "a msgspec Struct, an attrs class, a dataclass, an Enum or a builtin value"
"""What may be sent or stored, for error messages."""

_ENUM_BASES = frozenset({enum.Enum, enum.IntEnum, enum.Flag, enum.IntFlag, enum.StrEnum})
_MISSING: Final = object()


class ManifestError(ValueError):
    """A manifest that names no acceptable class; the message says why.

    Raised by :func:`resolve_loaded` only; its callers map it to their layer's error
    (``SerializationError``, ``JournalError``), so it never reaches users.
    """


def manifest_of(cls: type) -> str:
    """The manifest of a class: ``"<module>:<qualname>"``.

    Args:
        cls: Any class.

    Returns:
        The manifest; builtins are ``"builtins:<name>"``.

    Examples:
        >>> manifest_of(int)
        'builtins:int'
        >>> manifest_of(type(None))
        'builtins:NoneType'
    """
    return f"{cls.__module__}:{cls.__qualname__}"


def is_user_type(cls: object) -> bool:
    """Whether ``cls`` is a user value class: a msgspec Struct, attrs class, dataclass or Enum
    (not the bases ``msgspec.Struct``, ``enum.Enum`` and the like themselves).

    Builtins are allowed values too (:data:`BUILTIN_TYPES`), but are not user types.

    Examples:
        >>> @attrs.frozen
        ... class Ping:
        ...     n: int
        >>> is_user_type(Ping), is_user_type(object), is_user_type(msgspec.Struct)
        (True, False, False)
    """
    if not isinstance(cls, type):
        return False
    if issubclass(cls, msgspec.Struct):
        return cls is not msgspec.Struct
    if issubclass(cls, enum.Enum):
        return cls not in _ENUM_BASES
    return attrs.has(cls) or dataclasses.is_dataclass(cls)


def resolve_loaded(manifest: str, *, what: str, local_hint: str) -> type:
    """The user type ``manifest`` names among the modules already imported. Never imports.

    Looks the module up in ``sys.modules``, then walks the qualname through the namespaces of
    the module and of classes only (an intermediate part that is not a class, like a function
    holding ``<locals>``, ends the walk), and accepts the class found only if it is a user type
    (:func:`is_user_type`) whose own manifest is ``manifest`` (an alias is refused).

    Args:
        manifest: The manifest read (untrusted).
        what: What the caller calls the types it accepts (``"message type"``), for messages.
        local_hint: How to make a class defined inside a function known (such classes are
            found only when registered), added to the message when the manifest names one.

    Returns:
        The class.

    Raises:
        ManifestError: The manifest is malformed, its module is not imported, it names
            nothing, or names something that is not a user type under its own name.

    Examples:
        >>> resolve_loaded("enum:Enum", what="message type", local_hint="register it")
        Traceback (most recent call last):
            ...
        casty_trio._manifest.ManifestError: 'enum:Enum' is not a message type (allowed: ...)
        >>> resolve_loaded("nowhere_xyz:Foo", what="message type", local_hint="register it")
        Traceback (most recent call last):
            ...
        casty_trio._manifest.ManifestError: cannot resolve 'nowhere_xyz:Foo': module ...
    """
    module_name, sep, qualname = manifest.partition(":")
    if not sep or not module_name or not qualname:
        raise ManifestError(f"malformed manifest {manifest!r}: expected 'module:QualName'")
    module = sys.modules.get(module_name)
    if module is None:
        raise ManifestError(
            f"cannot resolve {manifest!r}: module {module_name!r} is not imported on this node "
            "(resolving a manifest never imports a module)"
        )
    found: object = module
    parts = qualname.split(".")
    for index, part in enumerate(parts):
        if index and not isinstance(found, type):
            hint = f" ({local_hint})" if "<locals>" in parts else ""
            raise ManifestError(
                f"{manifest!r} is not a {what}: {'.'.join(parts[:index])!r} is not a class{hint}"
            )
        namespace: Any = getattr(found, "__dict__", {})
        found = namespace.get(part, _MISSING) if isinstance(namespace, Mapping) else _MISSING
        if found is _MISSING:
            hint = f" ({local_hint})" if "<" in part else ""
            raise ManifestError(
                f"cannot resolve {manifest!r}: no such class, {module_name!r} has no attribute "
                f"{qualname!r}{hint}"
            )
    if not is_user_type(found):
        raise ManifestError(f"{manifest!r} is not a {what} (allowed: {KINDS})")
    assert isinstance(found, type)
    if manifest_of(found) != manifest:
        raise ManifestError(
            f"{manifest!r} is not a {what}'s own name (it is {manifest_of(found)!r})"
        )
    return found
