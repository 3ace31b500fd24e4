"""SqliteJournal specifics: durability, sharing a file, encoding rules, safety, closing."""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import attrs
import msgspec
import pytest
import trio

from casty_trio import (
    JournalClosedError,
    JournalError,
    PersistedEvent,
    Snapshot,
    SqliteJournal,
)

from ._events import Account, Deposited, Withdrawn


async def test_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "bank.db"
    async with SqliteJournal(path) as journal:
        await journal.persist("acc", [PersistedEvent(1, Deposited(5), 1.0)])
        await journal.persist("acc", [PersistedEvent(2, Withdrawn(2, "x"), 2.0)])
        await journal.save_snapshot("acc", Snapshot(1, Account(5, (Deposited(5),)), 3.0))
    reopened = SqliteJournal(str(path))
    try:
        assert await reopened.load("acc") == [
            PersistedEvent(1, Deposited(5), 1.0),
            PersistedEvent(2, Withdrawn(2, "x"), 2.0),
        ]
        assert await reopened.load_snapshot("acc") == Snapshot(1, Account(5, (Deposited(5),)), 3.0)
        assert await reopened.highest_sequence_nr("acc") == 2
    finally:
        await reopened.aclose()


async def test_uses_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "wal.db"
    async with SqliteJournal(path) as journal:
        await journal.persist("a", [PersistedEvent(1, 1, 0.0)])
        connection = sqlite3.connect(path)
        try:
            (mode,) = connection.execute("PRAGMA journal_mode").fetchone()
        finally:
            connection.close()
    assert mode == "wal"


async def test_opens_lazily(tmp_path: Path) -> None:
    path = tmp_path / "lazy.db"
    journal = SqliteJournal(path)
    assert journal.path == str(path)
    assert not path.exists()
    assert await journal.highest_sequence_nr("a") == 0
    assert path.exists()
    await journal.aclose()


