"""The message codec bound to one actor system: messages to ``(manifest, bytes)`` and back.

Actor refs anywhere inside a message (typed fields, containers, ``Any`` fields) travel as the
msgpack extension :data:`REF_EXT_CODE` whose data is the msgpack array
``[system, path, host, port]``. The remote layer supplies the two conversions through a
:class:`RefCodec`, so a decoded ref is a working ref of the receiving system.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Final, Protocol, get_origin

import msgspec

from .._core import ActorRef
from .._errors import SerializationError
from ._registry import TypeRegistry

__all__ = ["REF_EXT_CODE", "MessageCodec", "RefCodec"]

REF_EXT_CODE: Final = 1
"""The msgpack extension type code of an encoded actor ref. Part of the protocol."""

_Payload = bytes | bytearray | memoryview | msgspec.Raw


class RefCodec(Protocol):
    """How actor refs cross the wire; implemented by the remote layer of each system.

    Examples:
        >>> class Loopback:                                   # doctest: +SKIP
        ...     def ref_to_wire(self, ref):
        ...         a = ref.address
        ...         return (a.system, a.path, a.node.host, a.node.port)
        ...     def ref_from_wire(self, system, path, host, port):
        ...         return make_ref(system, path, host, port)
    """

    def ref_to_wire(self, ref: ActorRef[Any]) -> tuple[str, str, str, int]:
        """``(system, path, host, port)`` of ``ref``; local refs get this node's address."""
        ...

    def ref_from_wire(self, system: str, path: str, host: str, port: int) -> ActorRef[Any]:
        """A working ref, bound to the receiving system, for a ref read off the wire."""
        ...


