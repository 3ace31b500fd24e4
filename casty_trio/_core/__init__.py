"""The single-node actor runtime. Imports nothing from the layers above it."""

from ._behavior import Behavior, Behaviors, ExtensionBehavior
from ._cell import stop_after_queued
from ._cell_lending import mailbox_lending
from ._context import ActorContext
from ._event_stream import EventStream
from ._events import (
    ActorRestarted,
    ActorStarted,
    ActorStopped,
    DeadLetter,
    SpyEvent,
    Terminated,
    UnhandledMessage,
)
from ._mailbox import Mailbox, MailboxOverflowStrategy
from ._ports import check_running, dead_letter, local_target, spawn_system_actor
from ._ref import ActorAddress, ActorRef, NodeAddress, RefTarget
from ._stash import StashBuffer
from ._supervision import Backoff, Directive, OneForOneStrategy, SupervisionStrategy
from ._system import ActorSystem
from ._timers import TimerScheduler

__all__ = [
    "ActorAddress",
    "ActorContext",
    "ActorRef",
    "ActorRestarted",
    "ActorStarted",
    "ActorStopped",
    "ActorSystem",
    "Backoff",
    "Behavior",
    "Behaviors",
    "DeadLetter",
    "Directive",
    "EventStream",
    "ExtensionBehavior",
    "Mailbox",
    "MailboxOverflowStrategy",
    "NodeAddress",
    "OneForOneStrategy",
    "RefTarget",
    "SpyEvent",
    "StashBuffer",
    "SupervisionStrategy",
    "Terminated",
    "TimerScheduler",
    "UnhandledMessage",
    "check_running",
    "dead_letter",
    "local_target",
    "mailbox_lending",
    "spawn_system_actor",
    "stop_after_queued",
]