async def test_several_journals_share_one_file(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    async with SqliteJournal(path) as one, SqliteJournal(path) as two:

        async def write(journal: SqliteJournal, entity: str) -> None:
            for n in range(1, 31):
                await journal.persist(entity, [PersistedEvent(n, n, 0.0)])

        async with trio.open_nursery() as nursery:
            nursery.start_soon(write, one, "from-one")
            nursery.start_soon(write, two, "from-two")
            nursery.start_soon(write, two, "from-two-again")
        # each sees what the other wrote
        assert len(await one.load("from-two")) == 30
        assert len(await two.load("from-one")) == 30
        # both writing the same entity stays idempotent
        await one.persist("same", [PersistedEvent(1, "one", 0.0)])
        await two.persist("same", [PersistedEvent(1, "two", 0.0), PersistedEvent(2, "two", 0.0)])
        assert [e.event for e in await one.load("same")] == ["one", "two"]


async def test_closed_journal_raises(tmp_path: Path) -> None:
    journal = SqliteJournal(tmp_path / "closed.db")
    await journal.persist("a", [PersistedEvent(1, 1, 0.0)])
    await journal.aclose()
    await journal.aclose()  # idempotent
    with pytest.raises(JournalClosedError):
        await journal.load("a")
    with pytest.raises(JournalError):  # JournalClosedError is a JournalError
        await journal.persist("a", [PersistedEvent(2, 2, 0.0)])


async def test_closing_an_unopened_journal(tmp_path: Path) -> None:
    journal = SqliteJournal(tmp_path / "never.db")
    await journal.aclose()
    assert not (tmp_path / "never.db").exists()


async def test_unstorable_event_stores_nothing_of_the_batch(tmp_path: Path) -> None:
    async with SqliteJournal(tmp_path / "j.db") as journal:
        batch = [PersistedEvent(1, Deposited(1), 0.0), PersistedEvent(2, object(), 0.0)]
        with pytest.raises(JournalError, match="builtins:object"):
            await journal.persist("a", batch)
        with pytest.raises(JournalError):
            await journal.persist("a", [PersistedEvent(1, Deposited(lambda: 1), 0.0)])  # type: ignore[arg-type]
        with pytest.raises(JournalError):
            await journal.save_snapshot("a", Snapshot(1, {1, object()}, 0.0))
        assert await journal.load("a") == []
        assert await journal.load_snapshot("a") is None


async def test_classes_defined_in_functions_need_types(tmp_path: Path) -> None:
    @attrs.frozen
    class Local:
        value: int

    class LocalStruct(msgspec.Struct):
        value: int

    path = tmp_path / "local.db"
    async with SqliteJournal(path) as journal:
        await journal.persist("a", [PersistedEvent(1, Local(1), 0.0)])
        with pytest.raises(JournalError, match="types="):
            await journal.load("a")
    async with SqliteJournal(path, types=[Local, LocalStruct]) as journal:
        await journal.persist("a", [PersistedEvent(2, LocalStruct(2), 0.0)])
        assert [e.event for e in await journal.load("a")] == [Local(1), LocalStruct(2)]


def test_types_must_be_storable() -> None:
    with pytest.raises(TypeError):
        SqliteJournal(":memory:", types=[object])


def _insert_raw(path: Path, manifest: str, payload: bytes) -> None:
    connection = sqlite3.connect(path)
    try:
        with connection:
            connection.execute(
                "INSERT INTO casty_events VALUES (?, ?, ?, ?, ?)", ("a", 1, manifest, payload, 0.0)
            )
    finally:
        connection.close()


@pytest.mark.parametrize(
    ("manifest", "reason"),
    [
        ("casty_never_imported_module_xyz:Evil", "not imported"),
        ("os:system", "not a storable type"),
        ("builtins:object", "not a storable type"),
        ("tests.persistence._events:Nope", "no such class"),
        ("no-colon", "malformed"),
        ("tests.persistence._events:Deposited", "cannot read"),  # bytes don't match the type
    ],
)
async def test_reading_never_imports_or_runs_code(
    tmp_path: Path, manifest: str, reason: str
) -> None:
    path = tmp_path / "evil.db"
    async with SqliteJournal(path) as journal:
        await journal.highest_sequence_nr("a")  # creates the schema
        _insert_raw(path, manifest, msgspec.msgpack.encode("ls"))
        with pytest.raises(JournalError, match=reason):
            await journal.load("a")
    assert "casty_never_imported_module_xyz" not in sys.modules


async def test_storage_errors_are_journal_errors(tmp_path: Path) -> None:
    journal = SqliteJournal(tmp_path)  # a directory cannot be opened as a database
    with pytest.raises(JournalError) as info:
        await journal.load("a")
    assert isinstance(info.value.__cause__, sqlite3.Error)
    await journal.aclose()


async def test_values_sqlite_cannot_bind_are_journal_errors(tmp_path: Path) -> None:
    unencodable = "acc-\udc80"  # a lone surrogate: no UTF-8 for SQLite's TEXT
    too_big = 2**63  # beyond SQLite's 64-bit INTEGER
    async with SqliteJournal(tmp_path / "j.db") as journal:
        calls: list[Callable[[], Awaitable[object]]] = [
            lambda: journal.persist(unencodable, [PersistedEvent(1, Deposited(1), 0.0)]),
            lambda: journal.load(unencodable),
            lambda: journal.save_snapshot(unencodable, Snapshot(1, 1, 0.0)),
            lambda: journal.load_snapshot(unencodable),
            lambda: journal.highest_sequence_nr(unencodable),
            lambda: journal.persist(
                "a", [PersistedEvent(1, Deposited(1), 0.0), PersistedEvent(too_big, 2, 0.0)]
            ),
            lambda: journal.save_snapshot("a", Snapshot(too_big, 1, 0.0)),
        ]
        for call in calls:
            with pytest.raises(JournalError) as info:
                await call()
            assert isinstance(info.value.__cause__, UnicodeEncodeError | OverflowError)
        assert await journal.load("a") == []  # the batch with the bad number stored nothing
        await journal.persist("a", [PersistedEvent(2**63 - 1, Deposited(1), 0.0)])
        assert await journal.load("a", too_big) == []  # nothing can lie beyond the range
        assert [e.sequence_nr for e in await journal.load("a", 2**63 - 1)] == [2**63 - 1]
        assert [e.sequence_nr for e in await journal.load("a", -(2**70))] == [2**63 - 1]
