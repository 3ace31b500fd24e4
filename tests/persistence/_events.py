"""Event and state types used by the persistence tests (module-level, so journals resolve them)."""

from __future__ import annotations

import dataclasses
import enum

import attrs
import msgspec


@attrs.frozen
class Deposited:
    amount: int


@attrs.frozen
class Withdrawn:
    amount: int
    note: str = ""


class Renamed(msgspec.Struct, frozen=True):
    name: str


@dataclasses.dataclass(frozen=True)
class Tagged:
    tags: tuple[str, ...]


class Color(enum.Enum):
    red = "red"
    blue = "blue"


@attrs.frozen
class Account:
    """A state type with nested user values."""

    balance: int
    history: tuple[Deposited, ...] = ()