class MessageCodec:
    """Encodes messages to ``(manifest, payload)`` and decodes them back, for one system.

    Built by :meth:`MsgpackSerializer.bind <casty_trio.MsgpackSerializer.bind>`, once per
    system. The msgspec encoder is built once; a decoder is built the first time a manifest is
    received and reused afterwards. Failed lookups are not cached, so garbage manifests cost no
    memory. Neither :meth:`encode` nor :meth:`decode` is a checkpoint; both are synchronous.

    Args:
        refs: Converts actor refs to and from their wire form.
        types: Message types always allowed (the only ones besides builtins when ``strict``).
        strict: Encode and decode only registered types, builtins and refs.

    Examples:
        >>> class NoRefs:  # the remote layer supplies the real RefCodec
        ...     def ref_to_wire(self, ref):
        ...         raise TypeError("no refs in this example")
        ...     def ref_from_wire(self, system, path, host, port):
        ...         raise TypeError("no refs in this example")
        >>> codec = MessageCodec(NoRefs())
        >>> manifest, payload = codec.encode((1, "a"))
        >>> manifest
        'builtins:tuple'
        >>> codec.decode(manifest, payload)
        (1, 'a')
    """

    __slots__ = (
        "_decoders",
        "_encoder",
        "_manifests",
        "_ref_annotations",
        "_ref_decoder",
        "_ref_encoder",
        "_refs",
        "_registry",
        "_run_decoders",
    )

    def __init__(self, refs: RefCodec, *, types: Iterable[type] = (), strict: bool = False) -> None:
        self._refs = refs
        self._registry = TypeRegistry(types, strict=strict)
        self._ref_encoder = msgspec.msgpack.Encoder()
        self._ref_decoder = msgspec.msgpack.Decoder(tuple[str, str, str, int])
        self._encoder = msgspec.msgpack.Encoder(enc_hook=self._enc_hook)
        self._manifests: dict[type, str] = {}
        self._decoders: dict[str, msgspec.msgpack.Decoder[Any]] = {}
        self._run_decoders: dict[str, Callable[[_Payload], list[Any]]] = {}
        # annotation seen by the dec hook -> the ref class it names (bounded by known types)
        self._ref_annotations: dict[Any, type] = {}

    @property
    def strict(self) -> bool:
        """Whether only registered types (plus builtins and refs) are allowed."""
        return self._registry.strict

    def register(self, *types: type) -> None:
        """Allow ``types`` in this codec, even in strict mode (framework and user types).

        Args:
            *types: msgspec Structs, attrs classes, dataclasses or Enums.

        Raises:
            TypeError: A type is not a message type.
            ValueError: A different class is already registered under the same manifest.

        Examples:
            >>> codec.register(ShardEnvelope, ReplicateEvents)   # doctest: +SKIP
        """
        for manifest in self._registry.register(*types):
            self._decoders.pop(manifest, None)

    def encode(self, message: Any) -> tuple[str, bytes]:
        """Encode a message.

        Args:
            message: A Struct, attrs class, dataclass, Enum member, builtin value or actor ref;
                refs may appear anywhere inside it.

        Returns:
            ``(manifest, payload)``: the type's wire name and the msgpack bytes.

        Raises:
            SerializationError: The message's type is not a payload type (or not registered
                in strict mode, or defined in the ``__main__`` script and not registered), or
                something inside it cannot be encoded. The error names the message type.

        Examples:
            >>> codec.encode(42)                                  # doctest: +SKIP
            ('builtins:int', b'*')
        """
        cls = type(message)
        manifest = self._manifests.get(cls)
        if manifest is None:
            manifest = self.manifest(cls)
        try:
            return manifest, self._encoder.encode(message)
        except Exception as exc:
            raise self.encode_failed(manifest, exc) from exc

    def manifest(self, cls: type) -> str:
        """The wire name messages of type ``cls`` are sent under (the one :meth:`encode` gives).

        Raises:
            SerializationError: ``cls`` is not a payload type (or not registered in strict
                mode, or defined in the ``__main__`` script and not registered).

        Examples:
            >>> codec.manifest(int)                               # doctest: +SKIP
            'builtins:int'
        """
        manifest = self._manifests.get(cls)
        if manifest is None:
            manifest = self._manifests[cls] = self._registry.manifest_for_encoding(cls)
        return manifest

    @property
    def payload_encoder(self) -> Callable[[Any], bytes]:
        """The bare payload encoder behind :meth:`encode`, for hot paths that cache the
        manifest (:meth:`manifest`) per type: no manifest lookup and no error mapping, so a
        caller turns what it raises into a :class:`SerializationError` with
        :meth:`encode_failed`."""
        return self._encoder.encode

    def encode_failed(self, manifest: str, exc: Exception) -> SerializationError:
        """The error :meth:`encode` raises when the payload encoder raised ``exc``."""
        return SerializationError(f"cannot encode a message of type {manifest}: {exc}")

    def decode(self, manifest: str, payload: _Payload) -> Any:
        """Decode a payload received under ``manifest``.

        Never imports a module, never unpickles, never evaluates code: the manifest is looked
        up among registered types and (unless strict) classes of already-imported modules.

        Args:
            manifest: The type's wire name, as produced by :meth:`encode`.
            payload: The msgpack bytes (a ``msgspec.Raw`` from an envelope works too).

        Returns:
            The message, with refs bound to this system.

        Raises:
            SerializationError: The manifest is unknown or not allowed, or the payload is
                malformed or does not match the type. The error names the manifest.

        Examples:
            >>> codec.decode("builtins:int", b"*")                # doctest: +SKIP
            42
        """
        decoder = self._decoders.get(manifest)
        if decoder is None:
            decoder = self._decoder_for(manifest)
        try:
            return decoder.decode(payload)
        except Exception as exc:
            raise self.decode_failed(manifest, exc) from exc

    def payload_decoder(self, manifest: str) -> Callable[[_Payload], Any]:
        """The bare payload decoder :meth:`decode` uses for ``manifest``, for hot paths that
        decode many payloads of one type: a caller turns what it raises into a
        :class:`SerializationError` with :meth:`decode_failed`.

        Raises:
            SerializationError: The manifest is unknown or not allowed.
        """
        decoder = self._decoders.get(manifest)
        if decoder is None:
            decoder = self._decoder_for(manifest)
        return decoder.decode

    def run_decoder(self, manifest: str) -> Callable[[_Payload], list[Any]]:
        """The decoder of a run: a msgpack array of payloads of ``manifest``, decoded into a
        list in one call (an ``Envelopes`` item's ``payloads``). Like
        :meth:`payload_decoder`, what it raises is the caller's to turn into an error.

        Raises:
            SerializationError: The manifest is unknown or not allowed.
        """
        decode = self._run_decoders.get(manifest)
        if decode is None:
            decode = self._run_decoders[manifest] = self.shaped_decoder(
                manifest,
                lambda cls: list[cls],  # type: ignore[valid-type]
            ).decode
        return decode

    def shaped_decoder(
        self, manifest: str, shape: Callable[[type], Any]
    ) -> msgspec.msgpack.Decoder[Any]:
        """A new decoder for ``shape(cls)``, ``cls`` being the type ``manifest`` names, with
        this codec's ref handling: for containers of messages, e.g. ``lambda cls:
        list[tuple[str, cls]]``. Not cached: the caller keeps it.

        Raises:
            SerializationError: The manifest is unknown or not allowed, or the shape is not
                decodable.
        """
        cls = self._registry.resolve(manifest)
        try:
            return msgspec.msgpack.Decoder(
                shape(cls), dec_hook=self._dec_hook, ext_hook=self._ext_hook
            )
        except Exception as exc:
            raise SerializationError(f"cannot decode {manifest!r}: {exc}") from exc

    def decode_failed(self, manifest: str, exc: Exception) -> SerializationError:
        """The error :meth:`decode` raises when the payload decoder raised ``exc``."""
        return SerializationError(f"cannot decode {manifest!r}: {exc}")

    def _decoder_for(self, manifest: str) -> msgspec.msgpack.Decoder[Any]:
        cls = self._registry.resolve(manifest)
        try:
            decoder: msgspec.msgpack.Decoder[Any] = msgspec.msgpack.Decoder(
                cls, dec_hook=self._dec_hook, ext_hook=self._ext_hook
            )
        except Exception as exc:
            raise SerializationError(f"cannot decode {manifest!r}: {exc}") from exc
        self._decoders[manifest] = decoder
        return decoder

    def _enc_hook(self, obj: Any) -> Any:
        if isinstance(obj, ActorRef):
            return msgspec.msgpack.Ext(
                REF_EXT_CODE, self._ref_encoder.encode(self._refs.ref_to_wire(obj))
            )
        cls = type(obj)
        raise TypeError(f"{cls.__module__}.{cls.__qualname__} values are not serializable")

    def _ext_hook(self, code: int, data: memoryview) -> Any:
        if code != REF_EXT_CODE:
            raise ValueError(f"unknown msgpack extension type {code}")
        system, path, host, port = self._ref_decoder.decode(data)
        return self._refs.ref_from_wire(system, path, host, port)

    def _dec_hook(self, tp: Any, obj: Any) -> Any:
        # Called for fields annotated with a type msgspec does not know: ActorRef, ActorRef[X]
        # (or a subclass); the ext hook has already turned the wire value into a ref.
        ref_class = self._ref_annotations.get(tp)
        if ref_class is None:
            ref_class = _ref_class(tp)
            self._ref_annotations[tp] = ref_class
        if ref_class is _NOT_A_REF:
            raise NotImplementedError(f"cannot decode values of type {tp!r}")
        if isinstance(obj, ref_class):
            return obj
        raise TypeError(f"expected an actor ref, got {type(obj).__name__}")


class _NotARef:
    pass


_NOT_A_REF: Final = _NotARef


def _ref_class(annotation: Any) -> type:
    """The ref class an annotation such as ``ActorRef[int]`` names, else ``_NOT_A_REF``."""
    cls = get_origin(annotation) or annotation
    if isinstance(cls, type) and issubclass(cls, ActorRef):
        return cls
    return _NOT_A_REF
