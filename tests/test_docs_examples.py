"""The Python code blocks of the documentation run, and say what they print.

Every ```` ```python ```` block of ``README.md`` and ``docs/*.md`` is one of two kinds:

- **Runnable** (the default). The blocks of one page run in order, in one module namespace per
  page, like a tutorial read from the top: a block may use what an earlier block of the same
  page defined (``account`` in Getting started), and a block that calls ``trio.run(main)`` runs
  that program for real (guarded by a timeout of ``RUN_TIMEOUT`` seconds). Every ``test_*``
  coroutine function a block defines is then run as pytest-trio would, on an autojump
  ``MockClock`` (passed as ``autojump_clock`` when the test asks for it). A block must not use
  a global name that neither it nor an earlier block of its page binds: a function body
  naming an undefined helper fails here, not only when someone calls it. A line
  ``print(...)  # text`` promises that the block prints the line ``text`` (so does a comment
  alone on the line after a ``print(...)`` that has none).
- **Fragments**, marked by ``<!-- fragment -->`` on the line before the opening fence: pieces
  of code that need a context the page only describes (a ``system`` in scope, a certificate
  file). They are compiled (top-level ``await`` allowed) and their imports are executed, so
  every name they import exists; they are not run.

``<!-- page-module: NAME -->`` before a block makes the page's namespace importable as module
``NAME`` for that block (Getting started's tests import ``bank``, the page's code so far).

The pages' modules are registered in ``sys.modules`` while they run, so message classes
defined in a block cross simulated and real (loopback) networks as they would in an
application's module. Programs run in a temporary working directory (files they create, like a
SQLite journal, go there). Every ```` ```toml ```` block that is not a ``[tool.*]`` table of
``pyproject.toml`` must be a valid ``casty.toml``.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import inspect
import io
import re
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
import trio.testing

from casty_trio.config import parse_config

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
RUN_TIMEOUT = 20.0
"""Seconds (of the clock the program runs on) a ``trio.run`` of a doc block may take."""

_FENCE = re.compile(r"^```(\w*)\s*$")
_MARKER = re.compile(r"^<!--\s*(.*?)\s*-->$")
_PRINT_PROMISE = re.compile(r"^\s*print\(.*\)\s+#\s*(.+?)\s*$")
_PRINT_CALL = re.compile(r"^\s*print\(.*\)\s*$")
_COMMENT_LINE = re.compile(r"^\s*#\s*(.+?)\s*$")
_KNOWN_MARKERS = ("fragment", "page-module:")


@attrs.frozen
class Block:
    page: Path
    line: int  # 1-based line of the first line of code in the page
    language: str
    code: str
    markers: tuple[str, ...]

    @property
    def fragment(self) -> bool:
        return "fragment" in self.markers

    @property
    def page_module(self) -> str | None:
        for marker in self.markers:
            if marker.startswith("page-module:"):
                return marker.partition(":")[2].strip()
        return None

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    def compile(self, flags: int = 0) -> types.CodeType:
        # Padding keeps tracebacks' line numbers equal to the page's.
        source = "\n" * (self.line - 1) + self.code
        return compile(source, str(self.page.relative_to(ROOT)), "exec", flags=flags)


def blocks_of(page: Path) -> list[Block]:
    lines = page.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    index = 0
    while index < len(lines):
        fence = _FENCE.match(lines[index])
        if fence is None:
            index += 1
            continue
        language = fence.group(1)
        markers: list[str] = []
        back = index - 1
        while back >= 0 and (marker := _MARKER.match(lines[back].strip())) is not None:
            markers.append(marker.group(1))
            back -= 1
        end = index + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        code = "\n".join(lines[index + 1 : end]) + "\n"
        found.append(Block(page, index + 2, language, code, tuple(markers)))
        index = end + 1
    return found


def python_blocks(page: Path) -> list[Block]:
    return [b for b in blocks_of(page) if b.language == "python"]


# --------------------------------------------------------------------------- name checks


def _bound_names(tree: ast.AST) -> set[str]:
    """Every name the code binds anywhere (an over-approximation: scopes are not told apart)."""
    bound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store | ast.Del):
            bound.add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.alias):
            bound.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.ExceptHandler | ast.MatchAs | ast.MatchStar) and node.name:
            bound.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            bound.add(node.rest)
    return bound


def unknown_names(block: Block, namespace: dict[str, Any]) -> set[str]:
    tree = ast.parse(block.code)
    used = {
        node.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)
    }
    return used - _bound_names(tree) - set(namespace) - set(dir(builtins))


# --------------------------------------------------------------------------- running


_real_run = trio.run


def _guarded_run(async_fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    async def guarded() -> Any:
        with trio.fail_after(RUN_TIMEOUT):
            return await async_fn(*args)

    return _real_run(guarded, **kwargs)


def _run_test_function(block: Block, name: str, test: Callable[..., Any]) -> None:
    clock = trio.testing.MockClock(autojump_threshold=0)
    parameters = inspect.signature(test).parameters
    unknown = set(parameters) - {"autojump_clock"}
    assert not unknown, f"{block.where}: {name} asks for unsupported fixtures {unknown}"
    kwargs = {"autojump_clock": clock} if "autojump_clock" in parameters else {}

    async def run() -> None:
        with trio.fail_after(RUN_TIMEOUT * 30):  # virtual seconds
            await test(**kwargs)

    _real_run(run, clock=clock)


@contextlib.contextmanager
def page_module(page: Path) -> Iterator[types.ModuleType]:
    name = "docs_" + re.sub(r"\W", "_", page.stem.lower())
    module = types.ModuleType(name)
    module.__file__ = str(page)
    sys.modules[name] = module
    try:
        yield module
    finally:
        del sys.modules[name]


def promises(block: Block) -> list[str]:
    """What the block's ``print`` lines say they print: a comment after the call, or on the
    next line when the call has none."""
    found = []
    lines = block.code.splitlines()
    for index, line in enumerate(lines):
        following = lines[index + 1] if index + 1 < len(lines) else ""
        if (promise := _PRINT_PROMISE.match(line)) is not None:
            found.append(promise.group(1))
        elif _PRINT_CALL.match(line) and (comment := _COMMENT_LINE.match(following)):
            found.append(comment.group(1))
    return found


def run_page(page: Path) -> None:
    with page_module(page) as module:
        namespace = module.__dict__
        aliases: list[str] = []
        try:
            for block in python_blocks(page):
                if block.fragment:
                    continue
                if block.page_module is not None:
                    sys.modules[block.page_module] = module
                    aliases.append(block.page_module)
                missing = unknown_names(block, namespace)
                assert not missing, (
                    f"{block.where}: names neither this block nor an earlier one binds: "
                    f"{sorted(missing)} (define them, or mark the block <!-- fragment -->)"
                )
                before = dict(namespace)
                out = io.StringIO()
                with contextlib.redirect_stdout(out):
                    exec(block.compile(), namespace)
                    for name, value in list(namespace.items()):
                        if (
                            name.startswith("test_")
                            and inspect.iscoroutinefunction(value)
                            and before.get(name) is not value
                        ):
                            _run_test_function(block, name, value)
                printed = [line.strip() for line in out.getvalue().splitlines()]
                for promise in promises(block):
                    assert promise in printed, (
                        f"{block.where}: promised the line {promise!r}, printed {printed!r}"
                    )
        finally:
            for alias in aliases:
                sys.modules.pop(alias, None)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_page_runs(page: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    if not any(not b.fragment for b in python_blocks(page)):
        pytest.skip("no runnable Python block")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CASTY_CONFIG", raising=False)
    monkeypatch.setattr(trio, "run", _guarded_run)
    run_page(page)


# --------------------------------------------------------------------------- static checks


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_fragments_compile_and_import(page: Path) -> None:
    for block in python_blocks(page):
        block.compile(flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)  # a SyntaxError names the line
        if not block.fragment:
            continue  # run by test_page_runs
        body = ast.parse(block.code).body
        imports = [node for node in body if isinstance(node, ast.Import | ast.ImportFrom)]
        exec(compile(ast.Module(body=imports, type_ignores=[]), block.where, "exec"), {})


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_markers_are_known(page: Path) -> None:
    for block in blocks_of(page):
        for marker in block.markers:
            assert marker.startswith(_KNOWN_MARKERS), f"{block.where}: unknown marker {marker!r}"


_PRIVATE_IMPORT = re.compile(r"\bcasty_trio(\.\w+)*\._\w+")


def test_docs_and_examples_import_public_names_only() -> None:
    examples = sorted((ROOT / "examples").glob("*.py"))
    for path in [*PAGES, *examples]:
        if path.name in ("api.md", "architecture.md"):
            continue  # they describe the modules themselves
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            match = _PRIVATE_IMPORT.search(line)
            assert match is None, f"{path.relative_to(ROOT)}:{number}: private {match.group(0)}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_toml_blocks_are_valid_configuration(page: Path) -> None:
    for block in blocks_of(page):
        if block.language != "toml" or block.code.lstrip().startswith("[tool."):
            continue
        parse_config(block.code, source=block.where)
