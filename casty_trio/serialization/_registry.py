"""Naming message types on the wire and finding them again, without ever importing anything.

A *manifest* names a payload's type: ``"<module>:<qualname>"`` of its class, for example
``"myapp.bank:Deposit"`` or ``"builtins:int"`` (``None`` is ``"builtins:NoneType"``). Actor refs
sent on their own use the stable name ``"casty_trio:ActorRef"``.

Resolving a manifest back to a class (:meth:`TypeRegistry.resolve`) looks first at the types
registered with the registry, then, unless the registry is strict, among the classes of modules
already present in ``sys.modules``: it reads module and class namespaces directly (no
``getattr``, so no module ``__getattr__`` runs), never imports, and accepts only message types
(msgspec Structs, attrs classes, dataclasses and Enums) under their canonical name.

A class defined in the script Python runs (``python app.py``) has the module name
``__main__``: its manifest ``"__main__:Name"`` names a class only on a node running that same
script, so such a class is sent only when it was registered (which says every node runs the
script and registers it too); otherwise encoding it fails at once, asking to define it in an
importable module.
"""

from __future__ import annotations

import dataclasses
import enum
import sys
from collections.abc import Iterable
from typing import Any, Final

import attrs
import msgspec

from .._core import ActorRef
from .._errors import SerializationError

__all__ = [
    "BUILTIN_TYPES",
    "REF_MANIFEST",
    "TypeRegistry",
    "check_message_type",
    "is_message_type",
    "manifest_of",
]

REF_MANIFEST: Final = "casty_trio:ActorRef"
"""The manifest of a bare :class:`~casty_trio.ActorRef` sent as a message (any ref subclass)."""

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
"""Builtin payload types, always allowed, keyed by manifest (``"builtins:int"``, ...)."""

_KINDS = "a msgspec Struct, an attrs class, a dataclass, an Enum or a builtin value"
# The names the script Python runs is imported under (``__mp_main__`` in the processes the
# multiprocessing "spawn" method starts): not names another node can resolve.
_SCRIPT_MODULES = frozenset({"__main__", "__mp_main__"})
_ENUM_BASES = frozenset({enum.Enum, enum.IntEnum, enum.Flag, enum.IntFlag, enum.StrEnum})


