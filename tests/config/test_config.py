"""Configuration: parsing ``casty.toml``, error reporting, discovery, and every key's effect."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
import trio.testing

from casty_trio import (
    ActorContext,
    ActorRef,
    ActorSystem,
    Behavior,
    Behaviors,
    CastyConfig,
    CastyError,
    ConfigError,
    DeadLetter,
    Directive,
    Mailbox,
    MailboxFullError,
    OneForOneStrategy,
    discover_config,
    load_config,
)
from casty_trio.config import (
    ActorConfig,
    DefaultsConfig,
    MailboxConfig,
    SupervisionConfig,
    SystemConfig,
    parse_config,
)
from tests._helpers import drain_nowait

# ---------------------------------------------------------------------------- helpers

HOLD = "hold"
BOOM = "boom"
INC = "inc"


class Gated:
    """An actor that blocks inside its handler on the first ``HOLD`` until released."""

    def __init__(self) -> None:
        self.gate = trio.Event()
        self.handled: list[Any] = []

    def behavior(self) -> Behavior[Any]:
        async def receive(ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
            if msg == HOLD:
                await self.gate.wait()
            else:
                self.handled.append(msg)
            return Behaviors.same()

        return Behaviors.receive(receive)


@attrs.frozen
class Filled:
    handled: list[Any]
    dead: list[Any]
    rejected: list[Any]


async def fill(system: ActorSystem, ref: ActorRef[Any], gated: Gated, n: int = 5) -> Filled:
    """Block ``ref`` in its handler, tell it ``0..n-1``, release it; report what happened."""
    async with system.event_stream.subscription(DeadLetter) as rx:
        ref.tell(HOLD)
        await trio.testing.wait_all_tasks_blocked()
        rejected = []
        for i in range(n):
            try:
                ref.tell(i)
            except MailboxFullError:
                rejected.append(i)
        gated.gate.set()
        await trio.testing.wait_all_tasks_blocked()
        dead = [letter.message for letter in drain_nowait(rx) if letter.intended_ref == ref]
    return Filled(list(gated.handled), dead, rejected)


async def spawn_gated_children(
    system: ActorSystem, parent: str, children: list[str]
) -> dict[str, tuple[ActorRef[Any], Gated]]:
    """Spawn ``/parent`` whose setup spawns one Gated child per name."""
    gates = {name: Gated() for name in children}

    async def setup(ctx: ActorContext[Any]) -> Behavior[Any]:
        for name, gated in gates.items():
            ctx.spawn(gated.behavior(), name)
        return Behaviors.ignore()

    system.spawn(Behaviors.setup(setup), parent)
    await trio.testing.wait_all_tasks_blocked()
    result = {}
    for name, gated in gates.items():
        ref = system.lookup(f"/{parent}/{name}")
        assert ref is not None
        result[name] = (ref, gated)
    return result


async def capacity_of(system: ActorSystem, ref: ActorRef[Any], gated: Gated) -> int:
    """How many of 10 messages a blocked drop_new/unbounded actor keeps."""
    return len((await fill(system, ref, gated, 10)).handled)


@attrs.frozen
class Get:
    reply_to: ActorRef[tuple[int, int]]


class Counter:
    """A setup-based counter; ``starts`` records ``trio.current_time()`` of every setup run."""

    def __init__(self) -> None:
        self.starts: list[float] = []

    def behavior(self) -> Behavior[Any]:
        async def setup(ctx: ActorContext[Any]) -> Behavior[Any]:
            self.starts.append(trio.current_time())
            count = 0

            async def receive(ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
                nonlocal count
                if msg == BOOM:
                    raise ValueError("boom")
                if msg == INC:
                    count += 1
                elif isinstance(msg, Get):
                    msg.reply_to.tell((count, len(self.starts)))
                return Behaviors.same()

            return Behaviors.receive(receive)

        return Behaviors.setup(setup)


async def state(system: ActorSystem, ref: ActorRef[Any]) -> tuple[int, int]:
    """(count, number of setup runs) of a Counter actor."""
    return await system.ask(ref, Get, timeout=100.0)


async def is_alive(system: ActorSystem, path: str) -> bool:
    await trio.testing.wait_all_tasks_blocked()
    return system.lookup(path) is not None


def config(text: str) -> CastyConfig:
    return parse_config(text)


# ---------------------------------------------------------------------------- model defaults


def test_defaults_and_equality() -> None:
    cfg = CastyConfig()
    assert cfg == CastyConfig()
    assert cfg.system == SystemConfig(name="casty-system", shutdown_timeout=10.0)
    assert cfg.defaults == DefaultsConfig()
    assert cfg.defaults.mailbox == MailboxConfig(capacity=None, strategy="drop_new")
    assert cfg.defaults.supervision == SupervisionConfig(
        strategy="stop",
        max_restarts=3,
        within=60.0,
        backoff_min=None,
        backoff_max=10.0,
        backoff_multiplier=2.0,
    )
    assert cfg.actors == {}
    assert cfg.actor("/anything") is None
    assert cfg != CastyConfig(system=SystemConfig(name="other"))
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        cfg.system = SystemConfig()  # type: ignore[misc]


def test_equality_with_actor_tables() -> None:
    a = CastyConfig(actors={"w.*": ActorConfig(mailbox=MailboxConfig(capacity=2))})
    b = CastyConfig(actors={"w.*": ActorConfig(mailbox=MailboxConfig(capacity=2))})
    c = CastyConfig(actors={"w.*": ActorConfig(mailbox=MailboxConfig(capacity=3))})
    assert a == b
    assert a != c


def test_parse_empty_string_is_defaults() -> None:
    assert parse_config("") == CastyConfig()
    assert parse_config("# only a comment\n") == CastyConfig()
    assert parse_config("[system]\n[defaults.mailbox]\n[defaults.supervision]\n") == CastyConfig()


def test_parse_every_key() -> None:
    cfg = parse_config(
        """
        [system]
        name = "bank"
        shutdown_timeout = 5

        [defaults.mailbox]
        capacity = 100
        strategy = "drop_oldest"

        [defaults.supervision]
        strategy = "restart"
        max_restarts = 0
        within = 30.5
        backoff_min = 0.5
        backoff_max = 4
        backoff_multiplier = 3

        [actors.'acc-\\d+'.mailbox]
        capacity = 7
        strategy = "reject"

        [actors.'/bank/.*'.supervision]
        strategy = "resume"
        """
    )
    assert cfg.system == SystemConfig(name="bank", shutdown_timeout=5.0)
    assert isinstance(cfg.system.shutdown_timeout, float)
    assert cfg.defaults.mailbox == MailboxConfig(capacity=100, strategy="drop_oldest")
    assert cfg.defaults.supervision == SupervisionConfig(
        strategy="restart",
        max_restarts=0,
        within=30.5,
        backoff_min=0.5,
        backoff_max=4.0,
        backoff_multiplier=3.0,
    )
    assert cfg.actors == {
        r"acc-\d+": ActorConfig(mailbox=MailboxConfig(capacity=7, strategy="reject")),
        "/bank/.*": ActorConfig(supervision=SupervisionConfig(strategy="resume")),
    }
    assert list(cfg.actors) == [r"acc-\d+", "/bank/.*"]


def test_actor_lookup_matches_path_or_name_in_full() -> None:
    first = ActorConfig(mailbox=MailboxConfig(capacity=1))
    second = ActorConfig(supervision=SupervisionConfig(strategy="resume"))
    cfg = CastyConfig(actors={r"worker-\d+": first, "/svc/.*": second})
    assert cfg.actor("/worker-1") is first  # by name, root
    assert cfg.actor("/svc/worker-22") is first  # by name, child: first table wins
    assert cfg.actor("/svc/other") is second  # by full path
    assert cfg.actor("/svc") is None
    assert cfg.actor("/worker-x") is None
    assert cfg.actor("/worker-1x") is None  # full match only, not a prefix
    assert cfg.actor("/a/worker") is None  # not a substring either
    assert cfg.actor("/other/svc/x") is None  # path pattern must match the whole path


# ---------------------------------------------------------------------------- [system]


def test_system_name_from_config() -> None:
    cfg = config('[system]\nname = "bank"')
    assert ActorSystem(config=cfg).name == "bank"
    assert ActorSystem(config=cfg).config is cfg
    assert ActorSystem(config=CastyConfig()).name == "casty-system"
    assert ActorSystem().config == CastyConfig()


def test_explicit_system_name_wins() -> None:
    cfg = config('[system]\nname = "bank"')
    assert ActorSystem("ledger", config=cfg).name == "ledger"
    assert ActorSystem(name="ledger", config=cfg).name == "ledger"


def test_default_name_argument_means_take_the_configured_name() -> None:
    # Documented: ActorSystem keeps SPEC's literal default, so passing that default equals
    # not passing a name, and the configured name is used.
    cfg = config('[system]\nname = "bank"')
    assert ActorSystem(name="casty-system", config=cfg).name == "bank"


async def test_system_name_appears_in_addresses() -> None:
    async with ActorSystem(config=config('[system]\nname = "bank"')) as system:
        ref = system.spawn(Behaviors.ignore(), "a")
        assert ref.address.system == "bank"


async def _stuck_shutdown(system: ActorSystem, timeout: float | None = None) -> tuple[float, bool]:
    """Run a handler stuck forever; return (seconds to leave the block, handler cancelled)."""
    cancelled = False

    async def receive(ctx: ActorContext[Any], msg: Any) -> Behavior[Any]:
        nonlocal cancelled
        try:
            await trio.sleep_forever()
        except trio.Cancelled:
            cancelled = True
            raise
        return Behaviors.same()  # pragma: no cover

    async with system:
        system.spawn(Behaviors.receive(receive), "stuck").tell("go")
        await trio.testing.wait_all_tasks_blocked()
        start = trio.current_time()
        if timeout is not None:
            await system.shutdown(timeout=timeout)
    return trio.current_time() - start, cancelled


@pytest.mark.parametrize("timeout", [2.5, 7])
async def test_shutdown_timeout_from_config(timeout: float, autojump_clock: Any) -> None:
    system = ActorSystem(config=config(f"[system]\nshutdown_timeout = {timeout}"))
    elapsed, cancelled = await _stuck_shutdown(system)
    assert elapsed == pytest.approx(timeout)
    assert cancelled


async def test_shutdown_timeout_default_and_explicit_argument(autojump_clock: Any) -> None:
    elapsed, cancelled = await _stuck_shutdown(ActorSystem())
    assert elapsed == pytest.approx(10.0)
    assert cancelled
    system = ActorSystem(config=config("[system]\nshutdown_timeout = 8"))
    elapsed, cancelled = await _stuck_shutdown(system, timeout=1.5)
    assert elapsed == pytest.approx(1.5)
    assert cancelled


# ------------------------------------------------------------------------ [defaults.mailbox]


async def test_default_mailbox_is_unbounded() -> None:
    async with ActorSystem() as system:
        gated = Gated()
        result = await fill(system, system.spawn(gated.behavior(), "a"), gated, 10)
    assert result == Filled(list(range(10)), [], [])


@pytest.mark.parametrize("capacity", [1, 3])
async def test_default_mailbox_capacity(capacity: int) -> None:
    cfg = config(f"[defaults.mailbox]\ncapacity = {capacity}")
    async with ActorSystem(config=cfg) as system:
        gated = Gated()
        result = await fill(system, system.spawn(gated.behavior(), "a"), gated, 5)
    assert result.handled == list(range(capacity))
    assert result.dead == list(range(capacity, 5))
    assert result.rejected == []


@pytest.mark.parametrize(
    ("strategy", "handled", "dead", "rejected"),
    [
        ("drop_new", [0, 1], [2, 3, 4], []),
        ("drop_oldest", [3, 4], [0, 1, 2], []),
        ("reject", [0, 1], [2, 3, 4], [2, 3, 4]),
    ],
)
async def test_default_mailbox_strategy(
    strategy: str, handled: list[int], dead: list[int], rejected: list[int]
) -> None:
    cfg = config(f'[defaults.mailbox]\ncapacity = 2\nstrategy = "{strategy}"')
    async with ActorSystem(config=cfg) as system:
        gated = Gated()
        result = await fill(system, system.spawn(gated.behavior(), "a"), gated, 5)
    assert result == Filled(handled, dead, rejected)


async def test_default_mailbox_applies_to_children() -> None:
    cfg = config('[defaults.mailbox]\ncapacity = 2\nstrategy = "drop_oldest"')
    async with ActorSystem(config=cfg) as system:
        actors = await spawn_gated_children(system, "parent", ["kid"])
        ref, gated = actors["kid"]
        result = await fill(system, ref, gated, 4)
    assert result.handled == [2, 3]


async def test_explicit_mailbox_argument_wins_over_config() -> None:
    cfg = config('[defaults.mailbox]\ncapacity = 3\n[actors."a".mailbox]\ncapacity = 4')
    async with ActorSystem(config=cfg) as system:
        gated = Gated()
        ref = system.spawn(gated.behavior(), "a", mailbox=Mailbox(capacity=1))
        assert await capacity_of(system, ref, gated) == 1
        gated = Gated()
        ref = system.spawn(gated.behavior(), "b", mailbox=Mailbox(capacity=2))
        assert await capacity_of(system, ref, gated) == 2


# ------------------------------------------------------------------------ [defaults.supervision]


async def test_no_config_failure_stops_actor() -> None:
    async with ActorSystem() as system:
        ref = system.spawn(Counter().behavior(), "c")
        ref.tell(BOOM)
        assert not await is_alive(system, "/c")


async def test_default_supervision_stop() -> None:
    cfg = config('[defaults.supervision]\nstrategy = "stop"')
    async with ActorSystem(config=cfg) as system:
        counter = Counter()
        ref = system.spawn(counter.behavior(), "c")
        ref.tell(BOOM)
        assert not await is_alive(system, "/c")
    assert len(counter.starts) == 1


async def test_default_supervision_restart_reruns_setup() -> None:
    cfg = config('[defaults.supervision]\nstrategy = "restart"')
    async with ActorSystem(config=cfg) as system:
        ref = system.spawn(Counter().behavior(), "c")
        for msg in (INC, INC, BOOM, INC):
            ref.tell(msg)
        assert await state(system, ref) == (1, 2)  # state reset, setup ran twice
        assert await is_alive(system, "/c")


async def test_default_supervision_resume_keeps_state() -> None:
    cfg = config('[defaults.supervision]\nstrategy = "resume"')
    async with ActorSystem(config=cfg) as system:
        ref = system.spawn(Counter().behavior(), "c")
        for msg in (INC, INC, BOOM, INC):
            ref.tell(msg)
        assert await state(system, ref) == (3, 1)
        assert await is_alive(system, "/c")


async def test_default_supervision_applies_to_children() -> None:
    cfg = config('[defaults.supervision]\nstrategy = "resume"')
    async with ActorSystem(config=cfg) as system:

        async def setup(ctx: ActorContext[Any]) -> Behavior[Any]:
            ctx.spawn(Counter().behavior(), "kid")
            return Behaviors.ignore()

        system.spawn(Behaviors.setup(setup), "parent")
        await trio.testing.wait_all_tasks_blocked()
        kid = system.lookup("/parent/kid")
        assert kid is not None
        for msg in (INC, BOOM, INC):
            kid.tell(msg)
        assert await state(system, kid) == (2, 1)


@pytest.mark.parametrize("max_restarts", [0, 2])
async def test_max_restarts_then_stop(max_restarts: int) -> None:
    cfg = config(f'[defaults.supervision]\nstrategy = "restart"\nmax_restarts = {max_restarts}')
    async with ActorSystem(config=cfg) as system:
        counter = Counter()
        ref = system.spawn(counter.behavior(), "c")
        for _ in range(max_restarts):
            ref.tell(BOOM)
        assert await state(system, ref) == (0, 1 + max_restarts)
        ref.tell(BOOM)  # one more than allowed
        assert not await is_alive(system, "/c")
    assert len(counter.starts) == 1 + max_restarts


@pytest.mark.parametrize(("within", "survives"), [(5, True), (60, False)])
async def test_within_window(within: float, survives: bool, autojump_clock: Any) -> None:
    cfg = config(
        f'[defaults.supervision]\nstrategy = "restart"\nmax_restarts = 1\nwithin = {within}'
    )
    async with ActorSystem(config=cfg) as system:
        ref = system.spawn(Counter().behavior(), "c")
        ref.tell(BOOM)
        assert await state(system, ref) == (0, 2)
        await trio.sleep(6)
        ref.tell(BOOM)  # 6 s later: outside a 5 s window, inside a 60 s one
        assert await is_alive(system, "/c") is survives
        if survives:
            assert await state(system, ref) == (0, 3)
            ref.tell(BOOM)  # right away: inside the window again
            assert not await is_alive(system, "/c")


async def _restart_gaps(text: str, failures: int) -> list[float]:
    async with ActorSystem(config=config(text)) as system:
        counter = Counter()
        ref = system.spawn(counter.behavior(), "c")
        for _ in range(failures):
            ref.tell(BOOM)
        assert await state(system, ref) == (0, 1 + failures)
    return [b - a for a, b in itertools.pairwise(counter.starts)]


SUPERVISE_RESTART = '[defaults.supervision]\nstrategy = "restart"\nmax_restarts = 10\n'


async def test_no_backoff_restarts_immediately(autojump_clock: Any) -> None:
    gaps = await _restart_gaps(SUPERVISE_RESTART + "backoff_max = 3\nbackoff_multiplier = 5", 3)
    assert gaps == [0.0, 0.0, 0.0]


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ("backoff_min = 1\nbackoff_max = 3", [1.0, 2.0, 3.0, 3.0]),  # multiplier 2 by default
        ("backoff_min = 0.5\nbackoff_max = 100\nbackoff_multiplier = 3", [0.5, 1.5, 4.5, 13.5]),
        ("backoff_min = 2\nbackoff_multiplier = 1", [2.0, 2.0, 2.0, 2.0]),
        ("backoff_min = 4\nbackoff_max = 5\nbackoff_multiplier = 1.5", [4.0, 5.0, 5.0, 5.0]),
    ],
)
async def test_backoff_delays(keys: str, expected: list[float], autojump_clock: Any) -> None:
    gaps = await _restart_gaps(SUPERVISE_RESTART + keys, 4)
    assert gaps == pytest.approx(expected)


def _supervised(behavior: Behavior[Any], decide: Callable[[Exception], Directive]) -> Behavior[Any]:
    return Behaviors.supervise(behavior, OneForOneStrategy(decider=decide))


async def test_explicit_supervise_overrides_default_restart_with_resume() -> None:
    cfg = config('[defaults.supervision]\nstrategy = "restart"')
    async with ActorSystem(config=cfg) as system:
        ref = system.spawn(_supervised(Counter().behavior(), lambda e: Directive.resume), "c")
        for msg in (INC, BOOM, INC):
            ref.tell(msg)
        assert await state(system, ref) == (2, 1)


async def test_explicit_supervise_overrides_default_resume_with_restart() -> None:
    cfg = config('[defaults.supervision]\nstrategy = "resume"')
    async with ActorSystem(config=cfg) as system:
        ref = system.spawn(_supervised(Counter().behavior(), lambda e: Directive.restart), "c")
        for msg in (INC, BOOM, INC):
            ref.tell(msg)
        assert await state(system, ref) == (1, 2)


async def test_explicit_supervise_overrides_default_with_stop() -> None:
    cfg = config('[defaults.supervision]\nstrategy = "restart"')
    async with ActorSystem(config=cfg) as system:
        ref = system.spawn(_supervised(Counter().behavior(), lambda e: Directive.stop), "c")
        ref.tell(BOOM)
        assert not await is_alive(system, "/c")


async def test_explicit_supervise_limits_override_configured_limits() -> None:
    cfg = config('[defaults.supervision]\nstrategy = "restart"\nmax_restarts = 0')
    async with ActorSystem(config=cfg) as system:
        strategy = OneForOneStrategy(max_restarts=5)
        ref = system.spawn(Behaviors.supervise(Counter().behavior(), strategy), "c")
        for _ in range(3):
            ref.tell(BOOM)
        assert await state(system, ref) == (0, 4)


# ---------------------------------------------------------------------------- [actors."<regex>"]


ACTORS_MAILBOX = """
[defaults.mailbox]
capacity = 4

