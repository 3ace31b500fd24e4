"""A durable event journal in one SQLite file (WAL mode), driven from a worker thread."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from types import TracebackType
from typing import Self, TypeVar

import trio

from .._errors import JournalClosedError, JournalError
from ._journal import PersistedEvent, Snapshot
from ._manifest import ValueCodec

__all__ = ["SqliteJournal"]

T = TypeVar("T")

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS casty_events (
        entity_id TEXT NOT NULL,
        sequence_nr INTEGER NOT NULL,
        manifest TEXT NOT NULL,
        payload BLOB NOT NULL,
        timestamp REAL NOT NULL,
        PRIMARY KEY (entity_id, sequence_nr)
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS casty_snapshots (
        entity_id TEXT NOT NULL PRIMARY KEY,
        sequence_nr INTEGER NOT NULL,
        manifest TEXT NOT NULL,
        payload BLOB NOT NULL,
        timestamp REAL NOT NULL
    ) WITHOUT ROWID""",
)
_INSERT_EVENT = "INSERT OR IGNORE INTO casty_events VALUES (?, ?, ?, ?, ?)"
_SELECT_EVENTS = (
    "SELECT sequence_nr, manifest, payload, timestamp FROM casty_events "
    "WHERE entity_id = ? AND sequence_nr >= ? ORDER BY sequence_nr"
)
_HIGHEST = "SELECT MAX(sequence_nr) FROM casty_events WHERE entity_id = ?"
_UPSERT_SNAPSHOT = """INSERT INTO casty_snapshots VALUES (?, ?, ?, ?, ?)
    ON CONFLICT (entity_id) DO UPDATE SET
        sequence_nr = excluded.sequence_nr, manifest = excluded.manifest,
        payload = excluded.payload, timestamp = excluded.timestamp
    WHERE excluded.sequence_nr >= casty_snapshots.sequence_nr"""
_SELECT_SNAPSHOT = (
    "SELECT sequence_nr, manifest, payload, timestamp FROM casty_snapshots WHERE entity_id = ?"
)
_MAX_INTEGER = 2**63 - 1  # SQLite's INTEGER is 64-bit signed


