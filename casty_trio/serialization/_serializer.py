"""The default serializer: msgpack via msgspec, with actor refs and a type allow-list."""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from ._codec import MessageCodec, RefCodec
from ._registry import check_message_type

__all__ = ["MsgpackSerializer"]


def _type_tuple(types: Iterable[type]) -> tuple[type, ...]:
    return tuple(check_message_type(cls) for cls in types)


@attrs.frozen(kw_only=True)
class MsgpackSerializer:
    """Serializes messages as msgpack (msgspec), the default ``serializer`` of a cluster.

    Messages may be msgspec Structs, attrs classes, dataclasses, Enums or builtin values
    (``int``, ``float``, ``str``, ``bytes``, ``bool``, ``None``, ``list``, ``dict``,
    ``tuple``, ``set``, ``frozenset``). Nested user types decode by their field annotations;
    :class:`~casty_trio.ActorRef` values anywhere inside a message arrive as working refs of
    the receiving system. An ``Any``-typed field carries builtins and refs only: a user object
    in it arrives as a plain ``dict``/``list``, so give nested messages a typed field.

    A received type name is resolved only among the ``types`` given here and registered by
    the framework, and, unless ``strict``, among classes of modules already imported on the
    receiving node: the wire never imports a module, unpickles or executes code.

    A class defined in the script Python runs (module ``__main__``) is sent only when it is
    in ``types``, which says every node runs that same script and registers it too; otherwise
    encoding it raises :class:`~casty_trio.SerializationError`, as its name ``__main__:Name``
    means nothing to a node running other code. Define messages in an importable module.

    The serializer is an immutable value; :meth:`bind` makes the codec one system uses.

    Args:
        types: Message types always allowed; with ``strict`` the only user types allowed.
            The only way to send classes of the ``__main__`` script.
        strict: Encode and decode only ``types``, framework types, builtins and refs.

    Raises:
        TypeError: An entry of ``types`` is not a message type.

    Examples:
        >>> import attrs
        >>> @attrs.frozen
        ... class Deposit:
        ...     amount: int
        >>> serializer = MsgpackSerializer(types=[Deposit], strict=True)
        >>> serializer.types == (Deposit,), serializer.strict
        (True, True)
    """

    types: tuple[type, ...] = attrs.field(default=(), converter=_type_tuple)
    strict: bool = False

    def bind(self, refs: RefCodec) -> MessageCodec:
        """Build the codec of one system (call once per system; the codec caches decoders).

        Args:
            refs: The system's ref conversions, supplied by the remote layer.

        Returns:
            A new :class:`MessageCodec`; types registered on it affect only that codec.

        Examples:
            >>> codec = MsgpackSerializer().bind(refs)            # doctest: +SKIP
            >>> codec.decode(*codec.encode((1, "a")))             # doctest: +SKIP
            (1, 'a')
        """
        return MessageCodec(refs, types=self.types, strict=self.strict)