[actors.'/svc/w.*'.mailbox]
capacity = 1

[actors.'job-\\d+'.mailbox]
capacity = 2
strategy = "drop_oldest"
"""


async def test_actor_mailbox_by_full_path() -> None:
    async with ActorSystem(config=config(ACTORS_MAILBOX)) as system:
        actors = await spawn_gated_children(system, "svc", ["worker", "other"])
        assert await capacity_of(system, *actors["worker"]) == 1
        assert await capacity_of(system, *actors["other"]) == 4  # no match: defaults
        gated = Gated()  # root /worker: neither its path nor its name is "/svc/w.*"
        assert await capacity_of(system, system.spawn(gated.behavior(), "worker"), gated) == 4


async def test_actor_mailbox_by_name() -> None:
    async with ActorSystem(config=config(ACTORS_MAILBOX)) as system:
        actors = await spawn_gated_children(system, "queue", ["job-1", "job-x"])
        ref, gated = actors["job-1"]
        result = await fill(system, ref, gated, 5)
        assert result.handled == [3, 4]  # capacity 2, drop_oldest
        assert await capacity_of(system, *actors["job-x"]) == 4
        gated = Gated()  # a root actor matches by name too
        result = await fill(system, system.spawn(gated.behavior(), "job-22"), gated, 5)
        assert result.handled == [3, 4]
        gated = Gated()  # full match: "job-22x" is not "job-\d+"
        assert await capacity_of(system, system.spawn(gated.behavior(), "job-22x"), gated) == 4


async def test_actor_mailbox_reject_override() -> None:
    cfg = config('[actors."picky".mailbox]\ncapacity = 1\nstrategy = "reject"')
    async with ActorSystem(config=cfg) as system:
        gated = Gated()
        result = await fill(system, system.spawn(gated.behavior(), "picky"), gated, 3)
        assert result == Filled([0], [1, 2], [1, 2])
        gated = Gated()
        result = await fill(system, system.spawn(gated.behavior(), "easy"), gated, 3)
        assert result == Filled([0, 1, 2], [], [])


@pytest.mark.parametrize(
    ("order", "expected"), [(["work.*", "worker"], 1), (["worker", "work.*"], 2)]
)
async def test_first_matching_actor_table_wins(order: list[str], expected: int) -> None:
    capacities = {"work.*": 1, "worker": 2}  # same tables, only their order in the file differs
    cfg = config("".join(f"[actors.'{p}'.mailbox]\ncapacity = {capacities[p]}\n" for p in order))
    assert list(cfg.actors) == order
    async with ActorSystem(config=cfg) as system:
        gated = Gated()
        ref = system.spawn(gated.behavior(), "worker")
        assert await capacity_of(system, ref, gated) == expected


def test_first_matching_table_wins_even_without_the_sub_table() -> None:
    cfg = config(
        "[actors.'a.*'.mailbox]\ncapacity = 1\n[actors.'abc'.supervision]\nstrategy = \"resume\"\n"
    )
    matched = cfg.actor("/abc")
    assert matched is not None
    assert matched.mailbox == MailboxConfig(capacity=1)
    assert matched.supervision is None  # defaults apply, not the later table


ACTORS_SUPERVISION = """
[defaults.supervision]
strategy = "restart"

