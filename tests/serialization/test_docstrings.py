"""The docstring examples of the serialization package run."""

from __future__ import annotations

import doctest
import importlib

import pytest


@pytest.mark.parametrize(
    "module",
    [
        "casty_trio.serialization._codec",
        "casty_trio.serialization._registry",
        "casty_trio.serialization._serializer",
    ],
)
def test_docstring_examples(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