class SqliteJournal:
    """A durable :class:`~casty_trio.EventJournal` in a SQLite database file.

    The embedded default for durable entities: no server, one file (plus SQLite's ``-wal`` and
    ``-shm`` files next to it) that survives restarts of the process. The database runs in WAL
    mode with ``synchronous=FULL``, so a persisted event survives a crash of the process or of
    the machine. Tables ``casty_events`` and ``casty_snapshots`` are created when missing.

    Events and states are stored as a manifest (``"module:QualName"`` of their class) plus
    msgpack bytes (msgspec). They may be msgspec Structs, attrs classes, dataclasses, Enums or
    builtin values; nested values decode by their field annotations (an ``Any`` field comes
    back as builtins). Actor refs cannot be stored. Reading resolves a manifest among
    ``types`` and then among classes of modules already imported: it never imports a module,
    never unpickles and never runs code. Classes defined inside functions must be passed in
    ``types``.

    Every SQLite call runs in a worker thread (``trio.to_thread.run_sync``) over one connection
    per journal, one call at a time (a :class:`trio.Lock`), so the event loop never blocks.
    Every method is a checkpoint; a cancelled call still waits for its running SQLite statement
    to finish (a transaction is never left half done). The connection is opened lazily by the
    first call, or eagerly by ``async with``. Several journals, in one process or in several,
    may use the same file: SQLite serializes their writes (waiting up to ``busy_timeout``).

    SQLite stores text as UTF-8 and integers in 64 bits: an entity id that is not valid Unicode
    (a lone surrogate) or a sequence number of 2**63 or more makes a call raise
    :class:`~casty_trio.JournalError`, like any storage failure.

    Args:
        path: The database file (created if missing), or ``":memory:"`` for a private,
            non-durable database.
        types: Event and state classes to resolve first when reading; required for classes
            whose module is not imported at read time or that are defined inside functions.
        busy_timeout: Seconds a write waits for another connection's lock before failing.

    Raises:
        TypeError: An entry of ``types`` cannot be stored.

    Examples:
        >>> import attrs, trio
        >>> @attrs.frozen
        ... class Deposited:
        ...     amount: int
        >>> async def main(path: str) -> list[object]:
        ...     async with SqliteJournal(path, types=[Deposited]) as journal:
        ...         await journal.persist("acc-1", [PersistedEvent(1, Deposited(5), 0.0)])
        ...     async with SqliteJournal(path, types=[Deposited]) as journal:  # reopened
        ...         return [e.event for e in await journal.load("acc-1")]
        >>> import os, tempfile
        >>> with tempfile.TemporaryDirectory() as directory:
        ...     trio.run(main, os.path.join(directory, "bank.db"))
        [Deposited(amount=5)]
    """

    __slots__ = ("_busy_timeout", "_closed", "_codec", "_connection", "_lock", "_path")

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        types: Iterable[type] = (),
        busy_timeout: float = 30.0,
    ) -> None:
        self._path = os.fspath(path)
        self._codec = ValueCodec(types)
        self._busy_timeout = busy_timeout
        self._lock = trio.Lock()
        self._connection: sqlite3.Connection | None = None
        self._closed = False

    @property
    def path(self) -> str:
        """The database file."""
        return self._path

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Self:
        await self._run(lambda connection: None)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection; later calls raise :class:`~casty_trio.JournalClosedError`.

        Idempotent. Waits for a call in progress to finish. A checkpoint.
        """
        async with self._lock:
            self._closed = True
            connection, self._connection = self._connection, None
            if connection is not None:
                await trio.to_thread.run_sync(connection.close)

    # ------------------------------------------------------------------ the protocol

    async def persist(self, entity_id: str, events: Sequence[PersistedEvent]) -> None:
        """Store ``events`` in one transaction, skipping sequence numbers already stored.

        Raises:
            JournalError: An event cannot be encoded, SQLite cannot store a value (an id that is
                not valid Unicode, a sequence number of 2**63 or more), or SQLite failed;
                nothing was stored.
        """
        batch = list(events)
        encode = self._codec.encode

        def write(connection: sqlite3.Connection) -> None:
            for event in batch:
                if not isinstance(event, PersistedEvent):
                    raise TypeError(f"expected PersistedEvent values, got {type(event).__name__}")
            rows = [(entity_id, e.sequence_nr, *encode(e.event), e.timestamp) for e in batch]
            with _transaction(connection):
                connection.executemany(_INSERT_EVENT, rows)

        await self._run(write)

    async def load(self, entity_id: str, from_sequence_nr: int = 0) -> list[PersistedEvent]:
        """Events with ``sequence_nr >= from_sequence_nr``, in order.

        Raises:
            JournalError: SQLite failed, or a stored value cannot be decoded here.
        """
        decode = self._codec.decode
        # SQLite binds 64-bit integers only, and no event is stored beyond that range.
        start = max(from_sequence_nr, 0)

        def read(connection: sqlite3.Connection) -> list[PersistedEvent]:
            if start > _MAX_INTEGER:
                return []
            rows = connection.execute(_SELECT_EVENTS, (entity_id, start)).fetchall()
            return [
                PersistedEvent(number, decode(manifest, payload), timestamp)
                for number, manifest, payload, timestamp in rows
            ]

        return await self._run(read)

    async def save_snapshot(self, entity_id: str, snapshot: Snapshot) -> None:
        """Keep ``snapshot`` unless a newer one is stored.

        Raises:
            JournalError: The state cannot be encoded, or SQLite failed.
        """
        encode = self._codec.encode

        def write(connection: sqlite3.Connection) -> None:
            if not isinstance(snapshot, Snapshot):
                raise TypeError(f"expected a Snapshot, got {type(snapshot).__name__}")
            manifest, payload = encode(snapshot.state)
            row = (entity_id, snapshot.sequence_nr, manifest, payload, snapshot.timestamp)
            with _transaction(connection):
                connection.execute(_UPSERT_SNAPSHOT, row)

        await self._run(write)

    async def load_snapshot(self, entity_id: str) -> Snapshot | None:
        """The latest snapshot, or None.

        Raises:
            JournalError: SQLite failed, or the stored state cannot be decoded here.
        """
        decode = self._codec.decode

        def read(connection: sqlite3.Connection) -> Snapshot | None:
            row = connection.execute(_SELECT_SNAPSHOT, (entity_id,)).fetchone()
            if row is None:
                return None
            number, manifest, payload, timestamp = row
            return Snapshot(number, decode(manifest, payload), timestamp)

        return await self._run(read)

    async def highest_sequence_nr(self, entity_id: str) -> int:
        """The highest stored sequence number; 0 when none.

        Raises:
            JournalError: SQLite failed.
        """

        def read(connection: sqlite3.Connection) -> int:
            (highest,) = connection.execute(_HIGHEST, (entity_id,)).fetchone()
            return int(highest or 0)

        return await self._run(read)

    # ------------------------------------------------------------------ plumbing

    async def _run(self, job: Callable[[sqlite3.Connection], T]) -> T:
        async with self._lock:
            if self._closed:
                raise JournalClosedError(f"SQLite journal {self._path!r} is closed")
            try:
                return await trio.to_thread.run_sync(self._call, job)
            except sqlite3.Error as exc:
                raise JournalError(f"SQLite journal {self._path!r}: {exc}") from exc
            except (UnicodeEncodeError, OverflowError) as exc:
                # Raised by SQLite's binding of a parameter: a str with a lone surrogate, an int
                # beyond 64 bits. The transaction was rolled back.
                raise JournalError(
                    f"SQLite journal {self._path!r} cannot store a value: {exc}"
                ) from exc

    def _call(self, job: Callable[[sqlite3.Connection], T]) -> T:
        """Runs in the worker thread, holding the lock."""
        connection = self._connection
        if connection is None:
            connection = self._connection = _connect(self._path, self._busy_timeout)
        return job(connection)


def _connect(path: str, busy_timeout: float) -> sqlite3.Connection:
    connection = sqlite3.connect(
        path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
    )
    try:
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA synchronous = FULL")
        with _transaction(connection):
            for statement in _SCHEMA:
                connection.execute(statement)
    except BaseException:
        connection.close()
        raise
    return connection


@contextmanager
def _transaction(connection: sqlite3.Connection) -> Iterator[None]:
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise
