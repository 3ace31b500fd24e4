"""Messages for remoting tests: defined at module level so the receiving node can resolve them."""

from __future__ import annotations

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
