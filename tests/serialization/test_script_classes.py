"""Classes of the script Python runs (module ``__main__``) on the wire: sent only if registered.

``python app.py`` names the classes ``app.py`` defines ``__main__.Name``: a name another node
resolves only if it runs that same script. Encoding such a class fails at once with a clear
error, unless it was passed in ``types=`` (which says every node runs the script).
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

import attrs
import msgspec
import pytest

from casty_trio import MsgpackSerializer, SerializationError
from tests.serialization._messages import FakeRefs


def script_classes(module: str = "__main__") -> list[type]:
    """One message class of each kind, as if defined at the top of a script run as ``module``."""

    @attrs.frozen
    class Order:
        n: int

    class Quote(msgspec.Struct):
        n: int

    @dataclasses.dataclass(frozen=True)
    class Trade:
        n: int

    class Side(enum.Enum):
        buy = 1

    for cls in (Order, Quote, Trade, Side):
        cls.__module__ = module
        cls.__qualname__ = cls.__name__
    return [Order, Quote, Trade, Side]


def _sample(cls: type) -> Any:
    return cls.buy if issubclass(cls, enum.Enum) else cls(1)


@pytest.mark.parametrize("module", ["__main__", "__mp_main__"])
def test_an_unregistered_script_class_cannot_be_encoded(module: str) -> None:
    codec = MsgpackSerializer().bind(FakeRefs())
    for cls in script_classes(module):
        with pytest.raises(SerializationError) as info:
            codec.encode(_sample(cls))
        text = str(info.value)
        assert f"{module}:{cls.__name__}" in text
        assert f"{cls.__name__} is defined in the script run as {module}" in text
        assert "define it in a module every node imports" in text
        assert "MsgpackSerializer(types=...)" in text
        with pytest.raises(SerializationError):  # a failure is not remembered as a manifest
            codec.manifest(cls)


def test_a_registered_script_class_travels_under_its_script_name() -> None:
    classes = script_classes()
    sender = MsgpackSerializer(types=classes).bind(FakeRefs())
    receiver = MsgpackSerializer(types=classes).bind(FakeRefs())
    for cls in classes:
        manifest, payload = sender.encode(_sample(cls))
        assert manifest == f"__main__:{cls.__name__}"
        assert receiver.decode(manifest, payload) == _sample(cls)


def test_a_script_class_registered_later_is_sent_too() -> None:
    [order, *_] = script_classes()
    codec = MsgpackSerializer().bind(FakeRefs())
    with pytest.raises(SerializationError):
        codec.encode(order(1))
    codec.register(order)
    assert codec.encode(order(1))[0] == "__main__:Order"


def test_strict_mode_asks_for_registration_first() -> None:
    [order, *_] = script_classes()
    codec = MsgpackSerializer(strict=True).bind(FakeRefs())
    with pytest.raises(SerializationError, match="it is not registered"):
        codec.encode(order(1))
    strict = MsgpackSerializer(types=[order], strict=True).bind(FakeRefs())
    assert strict.decode(*strict.encode(order(2))) == order(2)


def test_classes_of_importable_modules_are_unaffected() -> None:
    codec = MsgpackSerializer().bind(FakeRefs())
    [order, *_] = script_classes(module="app.orders")
    assert codec.encode(order(1))[0] == "app.orders:Order"
