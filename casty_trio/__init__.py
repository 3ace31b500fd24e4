"""casty_trio: typed actors for Python on Trio.

Everything public is importable from here::

    from casty_trio import ActorSystem, Behaviors, ActorRef
"""

from ._core import (
    ActorAddress,
    ActorContext,
    ActorRef,
    ActorRestarted,
    ActorStarted,
    ActorStopped,
    ActorSystem,
    Backoff,
    Behavior,
    Behaviors,
    DeadLetter,
    Directive,
    EventStream,
    Mailbox,
    MailboxOverflowStrategy,
    NodeAddress,
    OneForOneStrategy,
    SpyEvent,
    StashBuffer,
    SupervisionStrategy,
    Terminated,
    TimerScheduler,
    UnhandledMessage,
)
from ._errors import (
    ActorSystemError,
    AskTimeoutError,
    CastyError,
    ConfigError,
    MailboxFullError,
    SerializationError,
    StashOverflowError,
)
from .cluster import (
    ClusteredActorSystem,
    ClusterState,
    LeaderChanged,
    MemberDowned,
    MemberLeft,
    MemberUp,
    NodeDownedError,
    ReachableMember,
    UnreachableMember,
)
from .config import CastyConfig, discover_config, load_config
from .serialization import MsgpackSerializer

__version__ = "0.1.0"

__all__ = [
    "ActorAddress",
    "ActorContext",
    "ActorRef",
    "ActorRestarted",
    "ActorStarted",
    "ActorStopped",
    "ActorSystem",
    "ActorSystemError",
    "AskTimeoutError",
    "Backoff",
    "Behavior",
    "Behaviors",
    "CastyConfig",
    "CastyError",
    "ClusterState",
    "ClusteredActorSystem",
    "ConfigError",
    "DeadLetter",
    "Directive",
    "EventStream",
    "LeaderChanged",
    "Mailbox",
    "MailboxFullError",
    "MailboxOverflowStrategy",
    "MemberDowned",
    "MemberLeft",
    "MemberUp",
    "MsgpackSerializer",
    "NodeAddress",
    "NodeDownedError",
    "OneForOneStrategy",
    "ReachableMember",
    "SerializationError",
    "SpyEvent",
    "StashBuffer",
    "StashOverflowError",
    "SupervisionStrategy",
    "Terminated",
    "TimerScheduler",
    "UnhandledMessage",
    "UnreachableMember",
    "__version__",
    "discover_config",
    "load_config",
]
