"""Messages for remoting tests: defined at module level so the receiving node can resolve them."""

from __future__ import annotations

from typing import Any

import attrs

from casty_trio import ActorRef


@attrs.frozen
class Ping:
    n: int
    reply_to: ActorRef[Pong]


@attrs.frozen
class Pong:
    n: int
    sender: ActorRef[Ping] | None = None


@attrs.frozen
class Note:
    text: str


@attrs.frozen
class Seq:
    """One numbered message of a stream, for ordering tests."""

    sender: str
    n: int


@attrs.frozen
class Blob:
    """A message whose size the test chooses."""

    data: bytes


@attrs.frozen
class Holder:
    """A message with an ``Any`` field: whatever sits in it must be encodable."""

    value: Any


@attrs.frozen
class SlowPing:
    """Reply with a :class:`Pong` after ``delay`` seconds."""

    n: int
    delay: float
    reply_to: ActorRef[Pong]


@attrs.frozen
class Gather:
    """Refs nested in a tuple and a dict; the receiver answers every one, then ``reply_to``."""

    n: int
    refs: tuple[ActorRef[Pong], ...]
    table: dict[str, ActorRef[Pong]]
    reply_to: ActorRef[Gathered]


@attrs.frozen
class Gathered:
    """Refs to the answering node's actors, nested in a tuple and a dict."""

    n: int
    refs: tuple[ActorRef[Ping], ...]
    table: dict[str, ActorRef[Ping]]


class NotAMessage:
    """A plain class: neither a Struct, nor attrs, nor a dataclass."""

    def __init__(self, value: int) -> None:
        self.value = value
