"""Manifests: one naming and resolving rule for the wire (serialization) and the journals
(persistence)."""

from __future__ import annotations

import dataclasses
import doctest
import enum
import re
import sys

import attrs
import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import casty_trio._manifest as manifest_module
from casty_trio import JournalError, SerializationError
from casty_trio._manifest import (
    BUILTIN_TYPES,
    ManifestError,
    is_user_type,
    manifest_of,
    resolve_loaded,
)
from casty_trio.persistence._manifest import ValueCodec
from casty_trio.serialization._registry import TypeRegistry

HERE = __name__


class Point(msgspec.Struct):
    x: int


@attrs.frozen
class Record:
    n: int


@dataclasses.dataclass
class Data:
    s: str


class Color(enum.Enum):
    red = 1


class Outer:
    @attrs.frozen
    class Inner:
        n: int


Alias = Point  # the same class under another name: not its manifest


def not_a_class() -> None:
    pass


USER_TYPES = [Point, Record, Data, Color, Outer.Inner]


def _resolve(manifest: str) -> type:
    return resolve_loaded(manifest, what="message type", local_hint="register it")


def test_docstring_examples() -> None:
    result = doctest.testmod(manifest_module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


@pytest.mark.parametrize("cls", USER_TYPES)
def test_a_user_type_resolves_under_its_manifest(cls: type) -> None:
    assert is_user_type(cls)
    assert _resolve(manifest_of(cls)) is cls


def test_builtins_are_named_but_are_not_user_types() -> None:
    for manifest, cls in BUILTIN_TYPES.items():
        assert manifest_of(cls) == manifest
        assert not is_user_type(cls)
    assert "builtins:NoneType" in BUILTIN_TYPES


@pytest.mark.parametrize(
    ("manifest", "reason"),
    [
        ("nocolon", "malformed manifest"),
        (":Point", "malformed manifest"),
        (f"{HERE}:", "malformed manifest"),
        ("casty_never_imported_xyz:Foo", "'casty_never_imported_xyz' is not imported"),
        (f"{HERE}:Nope", "no such class"),
        (f"{HERE}:Outer.Missing", "has no attribute 'Outer.Missing'"),
        (f"{HERE}:not_a_class", "is not a message type"),
        (f"{HERE}:not_a_class.<locals>.X", "'not_a_class' is not a class (register it)"),
        (f"{HERE}:Alias", f"it is '{HERE}:Point'"),
        ("builtins:object", "is not a message type"),
        ("enum:Enum", "is not a message type"),
        ("msgspec:Struct", "is not a message type"),
        ("os:path.join", "'path' is not a class"),
    ],
)
def test_what_is_refused_and_why(manifest: str, reason: str) -> None:
    with pytest.raises(ManifestError, match=re.escape(reason)):
        _resolve(manifest)


# Manifests that name many kinds of things, and arbitrary text.
_MODULES = [HERE, "builtins", "os", "enum", "msgspec", "casty_never_imported_xyz", "", "a.b"]
_QUALNAMES = [
    "Point",
    "Record",
    "Data",
    "Color",
    "Outer.Inner",
    "Outer.Missing",
    "Alias",
    "not_a_class",
    "not_a_class.<locals>.X",
    "object",
    "int",
    "system",
    "path.join",
    "Struct",
    "Enum",
    "",
    "__dict__",
    "Outer.__dict__",
]
manifests = st.one_of(
    st.builds(
        lambda m, q, sep: f"{m}{sep}{q}",
        st.sampled_from(_MODULES),
        st.sampled_from(_QUALNAMES),
        st.sampled_from([":", ":", ".", "::"]),
    ),
    st.text(max_size=40),
)


@settings(max_examples=300)
@given(manifests)
def test_resolving_never_imports_and_returns_only_user_types_under_their_name(
    manifest: str,
) -> None:
    modules = set(sys.modules)
    try:
        found = _resolve(manifest)
    except ManifestError:
        pass
    else:
        assert is_user_type(found)
        assert manifest_of(found) == manifest
    assert set(sys.modules) == modules


@settings(max_examples=300)
@given(manifests)
def test_the_wire_and_the_journals_resolve_alike(manifest: str) -> None:
    """A manifest names the same class for a (non-strict) codec and a journal, or neither."""
    registry = TypeRegistry()
    codec = ValueCodec()
    try:
        on_wire: object = registry.resolve(manifest)
    except SerializationError:
        on_wire = None
    try:
        in_journal: object = codec._resolve(manifest)
    except JournalError:
        in_journal = None
    assert on_wire == in_journal or manifest == "casty_trio:ActorRef"  # refs: the wire only
