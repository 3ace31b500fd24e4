"""Internal messages that travel through a mailbox but never reach a behavior."""

from __future__ import annotations

from typing import Any

__all__ = ["_Control"]


class _Control:
    """An internal message travelling through the mailbox, never shown to behaviors."""

    __slots__ = ("kind", "payload")

    TIMER = 0  # payload: _Timer
    TERMINATED = 1  # payload: the watched ActorRef
    PIPE_FAILED = 2  # payload: the exception raised by a pipe_to_self job
    CHILD_FAILED = 3  # payload: the exception a child escalated
    STOP = 4  # payload: None; stop once every message queued before it was handled

    def __init__(self, kind: int, payload: Any) -> None:
        self.kind = kind
        self.payload = payload
