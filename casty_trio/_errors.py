"""The exceptions casty_trio raises, all rooted at :class:`CastyError`.

The tree::

    CastyError
    ├── ActorSystemError (also RuntimeError)   the system is not running, or was entered twice
    ├── AskTimeoutError (also TimeoutError)    no reply arrived before an ask's deadline
    ├── BarrierTimeoutError (also TimeoutError) a cluster barrier was not complete in time
    ├── ConfigError (also ValueError)          a configuration file or value is invalid
    ├── JournalError                           an event journal could not store or load
    │   └── JournalClosedError                 the journal was closed with ``aclose()``
    ├── MailboxFullError                       a bounded mailbox with the ``reject`` policy is full
    ├── SerializationError                     a message cannot be encoded, or a payload decoded
    └── StashOverflowError                     a stash buffer is at capacity

Catch :class:`CastyError` to handle anything the framework itself raised. Exceptions raised by
user behaviors are never wrapped: they travel through supervision unchanged.
"""

from __future__ import annotations

__all__ = [
    "ActorSystemError",
    "AskTimeoutError",
    "BarrierTimeoutError",
    "CastyError",
    "ConfigError",
    "JournalClosedError",
    "JournalError",
    "MailboxFullError",
    "ReplicationTimeoutError",
    "SerializationError",
    "StashOverflowError",
]


class CastyError(Exception):
    """Root of every error raised by casty_trio itself.

    Examples:
        >>> issubclass(AskTimeoutError, CastyError)
        True
    """


class ActorSystemError(CastyError, RuntimeError):
    """The actor system is in the wrong state for the call.

    Raised when spawning or asking before the system was entered or after it shut down, and when
    an :class:`~casty_trio.ActorSystem` is entered a second time.
    """


class AskTimeoutError(CastyError, TimeoutError):
    """An ask got no reply before its timeout.

    It is also a built-in :class:`TimeoutError`, so ``except TimeoutError`` catches it.

    Examples:
        >>> isinstance(AskTimeoutError("no reply"), TimeoutError)
        True
    """


class BarrierTimeoutError(CastyError, TimeoutError):
    """Fewer participants than expected reached a cluster barrier before its timeout.

    Raised by :meth:`ClusteredActorSystem.barrier <casty_trio.ClusteredActorSystem.barrier>`;
    the call no longer counts as a participant once it is raised. It is also a built-in
    :class:`TimeoutError`.

    Examples:
        >>> isinstance(BarrierTimeoutError("2 of 3 arrived"), TimeoutError)
        True
    """


class ConfigError(CastyError, ValueError):
    """The configuration is invalid; the message names each offending key."""


class JournalError(CastyError):
    """An event journal failed to store or load events or snapshots ("it broke").

    Journals map their storage's own errors (``sqlite3.Error``, encoding errors, ...) to this
    class at their boundary, chaining the original as ``__cause__``. In an event-sourced actor a
    failed persist never runs the command's ``reply``; it runs ``on_failure`` and fails the actor
    with the journal's exception, so supervision decides what happens next.

    Examples:
        >>> issubclass(JournalClosedError, JournalError)
        True
    """


class JournalClosedError(JournalError):
    """The journal was used after its ``aclose()`` ("we closed it")."""


class MailboxFullError(CastyError):
    """A bounded mailbox using ``MailboxOverflowStrategy.reject`` refused a message."""


class ReplicationTimeoutError(CastyError, TimeoutError):
    """A replicated write got fewer replica acknowledgements than ``min_acks`` in time.

    Passed to the command's ``on_failure`` when a sharded event-sourced entity with
    ``ReplicationConfig(min_acks=k)`` did not hear from ``k`` replicas within ``ack_timeout``.
    The write is not confirmed (``reply`` does not run), but its events stay persisted on the
    primary and keep replicating. It is also a built-in :class:`TimeoutError`.

    Examples:
        >>> isinstance(ReplicationTimeoutError("1 of 2 acks"), TimeoutError)
        True
    """


class SerializationError(CastyError):
    """A message could not be encoded for the wire, or a received payload could not be decoded.

    The message names the type (or the manifest received) and the reason. Raised at the ``tell``
    that sends an unencodable message to a remote actor; on the receiving side the frame item is
    dropped and logged, never delivered half-decoded.

    Examples:
        >>> str(SerializationError("cannot encode app:Msg: function is not serializable"))
        'cannot encode app:Msg: function is not serializable'
    """


class StashOverflowError(CastyError):
    """:meth:`StashBuffer.stash <casty_trio.StashBuffer.stash>` was called on a full buffer."""
