"""Naming message types on the wire and finding them again, without ever importing anything.

A *manifest* names a payload's type: ``"<module>:<qualname>"`` of its class, for example
``"myapp.bank:Deposit"`` or ``"builtins:int"`` (``None`` is ``"builtins:NoneType"``). Actor refs
sent on their own use the stable name ``"casty_trio:ActorRef"``.

Resolving a manifest back to a class (:meth:`TypeRegistry.resolve`) looks first at the types
registered with the registry, then, unless the registry is strict, among the classes of modules
already present in ``sys.modules``, by the rules the journals follow too
(:func:`casty_trio._manifest.resolve_loaded`): it reads module and class namespaces directly (no
``getattr``, so no module ``__getattr__`` runs), never imports, and accepts only message types
(msgspec Structs, attrs classes, dataclasses and Enums) under their canonical name.

A class defined in the script Python runs (``python app.py``) has the module name
``__main__``: its manifest ``"__main__:Name"`` names a class only on a node running that same
script, so such a class is sent only when it was registered (which says every node runs the
script and registers it too); otherwise encoding it fails at once, asking to define it in an
importable module.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from .._core import ActorRef
from .._errors import SerializationError
from .._manifest import (
    BUILTIN_TYPES,
    KINDS,
    ManifestError,
    is_user_type,
    manifest_of,
    resolve_loaded,
)

__all__ = ["REF_MANIFEST", "TypeRegistry", "check_message_type"]

REF_MANIFEST: Final = "casty_trio:ActorRef"
"""The manifest of a bare :class:`~casty_trio.ActorRef` sent as a message (any ref subclass)."""

# The names the script Python runs is imported under (``__mp_main__`` in the processes the
# multiprocessing "spawn" method starts): not names another node can resolve.
_SCRIPT_MODULES = frozenset({"__main__", "__mp_main__"})


def check_message_type(cls: object) -> type:
    """Return ``cls`` if it may be registered as a payload type, else raise ``TypeError``.

    Examples:
        >>> check_message_type(int)
        <class 'int'>
    """
    if isinstance(cls, type) and (
        is_user_type(cls) or cls in BUILTIN_TYPES.values() or issubclass(cls, ActorRef)
    ):
        return cls
    raise TypeError(f"{cls!r} is not a message type: use {KINDS}")


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
        if not is_user_type(cls):
            raise SerializationError(
                f"cannot encode a message of type {manifest}: not a message type (use {KINDS})"
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
        try:
            return resolve_loaded(
                manifest,
                what="message type",
                local_hint="register classes defined inside functions",
            )
        except ManifestError as exc:
            raise SerializationError(str(exc)) from None
