"""The docstring examples of the persistence package (and the Behaviors facade) run."""

from __future__ import annotations

import doctest
import importlib

import pytest

import casty_trio


@pytest.mark.parametrize(
    "module",
    [
        "casty_trio._behaviors",
        "casty_trio.persistence._event_sourced",
        "casty_trio.persistence._journal",
        "casty_trio.persistence._manifest",
        "casty_trio.persistence._memory",
        "casty_trio.persistence._sqlite",
    ],
)
def test_docstring_examples(module: str) -> None:
    globs = {name: getattr(casty_trio, name) for name in casty_trio.__all__}
    result = doctest.testmod(
        importlib.import_module(module), extraglobs=globs, optionflags=doctest.ELLIPSIS
    )
    assert result.failed == 0
