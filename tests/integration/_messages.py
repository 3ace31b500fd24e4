"""Messages of the two-process tests, importable under the same name in both processes."""

from __future__ import annotations

import attrs

from casty_trio import ActorRef


@attrs.frozen
class Ping:
    """Ask the echo node's actor for a :class:`Pong`."""

    n: int
    reply_to: ActorRef[Pong]


@attrs.frozen
class Pong:
    """The echo's answer; ``sender`` is the echo actor's own ref (a ref from the other node)."""

    n: int
    sender: ActorRef[Ping]


@attrs.frozen
class Note:
    """A payload the echo node passes on."""

    text: str


@attrs.frozen
class Forward:
    """Tell ``note`` to every ref in ``to`` (refs nested in a dict, back to the asking node)."""

    note: Note
    to: dict[str, ActorRef[Note]]