def manifest_of(cls: type) -> str:
    """The wire name of a class: ``"<module>:<qualname>"``.

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


def is_message_type(cls: object) -> bool:
    """Whether ``cls`` is a user message class: a Struct, attrs class, dataclass or Enum.

    Builtins and actor refs are allowed payloads too, but are not "message types" here.

    Examples:
        >>> import attrs
        >>> @attrs.frozen
        ... class Ping:
        ...     n: int
        >>> is_message_type(Ping), is_message_type(object)
        (True, False)
    """
    if not isinstance(cls, type):
        return False
    if issubclass(cls, msgspec.Struct):
        return cls is not msgspec.Struct
    if issubclass(cls, enum.Enum):
        return cls not in _ENUM_BASES
    return attrs.has(cls) or dataclasses.is_dataclass(cls)


def check_message_type(cls: object) -> type:
    """Return ``cls`` if it may be registered as a payload type, else raise ``TypeError``.

    Examples:
        >>> check_message_type(int)
        <class 'int'>
    """
    if isinstance(cls, type) and (
        is_message_type(cls) or cls in BUILTIN_TYPES.values() or issubclass(cls, ActorRef)
    ):
        return cls
    raise TypeError(f"{cls!r} is not a message type: use {_KINDS}")


class TypeRegistry:
    """The payload types one codec knows, and how to resolve received manifests.

    Args:
        types: Types always allowed, even when ``strict``.
        strict: Allow only ``types``, later :meth:`register`-ed types, builtins and refs.

    Examples:
        >>> registry = TypeRegistry(strict=True)
        >>> registry.resolve("builtins:int")
        <class 'int'>
    """

    __slots__ = ("_by_manifest", "strict")

    def __init__(self, types: Iterable[type] = (), *, strict: bool = False) -> None:
        self.strict = strict
        self._by_manifest: dict[str, type] = dict(BUILTIN_TYPES)
        self._by_manifest[REF_MANIFEST] = ActorRef
        self.register(*types)

    def register(self, *types: type) -> list[str]:
        """Allow ``types`` (registering a type twice is harmless).

        Returns:
            The manifests of the newly registered types.

        Raises:
            TypeError: A type is not a message type.
            ValueError: Another class is registered under the same manifest.
        """
        added: list[str] = []
        for cls in types:
            check_message_type(cls)
            if cls in BUILTIN_TYPES.values() or issubclass(cls, ActorRef):
                continue
            manifest = manifest_of(cls)
            known = self._by_manifest.get(manifest)
            if known is cls:
                continue
            if known is not None:
                raise ValueError(
                    f"cannot register {cls!r}: another class is registered as {manifest!r}"
                )
            self._by_manifest[manifest] = cls
            added.append(manifest)
        return added

    def manifest_for_encoding(self, cls: type) -> str:
        """The manifest to send a ``cls`` instance under.

        Raises:
            SerializationError: ``cls`` is not a payload type, or is not registered in strict
                mode, or is defined in the ``__main__`` script and not registered.
        """
        if issubclass(cls, ActorRef):
            return REF_MANIFEST
        manifest = manifest_of(cls)
        if self._by_manifest.get(manifest) is cls:
            return manifest
        if not is_message_type(cls):
            raise SerializationError(
                f"cannot encode a message of type {manifest}: not a message type (use {_KINDS})"
            )
        if self.strict:
            raise SerializationError(
                f"cannot encode a message of type {manifest}: it is not registered "
                "(strict serializer: pass it in types=... or register it)"
            )
        if cls.__module__ in _SCRIPT_MODULES:
            raise SerializationError(
                f"cannot send a message of type {manifest} to another node: {cls.__qualname__} "
                f"is defined in the script run as {cls.__module__}, a module name other nodes "
                "cannot resolve; define it in a module every node imports (or, if every node "
                "runs this same script, pass it in MsgpackSerializer(types=...) on each)"
            )
        return manifest

    def resolve(self, manifest: str) -> type:
        """The class a received manifest names.

        Raises:
            SerializationError: The manifest is malformed, unknown, not allowed, or names
                something that is not a message type.
        """
        cls = self._by_manifest.get(manifest)
        if cls is not None:
            return cls
        if self.strict:
            raise SerializationError(
                f"{manifest!r} is not a registered message type (strict serializer)"
            )
        return _resolve_loaded(manifest)


def _resolve_loaded(manifest: str) -> type:
    module_name, sep, qualname = manifest.partition(":")
    if not sep or not module_name or not qualname:
        raise SerializationError(f"malformed manifest {manifest!r}: expected 'module:QualName'")
    module = sys.modules.get(module_name)
    if module is None:
        raise SerializationError(
            f"cannot resolve {manifest!r}: module {module_name!r} is not imported on this node "
            "(the wire never imports modules)"
        )
    found: object = module
    parts = qualname.split(".")
    for index, part in enumerate(parts):
        if index and not isinstance(found, type):
            hint = " (register classes defined inside functions)" if "<locals>" in parts else ""
            raise SerializationError(
                f"{manifest!r} is not a message type: {'.'.join(parts[:index])!r} is not a "
                f"class{hint}"
            )
        namespace: Any = getattr(found, "__dict__", {})
        found = namespace.get(part, _MISSING)
        if found is _MISSING:
            raise SerializationError(
                f"cannot resolve {manifest!r}: {module_name!r} has no attribute {qualname!r}"
            )
    if not isinstance(found, type) or not is_message_type(found):
        raise SerializationError(f"{manifest!r} is not a message type (allowed: {_KINDS})")
    if manifest_of(found) != manifest:
        raise SerializationError(
            f"{manifest!r} is not a message type's own name (it is {manifest_of(found)!r})"
        )
    return found


_MISSING: Final = object()
