"""The exceptions casty_trio raises, all rooted at :class:`CastyError`.

The tree::

    CastyError
    ├── ActorSystemError (also RuntimeError)             the system is not running, or entered twice
    ├── AskTimeoutError (also TimeoutError)              no reply before an ask's deadline
    ├── BarrierTimeoutError (also TimeoutError)          a cluster barrier not complete in time
    ├── ConfigError (also ValueError)                    a configuration file or value is invalid
    ├── JournalError                                     an event journal could not store or load
    │   └── JournalClosedError                           the journal was closed with aclose()
    ├── MailboxFullError                                 a bounded mailbox with "reject" is full
    ├── MembershipTimeoutError (also TimeoutError)       too few members up when a wait timed out
    ├── NodeDownedError                                  the cluster downed this node; it shut down
    ├── ReplicationError                                 a replicated write was not confirmed
    │   ├── ReplicationFencedError                       a replica knows a newer primary
    │   └── ReplicationTimeoutError (also TimeoutError)  too few replica acks in time
    ├── SerializationError                               a message cannot be encoded, or decoded
    ├── StashOverflowError                               a stash buffer is at capacity
    └── TransportError                                   a peer cannot be reached, a listener failed
        └── ConnectionClosed                             a connection is closed (by us or the peer)

Catch :class:`CastyError` to handle anything the framework itself raised. Exceptions raised by
user behaviors are never wrapped: they travel through supervision unchanged.

Errors that describe a situation carry it as attributes besides their message (for example
:attr:`ReplicationTimeoutError.acked` and :attr:`ReplicationTimeoutError.needed`), so handlers
need not parse ``str(exc)``. Every positional argument is kept in ``args``: the errors pickle
and copy like built-in ones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._core import NodeAddress

__all__ = [
    "ActorSystemError",
    "AskTimeoutError",
    "BarrierTimeoutError",
    "CastyError",
    "ConfigError",
    "ConnectionClosed",
    "JournalClosedError",
    "JournalError",
    "MailboxFullError",
    "MembershipTimeoutError",
    "NodeDownedError",
    "ReplicationError",
    "ReplicationFencedError",
    "ReplicationTimeoutError",
    "SerializationError",
    "StashOverflowError",
    "TransportError",
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


class MembershipTimeoutError(CastyError, TimeoutError):
    """Fewer members than awaited were ``up`` when a wait for them timed out.

    Raised by :meth:`ClusteredActorSystem.wait_for <casty_trio.ClusteredActorSystem.wait_for>`
    (and so by entering a system built with ``required_quorum``). It is also a built-in
    :class:`TimeoutError`.

    Args:
        message: What was awaited and what was seen.
        needed: How many ``up`` members the wait asked for.
        up: How many members were ``up`` when it timed out.

    Attributes:
        needed: How many ``up`` members the wait asked for.
        up: How many members were ``up`` when it timed out.

    Examples:
        >>> exc = MembershipTimeoutError("only 2 of 3 members up after 60.0s", needed=3, up=2)
        >>> isinstance(exc, TimeoutError), exc.needed - exc.up
        (True, 1)
        >>> str(exc)
        'only 2 of 3 members up after 60.0s'
    """

    def __init__(self, message: str, needed: int, up: int) -> None:
        # Exception's __init__, not OSError's: TimeoutError's would read the arguments as
        # errno, strerror and filename.
        Exception.__init__(self, message, needed, up)
        self.message = message
        self.needed = needed
        self.up = up

    def __str__(self) -> str:
        return self.message


class NodeDownedError(CastyError):
    """This node was downed by the cluster and shut itself down.

    It lost a split-brain decision, or the others declared it dead. Raised when the node's
    ``async with`` block ends; a node that restarts joins again as a new incarnation.

    Args:
        message: Which node was downed.
        node: The downed node's address (this node's :attr:`self_node
            <casty_trio.ClusteredActorSystem.self_node>`).

    Attributes:
        node: The downed node's address.

    Examples:
        >>> from casty_trio import NodeAddress
        >>> exc = NodeDownedError("node 10.0.0.7:25520 was downed by the cluster",
        ...                       NodeAddress("10.0.0.7", 25520))
        >>> exc.node.port
        25520
    """

    def __init__(self, message: str, node: NodeAddress) -> None:
        super().__init__(message, node)
        self.message = message
        self.node = node

    def __str__(self) -> str:
        return self.message


class ReplicationError(CastyError):
    """A replicated write was persisted on the primary but not confirmed by its replicas.

    Base of the two reasons a sharded event-sourced entity with ``ReplicationConfig(min_acks=k)``
    (``k`` > 0) passes to a command's ``on_failure`` after its events were persisted:
    :class:`ReplicationTimeoutError` and :class:`ReplicationFencedError`. In both cases
    ``reply`` does not run and the write's outcome is unknown to the client. A journal
    failure is a :class:`JournalError` instead.

    Args:
        message: Which write failed and why.
        entity_id: The entity that wrote.
        shard: The entity's shard.
        sequence_nr: The sequence number of the write's last event.

    Attributes:
        entity_id: The entity that wrote.
        shard: The entity's shard.
        sequence_nr: The sequence number of the write's last event.

    Examples:
        >>> issubclass(ReplicationFencedError, ReplicationError)
        True
        >>> issubclass(ReplicationTimeoutError, ReplicationError)
        True
    """

    def __init__(self, message: str, entity_id: str, shard: int, sequence_nr: int) -> None:
        # Exception's __init__, not OSError's (see MembershipTimeoutError).
        Exception.__init__(self, message, entity_id, shard, sequence_nr)
        self.message = message
        self.entity_id = entity_id
        self.shard = shard
        self.sequence_nr = sequence_nr

    def __str__(self) -> str:
        return self.message


class ReplicationFencedError(ReplicationError):
    """A replicated write was refused: a replica knows a newer primary of the entity's shard.

    Every batch of events carries the allocation epoch of the shard's primary, and a replica
    that heard of a newer allocation refuses it (fencing). The node that wrote is then no
    longer the shard's primary: it confirms no write of the shard from then on, fails those
    waiting for acks with this error at once, and stops hosting the shard. The events stay in
    this node's journal, but the new primary has them only if a replica stored them before it
    was fenced; a retry reaches the entity at its new home.

    Args:
        message: Which write was refused and why.
        entity_id: The entity that wrote.
        shard: The entity's shard.
        sequence_nr: The sequence number of the write's last event.
        epoch: The newer allocation epoch of the shard a replica knows.

    Attributes:
        epoch: The newer allocation epoch of the shard a replica knows.

    Examples:
        >>> exc = ReplicationFencedError(
        ...     "entity 'acct-1' (shard 7): refused", entity_id="acct-1", shard=7,
        ...     sequence_nr=12, epoch=4)
        >>> exc.epoch, isinstance(exc, TimeoutError)
        (4, False)
    """

    def __init__(
        self, message: str, entity_id: str, shard: int, sequence_nr: int, epoch: int
    ) -> None:
        super().__init__(message, entity_id, shard, sequence_nr)
        self.args += (epoch,)  # every argument is in args, so that the error pickles
        self.epoch = epoch


class ReplicationTimeoutError(ReplicationError, TimeoutError):
    """A replicated write got fewer replica acknowledgements than ``min_acks`` in time.

    Passed to the command's ``on_failure`` when a sharded event-sourced entity with
    ``ReplicationConfig(min_acks=k)`` did not hear from ``k`` replicas within ``ack_timeout``.
    The write is not confirmed (``reply`` does not run), but its events stay persisted on the
    primary and keep replicating. It is also a built-in :class:`TimeoutError`.

    Args:
        message: Which write timed out, and the replicas it was sent to.
        entity_id: The entity that wrote.
        shard: The entity's shard.
        sequence_nr: The sequence number of the write's last event.
        needed: How many replica acknowledgements the write needed (``min_acks``).
        acked: How many distinct replicas had acknowledged it at the timeout.

    Attributes:
        needed: How many replica acknowledgements the write needed (``min_acks``).
        acked: How many distinct replicas had acknowledged it at the timeout.

    Examples:
        >>> exc = ReplicationTimeoutError(
        ...     "entity 'acct-1' (shard 7): 1 of 2 acks", entity_id="acct-1", shard=7,
        ...     sequence_nr=12, needed=2, acked=1)
        >>> isinstance(exc, TimeoutError), exc.needed - exc.acked
        (True, 1)
    """

    def __init__(
        self, message: str, entity_id: str, shard: int, sequence_nr: int, needed: int, acked: int
    ) -> None:
        super().__init__(message, entity_id, shard, sequence_nr)
        self.args += (needed, acked)  # every argument is in args, so that the error pickles
        self.needed = needed
        self.acked = acked


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


class TransportError(CastyError):
    """A transport failed: a peer cannot be reached, a handshake failed, a listener cannot open.

    Transports map their own errors (``OSError``, TLS and WebSocket protocol errors, ...) to
    this class at their boundary, chaining the original as ``__cause__``; the message names
    the peer or address. A failed connection is a :class:`ConnectionClosed`.

    Examples:
        >>> issubclass(ConnectionClosed, TransportError)
        True
    """


class ConnectionClosed(TransportError):
    """The connection is closed; ``code`` and ``reason`` say who closed it and why.

    ``local`` is True when this side closed it ("we closed it"), False when the peer or the
    network did ("it broke").

    Args:
        code: The close code (a WebSocket close code; see :class:`~casty_trio.remote.CloseCode`).
        reason: The close reason, possibly empty.
        local: Whether this side closed the connection.

    Attributes:
        code: The close code.
        reason: The close reason, possibly empty.
        local: Whether this side closed the connection.

    Examples:
        >>> str(ConnectionClosed(1006, "connection lost"))
        'connection closed by peer: 1006 connection lost'
        >>> ConnectionClosed(1000, local=True).local
        True
    """

    def __init__(self, code: int, reason: str = "", local: bool = False) -> None:
        super().__init__(code, reason, local)
        self.code = code
        self.reason = reason
        self.local = local

    def __str__(self) -> str:
        who = "closed locally" if self.local else "closed by peer"
        return f"connection {who}: {self.code} {self.reason}".rstrip()
