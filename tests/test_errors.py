"""The error tree: every error is exported, drawn in the tree, documented and picklable."""

from __future__ import annotations

import copy
import doctest
import pickle
import re
from pathlib import Path

import pytest

import casty_trio
import casty_trio.cluster
import casty_trio.remote
from casty_trio import (
    CastyError,
    ConnectionClosed,
    MembershipTimeoutError,
    NodeAddress,
    NodeDownedError,
    ReplicationError,
    ReplicationFencedError,
    ReplicationTimeoutError,
    TransportError,
)
from casty_trio import _errors as errors_module

API_MD = Path(__file__).resolve().parent.parent / "docs" / "api.md"


def _errors() -> list[type[BaseException]]:
    found = [
        obj
        for obj in vars(errors_module).values()
        if isinstance(obj, type) and issubclass(obj, CastyError)
    ]
    assert CastyError in found
    return found


def test_every_error_is_exported_from_the_facade() -> None:
    for error in _errors():
        assert error.__module__ == "casty_trio._errors"
        assert getattr(casty_trio, error.__name__) is error
        assert error.__name__ in casty_trio.__all__
        assert error.__name__ in errors_module.__all__


def test_no_error_is_defined_outside_the_errors_module() -> None:
    for module in (casty_trio, casty_trio.cluster, casty_trio.remote):
        for name in module.__all__:
            obj = getattr(module, name)
            if isinstance(obj, type) and issubclass(obj, CastyError):
                assert obj.__module__ == "casty_trio._errors", name


def test_the_packages_keep_their_names_for_the_moved_errors() -> None:
    assert casty_trio.cluster.NodeDownedError is NodeDownedError
    assert casty_trio.remote.TransportError is TransportError
    assert casty_trio.remote.ConnectionClosed is ConnectionClosed


def test_the_tree_in_the_module_docstring_is_complete_and_right() -> None:
    doc = errors_module.__doc__
    assert doc is not None
    drawn: dict[str, str] = {}  # error -> its parent in the drawing
    parents: list[str] = []  # the names along the current branch, by depth
    for line in doc.split("The tree::", 1)[1].split("\n\n", 2)[1].splitlines():
        match = re.match(r"^(\s*(?:[│ ]   )*)(?:[├└]── )?(\w+)", line)
        assert match is not None, line
        depth = (len(match.group(1)) - 4) // 4 + 1 if "──" in line else 0
        name = match.group(2)
        del parents[depth:]
        drawn[name] = parents[-1] if parents else ""
        parents.append(name)
    assert set(drawn) == {error.__name__ for error in _errors()}
    for error in _errors():
        if error is CastyError:
            continue
        casty_bases = [b for b in error.__bases__ if issubclass(b, CastyError)]
        assert [b.__name__ for b in casty_bases] == [drawn[error.__name__]], error


def test_every_error_is_in_the_api_reference() -> None:
    reference = API_MD.read_text()
    for error in _errors():
        assert f"::: casty_trio.{error.__name__}\n" in reference, error.__name__


@pytest.mark.parametrize(
    "error",
    [
        MembershipTimeoutError("only 2 of 3 members up after 5s", needed=3, up=2),
        NodeDownedError("node n:1 was downed by the cluster", NodeAddress("n", 1)),
        ReplicationFencedError("refused", entity_id="a", shard=3, sequence_nr=9, epoch=4),
        ReplicationTimeoutError(
            "1 of 2 acks", entity_id="a", shard=3, sequence_nr=9, needed=2, acked=1
        ),
        ConnectionClosed(1000, "bye", local=True),
    ],
    ids=type,
)
def test_structured_errors_keep_their_fields_when_pickled_and_copied(
    error: CastyError,
) -> None:
    for clone in (pickle.loads(pickle.dumps(error)), copy.copy(error)):
        assert type(clone) is type(error)
        assert vars(clone) == vars(error)
        assert str(clone) == str(error)
        assert clone.args == error.args


def test_structured_errors_read_as_their_message() -> None:
    exc = ReplicationTimeoutError(
        "entity 'a' (shard 3): 1 of 2 acks",
        entity_id="a",
        shard=3,
        sequence_nr=9,
        needed=2,
        acked=1,
    )
    assert str(exc) == "entity 'a' (shard 3): 1 of 2 acks"
    assert exc.errno is None  # TimeoutError's OSError fields are not filled from the arguments
    assert isinstance(exc, ReplicationError) and isinstance(exc, TimeoutError)
    fenced = ReplicationFencedError("refused", entity_id="a", shard=3, sequence_nr=9, epoch=4)
    assert isinstance(fenced, ReplicationError) and not isinstance(fenced, TimeoutError)
    timeout = MembershipTimeoutError("only 1 of 2", needed=2, up=1)
    assert (str(timeout), timeout.errno, timeout.filename) == ("only 1 of 2", None, None)


def test_docstring_examples() -> None:
    globs = {name: getattr(casty_trio, name) for name in casty_trio.__all__}
    result = doctest.testmod(errors_module, extraglobs=globs, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
