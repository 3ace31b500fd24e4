"""casty_trio.lowlevel: the runtime's extension points, public and documented."""

from __future__ import annotations

import doctest
from typing import Any

import pytest
import trio

import casty_trio
import casty_trio.lowlevel
from casty_trio import ActorAddress, ActorRef, ActorSystem, Behaviors, _core
from casty_trio.lowlevel import ExtensionBehavior, mailbox_lending, stop_after_queued


def test_the_names_are_the_runtimes_own() -> None:
    for name in casty_trio.lowlevel.__all__:
        assert getattr(casty_trio.lowlevel, name) is getattr(_core, name)
        assert name not in casty_trio.__all__


@pytest.mark.parametrize("name", ["__doc__", *casty_trio.lowlevel.__all__])
def test_docstring_examples(name: str) -> None:
    obj = casty_trio.lowlevel if name == "__doc__" else getattr(casty_trio.lowlevel, name)
    globs = {n: getattr(casty_trio, n) for n in casty_trio.__all__}
    globs.update({n: getattr(casty_trio.lowlevel, n) for n in casty_trio.lowlevel.__all__})
    finder = doctest.DocTestFinder(recurse=False)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    tests = finder.find(obj, name, globs=globs)
    assert tests and tests[0].examples, f"{name} has no examples"
    for test in tests:
        runner.run(test)
    assert runner.summarize(verbose=False).failed == 0


async def test_an_extension_behavior_starts_like_a_setup() -> None:
    import attrs

    started: list[str] = []

    @attrs.frozen
    class Greeting(ExtensionBehavior[str]):
        text: str

        async def start(self, ctx: Any) -> Any:
            started.append(self.text)

            async def receive(ctx: Any, msg: str) -> Any:
                started.append(msg)
                return Behaviors.same()

            return Behaviors.receive(receive)

    async with ActorSystem(name="low") as system:
        ref = system.spawn(Greeting("hello"), "greeter")
        ref.tell("again")
        with trio.fail_after(1):
            while len(started) < 2:
                await trio.sleep(0)
    assert started == ["hello", "again"]


async def test_lending_and_stopping_after_queued() -> None:
    seen: list[int] = []

    async def receive(ctx: Any, msg: int) -> Any:
        seen.append(msg)
        return Behaviors.same()

    async with ActorSystem(name="low") as system:
        ref = system.spawn(Behaviors.receive(receive), "sink")
        lend, give_back = mailbox_lending(ref)
        box = lend()
        assert box is not None
        box.extend([1, 2, 3])
        give_back(box)
        assert stop_after_queued(ref)
        with trio.fail_after(1):
            while system.lookup("/sink") is not None:
                await trio.sleep(0)
    assert seen == [1, 2, 3]
    assert not stop_after_queued(ActorRef(ActorAddress("x", "/y"), _Nowhere()))


class _Nowhere:
    def deliver(self, message: object, /) -> None:
        pass

    def add_watcher(self, watcher: Any, /) -> None:
        pass

    def remove_watcher(self, watcher: Any, /) -> None:
        pass
