"""An import-linter contract: no package uses another package's private names.

Each top-level package of ``casty_trio`` (``_core``, ``remote``, ``cluster``, ``sharding``, ...)
may import only the public names of the others: ``from ..remote import RemotingPort`` is fine,
``from ..remote._remoting import _RemoteTarget`` is not (a name that starts with ``_`` and is
not a dunder). Outside ``_core``, reading a private attribute of a system (``system._cells``)
is refused too: what an upper layer needs beyond the public API is a documented port.

Configured in ``pyproject.toml``::

    [tool.importlinter]
    contract_types = ["private_names: tools.import_contracts.PrivateNamesContract"]

    [[tool.importlinter.contracts]]
    name = "No package uses another package's private names"
    type = "private_names"
"""

from __future__ import annotations

import ast
import importlib.util
import pathlib
import re
from typing import Any

from importlinter import Contract, ContractCheck, output

__all__ = ["PrivateNamesContract", "private_uses"]

_SYSTEM_PRIVATE = re.compile(r"\bsystem\._[a-z]")


def _package_of(root: pathlib.Path, path: pathlib.Path) -> str:
    parts = path.relative_to(root).parts
    return parts[0] if len(parts) > 1 else "<top>"


def _imported_package(root: pathlib.Path, path: pathlib.Path, node: ast.ImportFrom) -> str | None:
    """The top-level package ``node`` imports from, or None outside the root package."""
    if node.level == 0:
        module = node.module or ""
        if module != root.name and not module.startswith(root.name + "."):
            return None
        rest = module.split(".")[1:]
        return rest[0] if rest else "<top>"
    base = list(path.relative_to(root).parts[:-1])
    up = node.level - 1
    if up > len(base):
        return None
    base = base[: len(base) - up]
    full = base + [part for part in (node.module or "").split(".") if part]
    return full[0] if full else "<top>"


def private_uses(root: pathlib.Path) -> list[str]:
    """Every use of another package's private name under ``root``, as ``path:line: what``."""
    offences: list[str] = []
    for path in sorted(root.rglob("*.py")):
        package = _package_of(root, path)
        text = path.read_text()
        for node in ast.walk(ast.parse(text, filename=str(path))):
            if not isinstance(node, ast.ImportFrom):
                continue
            target = _imported_package(root, path, node)
            if target is None or target == package:
                continue
            for alias in node.names:
                name = alias.name
                if name.startswith("_") and not name.startswith("__"):
                    offences.append(f"{path}:{node.lineno}: imports {name} from {target}")
        if package != "_core":
            for number, line in enumerate(text.splitlines(), 1):
                if _SYSTEM_PRIVATE.search(line) and not line.lstrip().startswith("#"):
                    offences.append(f"{path}:{number}: reads {line.strip()[:60]}")
    return offences


class PrivateNamesContract(Contract):
    """Kept when no module imports a private name of another top-level package."""

    def check(self, graph: Any, verbose: bool) -> ContractCheck:
        spec = importlib.util.find_spec(self.session_options["root_packages"][0])
        assert spec is not None and spec.submodule_search_locations is not None
        root = pathlib.Path(next(iter(spec.submodule_search_locations)))
        offences = private_uses(root)
        return ContractCheck(kept=not offences, metadata={"offences": offences})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for offence in check.metadata["offences"]:
            output.print_error(offence)
            output.new_line()
