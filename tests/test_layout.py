"""The layout rules import-linter checks in CI, also run here: no package uses another
package's private names, and the check catches one that does."""

from __future__ import annotations

import pathlib

from tools.import_contracts import private_uses

ROOT = pathlib.Path(__file__).resolve().parent.parent / "casty_trio"


def _tree(tmp_path: pathlib.Path, files: dict[str, str]) -> pathlib.Path:
    root = tmp_path / "pkg"
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_casty_trio_uses_no_private_name_of_another_package() -> None:
    assert private_uses(ROOT) == []


def test_a_private_name_imported_across_packages_is_caught(tmp_path: pathlib.Path) -> None:
    root = _tree(
        tmp_path,
        {
            "__init__.py": "",
            "low/__init__.py": "from ._impl import Public\n",
            "low/_impl.py": "class Public: ...\nclass _Hidden: ...\n",
            "high/__init__.py": "",
            "high/_use.py": "from ..low._impl import Public, _Hidden\n",
        },
    )
    assert private_uses(root) == [f"{root}/high/_use.py:1: imports _Hidden from low"]


def test_a_private_name_of_the_same_package_is_fine(tmp_path: pathlib.Path) -> None:
    root = _tree(
        tmp_path,
        {
            "__init__.py": "",
            "low/__init__.py": "",
            "low/_impl.py": "class _Hidden: ...\n",
            "low/_other.py": "from ._impl import _Hidden\n",
        },
    )
    assert private_uses(root) == []


def test_reading_a_private_attribute_of_a_system_is_caught(tmp_path: pathlib.Path) -> None:
    root = _tree(
        tmp_path,
        {
            "__init__.py": "",
            "high/__init__.py": "",
            "high/_use.py": "def f(system):\n    return system._cells\n",
        },
    )
    assert private_uses(root) == [f"{root}/high/_use.py:2: reads return system._cells"]
