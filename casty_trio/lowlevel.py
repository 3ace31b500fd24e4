"""Extension points for code that builds on casty_trio's runtime, rarely needed by applications.

Like :mod:`trio.lowlevel`, this namespace holds public, supported API that most users never
touch: the hooks casty_trio's own upper layers (persistence, sharding, remoting) are written
with, for libraries that add behaviors, reference targets or routers of their own. What is
here keeps its signature and meaning across releases like everything else public; it is kept
apart because using it well needs knowledge of the runtime (which task runs what, and when a
message is queued, woken or dropped) that everyday actor code does not.

What belongs here: a name that upper layers need to reach into the single-node runtime
(:mod:`casty_trio._core`) and that an application built from :class:`~casty_trio.Behaviors`,
refs and systems has no use for. Everything an application uses is in :mod:`casty_trio`.

- :class:`ExtensionBehavior`: the base of behaviors defined outside the core, started by the
  actor like a setup (event sourcing and sharding are built on it).
- :class:`RefTarget`: what stands behind an :class:`~casty_trio.ActorRef`; implement it to
  build refs that deliver somewhere other than a local actor's mailbox.
- :func:`mailbox_lending`: hand a local actor many messages at once, waking it once.
- :func:`stop_after_queued`: stop a local actor after the messages queued before now.
- :func:`spawn_system_actor`, :func:`check_running`, :func:`dead_letter`,
  :func:`local_target`: the runtime's port for the layers above it (remoting, membership, the
  testing kit): infrastructure actors under reserved names, dead letters, delivery to a local
  actor by path, without reading a system's private state.

Examples:
    >>> import casty_trio.lowlevel
    >>> "spawn_system_actor" in casty_trio.lowlevel.__all__
    True
"""

from __future__ import annotations

from ._core import (
    ExtensionBehavior,
    RefTarget,
    check_running,
    dead_letter,
    local_target,
    mailbox_lending,
    spawn_system_actor,
    stop_after_queued,
)

__all__ = [
    "ExtensionBehavior",
    "RefTarget",
    "check_running",
    "dead_letter",
    "local_target",
    "mailbox_lending",
    "spawn_system_actor",
    "stop_after_queued",
]
