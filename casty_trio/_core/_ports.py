"""What layers above the runtime may do with an actor system beyond its public API.

Remoting, membership and the testing kit build on the runtime: they spawn actors under reserved
names, deliver to local actors by path, report undeliverable messages. These functions are that
port, so no upper layer reads an :class:`ActorSystem`'s private state. They are re-exported by
:mod:`casty_trio.lowlevel`; applications rarely need them.
"""

from __future__ import annotations

from typing import Any, TypeVar

from ._mailbox import Mailbox
from ._ref import ActorRef
from ._system import ActorSystem

__all__ = ["check_running", "dead_letter", "local_target", "spawn_system_actor"]

M = TypeVar("M")


def spawn_system_actor(
    system: ActorSystem, behavior: Any, name: str, mailbox: Mailbox[Any] | None = None
) -> ActorRef[Any]:
    """Start a root actor at ``/<name>`` without the checks :meth:`ActorSystem.spawn` makes.

    For infrastructure actors under reserved names (``$``-prefixed, or names an upper layer
    owns), also while the system is starting its services. The caller guarantees that
    ``name`` is free and that the system is not shut down (:func:`check_running`). Not a
    checkpoint.

    Examples:
        >>> ref = spawn_system_actor(system, Behaviors.ignore(), "$probe-1")  # doctest: +SKIP
    """
    return system._spawn_root(behavior, name, mailbox)


def check_running(system: ActorSystem) -> None:
    """Raise :class:`~casty_trio.ActorSystemError` unless ``system`` is running.

    Examples:
        >>> check_running(system)                                   # doctest: +SKIP
    """
    system._check_running()


def dead_letter(system: ActorSystem, message: Any, intended: ActorRef[Any]) -> None:
    """Report ``message`` to ``intended`` as undeliverable: published as a
    :class:`~casty_trio.DeadLetter` (if anyone subscribed) and logged at debug level.

    Examples:
        >>> dead_letter(system, "late reply", ref)                  # doctest: +SKIP
    """
    system._dead_letter(message, intended)


def local_target(system: ActorSystem, path: str) -> Any:
    """The live local actor at ``path`` as a delivery target (with ``ref`` and ``tell``), or
    ``None``. Not a checkpoint.

    Examples:
        >>> local_target(system, "/greeter") is not None            # doctest: +SKIP
        True
    """
    return system._cells.get(path)
