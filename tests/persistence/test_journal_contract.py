"""The EventJournal contract, run against every journal of the package."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from casty_trio import EventJournal, PersistedEvent, Snapshot

from ._events import Account, Color, Deposited, Renamed, Tagged, Withdrawn


def events(*numbers: int, prefix: str = "e") -> list[PersistedEvent]:
    return [PersistedEvent(n, f"{prefix}{n}", float(n)) for n in numbers]


def numbers(loaded: list[PersistedEvent]) -> list[int]:
    return [e.sequence_nr for e in loaded]


async def test_unknown_entity_is_empty(journal: EventJournal) -> None:
    assert await journal.load("nobody") == []
    assert await journal.load_snapshot("nobody") is None
    assert await journal.highest_sequence_nr("nobody") == 0


async def test_persist_then_load_round_trips_every_event_kind(journal: EventJournal) -> None:
    payloads: list[Any] = [
        Deposited(10),
        Withdrawn(3, note="rent"),
        Renamed("savings"),
        Tagged(("a", "b")),
        Color.blue,
        Account(7, (Deposited(7),)),
        42,
        2.5,
        "text",
        b"\x00bytes",
        True,
        None,
        [1, "two"],
        {"k": [1, 2]},
        (1, "x"),
    ]
    batch = [PersistedEvent(n, p, 1000.0 + n) for n, p in enumerate(payloads, start=1)]
    await journal.persist("acc", batch)
    assert await journal.load("acc") == batch
    assert await journal.highest_sequence_nr("acc") == len(payloads)


async def test_load_is_ordered_whatever_the_persist_order(journal: EventJournal) -> None:
    await journal.persist("a", events(3, 1))
    await journal.persist("a", events(5, 2, 4))
    assert numbers(await journal.load("a")) == [1, 2, 3, 4, 5]


async def test_persist_is_idempotent_by_sequence_nr(journal: EventJournal) -> None:
    await journal.persist("a", events(1, 2))
    await journal.persist("a", [PersistedEvent(2, "duplicate", 99.0), *events(3)])
    await journal.persist("a", events(1, 2, 3))  # a whole batch delivered twice
    loaded = await journal.load("a")
    assert loaded == events(1, 2, 3)
    assert await journal.highest_sequence_nr("a") == 3


async def test_duplicates_within_one_call_keep_the_first(journal: EventJournal) -> None:
    await journal.persist("a", [PersistedEvent(1, "first", 0.0), PersistedEvent(1, "second", 0.0)])
    assert [e.event for e in await journal.load("a")] == ["first"]


async def test_from_sequence_nr_is_inclusive(journal: EventJournal) -> None:
    await journal.persist("a", events(1, 2, 3, 4))
    assert numbers(await journal.load("a", 0)) == [1, 2, 3, 4]
    assert numbers(await journal.load("a", 1)) == [1, 2, 3, 4]
    assert numbers(await journal.load("a", 3)) == [3, 4]
    assert numbers(await journal.load("a", 4)) == [4]
    assert await journal.load("a", 5) == []


async def test_gaps_are_allowed(journal: EventJournal) -> None:
    await journal.persist("a", events(1, 7))
    assert numbers(await journal.load("a")) == [1, 7]
    assert numbers(await journal.load("a", 2)) == [7]
    assert await journal.highest_sequence_nr("a") == 7
    await journal.persist("a", events(4))
    assert numbers(await journal.load("a")) == [1, 4, 7]


async def test_empty_persist_is_a_no_op(journal: EventJournal) -> None:
    await journal.persist("a", [])
    assert await journal.load("a") == []
    assert await journal.highest_sequence_nr("a") == 0


async def test_entities_are_independent(journal: EventJournal) -> None:
    await journal.persist("a", events(1, 2, prefix="a"))
    await journal.persist("b", events(1, prefix="b"))
    await journal.save_snapshot("a", Snapshot(2, "state-a", 0.0))
    assert [e.event for e in await journal.load("a")] == ["a1", "a2"]
    assert [e.event for e in await journal.load("b")] == ["b1"]
    assert await journal.highest_sequence_nr("b") == 1
    assert await journal.load_snapshot("b") is None


async def test_loaded_list_is_a_copy(journal: EventJournal) -> None:
    await journal.persist("a", events(1, 2))
    loaded = await journal.load("a")
    loaded.clear()
    assert numbers(await journal.load("a")) == [1, 2]


async def test_latest_snapshot_wins(journal: EventJournal) -> None:
    await journal.save_snapshot("a", Snapshot(5, Account(5), 1.0))
    assert await journal.load_snapshot("a") == Snapshot(5, Account(5), 1.0)
    await journal.save_snapshot("a", Snapshot(10, Account(10, (Deposited(1),)), 2.0))
    assert await journal.load_snapshot("a") == Snapshot(10, Account(10, (Deposited(1),)), 2.0)
    await journal.save_snapshot("a", Snapshot(7, Account(7), 3.0))  # older: ignored
    assert await journal.load_snapshot("a") == Snapshot(10, Account(10, (Deposited(1),)), 2.0)
    await journal.save_snapshot("a", Snapshot(10, Account(11), 4.0))  # equal: replaces
    assert await journal.load_snapshot("a") == Snapshot(10, Account(11), 4.0)


async def test_snapshot_states_of_builtin_types(journal: EventJournal) -> None:
    for n, state in enumerate([0, "s", {"balance": 3}, [1, 2], None], start=1):
        await journal.save_snapshot("a", Snapshot(n, state, 0.0))
        assert (await journal.load_snapshot("a")) == Snapshot(n, state, 0.0)


async def test_snapshots_do_not_change_events(journal: EventJournal) -> None:
    await journal.persist("a", events(1, 2))
    await journal.save_snapshot("a", Snapshot(2, "s", 0.0))
    assert numbers(await journal.load("a")) == [1, 2]
    assert await journal.highest_sequence_nr("a") == 2


async def test_every_method_is_a_checkpoint(journal: EventJournal) -> None:
    calls = [
        lambda: journal.persist("a", events(1)),
        lambda: journal.load("a"),
        lambda: journal.save_snapshot("a", Snapshot(1, "s", 0.0)),
        lambda: journal.load_snapshot("a"),
        lambda: journal.highest_sequence_nr("a"),
    ]
    for call in calls:
        with trio.CancelScope() as scope:
            scope.cancel()
            await call()
        assert scope.cancelled_caught


async def test_concurrent_writers_of_different_entities(journal: EventJournal) -> None:
    async def write(entity: str) -> None:
        for n in range(1, 21):
            await journal.persist(entity, events(n, prefix=entity))

    async with trio.open_nursery() as nursery:
        for entity in ("x", "y", "z"):
            nursery.start_soon(write, entity)
    for entity in ("x", "y", "z"):
        assert numbers(await journal.load(entity)) == list(range(1, 21))


def test_values_are_frozen_and_validated() -> None:
    event = PersistedEvent(1, "e", 0.0)
    with pytest.raises(AttributeError):
        event.sequence_nr = 2  # type: ignore[misc]
    with pytest.raises(ValueError):
        PersistedEvent(0, "e", 0.0)
    with pytest.raises(ValueError):
        Snapshot(-1, "s", 0.0)
    assert Snapshot(0, "s", 0.0).sequence_nr == 0
    assert hash(event) == hash(PersistedEvent(1, "e", 0.0))