[actors.'/svc/steady'.supervision]
strategy = "resume"

[actors.'fragile'.supervision]
strategy = "stop"

[actors.'limited'.supervision]
strategy = "restart"
max_restarts = 1
backoff_min = 2
backoff_max = 2
"""


async def test_actor_supervision_overrides(autojump_clock: Any) -> None:
    async with ActorSystem(config=config(ACTORS_SUPERVISION)) as system:

        async def setup(ctx: ActorContext[Any]) -> Behavior[Any]:
            ctx.spawn(Counter().behavior(), "steady")
            ctx.spawn(Counter().behavior(), "plain")
            return Behaviors.ignore()

        system.spawn(Behaviors.setup(setup), "svc")
        await trio.testing.wait_all_tasks_blocked()
        steady, plain = system.lookup("/svc/steady"), system.lookup("/svc/plain")
        assert steady is not None and plain is not None
        for ref in (steady, plain):
            for msg in (INC, BOOM, INC):
                ref.tell(msg)
        assert await state(system, steady) == (2, 1)  # matched by path: resume
        assert await state(system, plain) == (1, 2)  # no match: default restart

        fragile = system.spawn(Counter().behavior(), "fragile")  # matched by name: stop
        fragile.tell(BOOM)
        assert not await is_alive(system, "/fragile")

        counter = Counter()
        limited = system.spawn(counter.behavior(), "limited")
        limited.tell(BOOM)
        assert await state(system, limited) == (0, 2)
        assert counter.starts[1] - counter.starts[0] == pytest.approx(2.0)
        limited.tell(BOOM)  # max_restarts = 1 from the override (default would be 3)
        assert not await is_alive(system, "/limited")


async def test_explicit_supervise_overrides_actor_table() -> None:
    cfg = config("[actors.'c'.supervision]\nstrategy = \"restart\"")
    async with ActorSystem(config=cfg) as system:
        ref = system.spawn(_supervised(Counter().behavior(), lambda e: Directive.resume), "c")
        for msg in (INC, BOOM, INC):
            ref.tell(msg)
        assert await state(system, ref) == (2, 1)


# ---------------------------------------------------------------------------- errors


def _error(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    return str(info.value)


def test_config_error_hierarchy() -> None:
    assert issubclass(ConfigError, ValueError)
    assert issubclass(ConfigError, CastyError)
    with pytest.raises(ValueError):
        parse_config("[system]\nbogus = 1")
    with pytest.raises(CastyError):
        parse_config("[system]\nbogus = 1")


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ('[system]\nnmae = "x"', ["system", "nmae"]),
        ("[defaults]\ncolour = 1", ["defaults", "colour"]),
        ("[defaults.mailbox]\nsize = 1", ["defaults.mailbox", "size"]),
        ("[defaults.supervision]\nretries = 1", ["defaults.supervision", "retries"]),
        ("[actors.'a']\nfoo = 1", ["actors", "'a'", "foo"]),
        ("[actors.'a'.mailbox]\ncap = 1", ["actors", "mailbox", "cap"]),
        ("[bogus]\nx = 1", ["bogus"]),
        ("top = 1", ["top"]),
    ],
)
def test_unknown_key(text: str, fragments: list[str]) -> None:
    message = _error(text)
    assert "unknown" in message
    for fragment in fragments:
        assert fragment in message


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("[defaults.mailbox]\ncapacity = 1.5", ["defaults.mailbox.capacity", "int", "float"]),
        ("[defaults.mailbox]\ncapacity = true", ["defaults.mailbox.capacity", "int", "bool"]),
        ('[defaults.mailbox]\ncapacity = "3"', ["defaults.mailbox.capacity", "int", "str"]),
        ("[defaults.supervision]\nmax_restarts = 2.0", ["max_restarts", "int", "float"]),
        ("[defaults.supervision]\nmax_restarts = false", ["max_restarts", "int", "bool"]),
        ('[system]\nshutdown_timeout = "10"', ["system.shutdown_timeout", "float", "str"]),
        ("[system]\nshutdown_timeout = true", ["system.shutdown_timeout", "float", "bool"]),
        ("[defaults.supervision]\nwithin = [1]", ["within", "float", "list"]),
        ("[system]\nname = 3", ["system.name", "str", "int"]),
        ("[actors.'a'.mailbox]\ncapacity = 2.5", ["actors", "capacity", "int", "float"]),
        ("actors = 3", ["actors"]),
        ("system = 3", ["system"]),
    ],
)
def test_wrong_type(text: str, fragments: list[str]) -> None:
    message = _error(text)
    for fragment in fragments:
        assert fragment in message


@pytest.mark.parametrize(
    ("text", "choices", "bad"),
    [
        ('[defaults.mailbox]\nstrategy = "block"', ["drop_new", "drop_oldest", "reject"], "block"),
        (
            '[defaults.supervision]\nstrategy = "escalate"',
            ["stop", "restart", "resume"],
            "escalate",
        ),
        ("[actors.'a'.supervision]\nstrategy = \"Stop\"", ["stop", "restart", "resume"], "Stop"),
        ("[defaults.mailbox]\nstrategy = 1", ["drop_new", "drop_oldest", "reject"], "1"),
    ],
)
def test_bad_literal_lists_choices(text: str, choices: list[str], bad: str) -> None:
    message = _error(text)
    assert "strategy" in message
    assert bad in message
    for choice in choices:
        assert repr(choice) in message


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[system]\nshutdown_timeout = 0", "shutdown_timeout"),
        ("[system]\nshutdown_timeout = -1.5", "shutdown_timeout"),
        ("[defaults.mailbox]\ncapacity = 0", "capacity"),
        ("[defaults.mailbox]\ncapacity = -5", "capacity"),
        ("[defaults.supervision]\nmax_restarts = -1", "max_restarts"),
        ("[defaults.supervision]\nwithin = 0", "within"),
        ("[defaults.supervision]\nwithin = -3", "within"),
        ("[defaults.supervision]\nbackoff_max = 0", "backoff_max"),
        ("[defaults.supervision]\nbackoff_multiplier = 0", "backoff_multiplier"),
        ("[defaults.supervision]\nbackoff_multiplier = -2", "backoff_multiplier"),
        ("[actors.'a'.mailbox]\ncapacity = 0", "capacity"),
        ("[actors.'a'.supervision]\nwithin = -1", "within"),
    ],
)
def test_out_of_range(text: str, key: str) -> None:
    message = _error(text)
    assert key in message
    section = text.split("]")[0].lstrip("[").split(".")[0]
    assert section in message


def test_zero_max_restarts_and_zero_backoff_min_are_valid() -> None:
    cfg = config("[defaults.supervision]\nmax_restarts = 0\nbackoff_min = 0")
    assert cfg.defaults.supervision.max_restarts == 0
    assert cfg.defaults.supervision.backoff_min == 0.0


def test_negative_backoff_min_rejected() -> None:
    assert "backoff_min" in _error("[defaults.supervision]\nbackoff_min = -1")


def test_backoff_min_above_backoff_max_rejected() -> None:
    _error("[defaults.supervision]\nbackoff_min = 5\nbackoff_max = 1")


def test_backoff_multiplier_below_one_rejected() -> None:
    _error("[defaults.supervision]\nbackoff_multiplier = 0.5")


def test_invalid_backoff_never_reaches_actor_system() -> None:
    text = '[defaults.supervision]\nstrategy = "restart"\nbackoff_min = 5\nbackoff_max = 1'
    with pytest.raises(ConfigError):
        ActorSystem(config=parse_config(text))


@pytest.mark.parametrize("name", ["", "a b", "a/b"])
def test_invalid_system_name_rejected(name: str) -> None:
    _error(f'[system]\nname = "{name}"')


def test_nan_shutdown_timeout_rejected() -> None:
    _error("[system]\nshutdown_timeout = nan")


@pytest.mark.parametrize("pattern", ["a(", "[z-a]", "*x", "(?P<1>x)"])
def test_invalid_regex(pattern: str) -> None:
    message = _error(f"[actors.'{pattern}'.mailbox]\ncapacity = 1")
    assert pattern in message
    assert "regular expression" in message


def test_invalid_regex_in_model() -> None:
    with pytest.raises(ConfigError, match="regular expression"):
        CastyConfig(actors={"a(": ActorConfig()})


def test_invalid_regex_reported_with_other_problems() -> None:
    message = _error("[system]\nbogus = 1\n[actors.'a('.mailbox]\ncapacity = 1\n")
    assert "bogus" in message
    assert "a(" in message


@pytest.mark.parametrize(
    "text",
    ["x = [", "[system]\nname = 'a'\nname = 'b'", "[system\n", "a = 1\na = 2", "= 3"],
)
def test_invalid_toml(text: str) -> None:
    message = _error(text)
    assert "invalid TOML" in message
    assert "casty.toml" in message


def test_source_names_the_origin() -> None:
    with pytest.raises(ConfigError, match=r"my-settings\.toml"):
        parse_config("x = [", source="my-settings.toml")
    with pytest.raises(ConfigError, match=r"my-settings\.toml"):
        parse_config("[system]\nbogus = 1", source="my-settings.toml")


def test_several_problems_in_one_error() -> None:
    message = _error(
        """
        bogus_top = 1
        [system]
        name = 3
        shutdown_timeout = -1
        [defaults.mailbox]
        capacity = 1.5
        strategy = "block"
        [defaults.supervision]
        retries = 4
        """
    )
    for fragment in ("bogus_top", "system.name", "capacity", "block", "retries"):
        assert fragment in message, fragment


def test_several_range_problems_in_one_error() -> None:
    message = _error(
        "[system]\nshutdown_timeout = -1\n"
        "[defaults.mailbox]\ncapacity = 0\n"
        "[defaults.supervision]\nwithin = 0\n"
        "[actors.'a'.mailbox]\ncapacity = -1\n"
    )
    assert "shutdown_timeout" in message
    assert "defaults.mailbox" in message
    assert "within" in message
    assert "actors" in message
    assert len(message.strip().splitlines()) >= 5  # a header plus one line per problem


# ---------------------------------------------------------------------------- files, discovery


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv("CASTY_CONFIG", raising=False)
    return monkeypatch


def test_load_config_from_path(tmp_path: Path, no_env: pytest.MonkeyPatch) -> None:
    path = tmp_path / "settings.toml"
    path.write_text('[system]\nname = "bank"\n[defaults.mailbox]\ncapacity = 9\n')
    expected = parse_config('[system]\nname = "bank"\n[defaults.mailbox]\ncapacity = 9')
    assert load_config(path) == expected
    assert load_config(str(path)) == expected


def test_load_config_explicit_path_beats_env_and_cwd(
    tmp_path: Path, no_env: pytest.MonkeyPatch
) -> None:
    (tmp_path / "casty.toml").write_text('[system]\nname = "cwd"')
    (tmp_path / "env.toml").write_text('[system]\nname = "env"')
    (tmp_path / "explicit.toml").write_text('[system]\nname = "explicit"')
    no_env.chdir(tmp_path)
    no_env.setenv("CASTY_CONFIG", str(tmp_path / "env.toml"))
    assert load_config(tmp_path / "explicit.toml").system.name == "explicit"


def test_load_config_without_file_is_defaults(tmp_path: Path, no_env: pytest.MonkeyPatch) -> None:
    no_env.chdir(tmp_path)
    assert discover_config() is None
    assert load_config() == CastyConfig()


def test_empty_env_var_is_ignored(tmp_path: Path, no_env: pytest.MonkeyPatch) -> None:
    no_env.chdir(tmp_path)
    no_env.setenv("CASTY_CONFIG", "")
    assert discover_config() is None
    assert load_config() == CastyConfig()


def test_discover_in_cwd(tmp_path: Path, no_env: pytest.MonkeyPatch) -> None:
    (tmp_path / "casty.toml").write_text('[system]\nname = "here"')
    no_env.chdir(tmp_path)
    assert discover_config() == (tmp_path / "casty.toml").resolve()
    assert load_config().system.name == "here"


def test_discover_in_parent(tmp_path: Path, no_env: pytest.MonkeyPatch) -> None:
    (tmp_path / "casty.toml").write_text('[system]\nname = "parent"')
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    no_env.chdir(deep)
    assert discover_config() == (tmp_path / "casty.toml").resolve()
    assert load_config().system.name == "parent"
    assert discover_config(deep) == (tmp_path / "casty.toml").resolve()


def test_discover_nearest_wins(tmp_path: Path, no_env: pytest.MonkeyPatch) -> None:
    (tmp_path / "casty.toml").write_text('[system]\nname = "outer"')
    inner = tmp_path / "inner"
    (inner / "deeper").mkdir(parents=True)
    (inner / "casty.toml").write_text('[system]\nname = "inner"')
    no_env.chdir(inner / "deeper")
    assert discover_config() == (inner / "casty.toml").resolve()
    assert load_config().system.name == "inner"


def test_discover_with_start(tmp_path: Path, no_env: pytest.MonkeyPatch) -> None:
    project = tmp_path / "project"
    (project / "src").mkdir(parents=True)
    (project / "casty.toml").write_text("")
    no_env.chdir(tmp_path)
    assert discover_config() is None
    assert discover_config(project / "src") == (project / "casty.toml").resolve()


def test_discover_ignores_a_directory_named_casty_toml(
    tmp_path: Path, no_env: pytest.MonkeyPatch
) -> None:
    (tmp_path / "casty.toml").write_text('[system]\nname = "outer"')
    inner = tmp_path / "inner"
    (inner / "casty.toml").mkdir(parents=True)
    no_env.chdir(inner)
    assert discover_config() == (tmp_path / "casty.toml").resolve()


def test_env_var_wins(tmp_path: Path, no_env: pytest.MonkeyPatch) -> None:
    (tmp_path / "casty.toml").write_text('[system]\nname = "cwd"')
    other = tmp_path / "elsewhere" / "prod.toml"
    other.parent.mkdir()
    other.write_text('[system]\nname = "env"')
    no_env.chdir(tmp_path)
    no_env.setenv("CASTY_CONFIG", str(other))
    assert discover_config() == other
    assert load_config().system.name == "env"


def test_env_var_to_missing_file_is_an_error(tmp_path: Path, no_env: pytest.MonkeyPatch) -> None:
    (tmp_path / "casty.toml").write_text("")
    no_env.chdir(tmp_path)
    missing = tmp_path / "nope.toml"
    no_env.setenv("CASTY_CONFIG", str(missing))
    with pytest.raises(ConfigError, match=r"nope\.toml"):
        load_config()


def test_missing_file_is_config_error(tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    with pytest.raises(ConfigError, match=r"missing\.toml") as info:
        load_config(missing)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, CastyError)
    assert isinstance(info.value.__cause__, OSError)


def test_directory_is_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path)


def test_undecodable_file_is_config_error(tmp_path: Path) -> None:
    path = tmp_path / "casty.toml"
    path.write_bytes(b'[system]\nname = "\xff\xfe"\n')
    with pytest.raises(ConfigError):
        load_config(path)


def test_invalid_file_errors_name_the_file(tmp_path: Path) -> None:
    bad_toml = tmp_path / "broken.toml"
    bad_toml.write_text("x = [")
    with pytest.raises(ConfigError, match=r"broken\.toml") as info:
        load_config(bad_toml)
    assert "invalid TOML" in str(info.value)
    bad_key = tmp_path / "typo.toml"
    bad_key.write_text("[system]\nnmae = 'x'")
    with pytest.raises(ConfigError) as info:
        load_config(bad_key)
    assert "typo.toml" in str(info.value)
    assert "nmae" in str(info.value)
