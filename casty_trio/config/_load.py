"""Reading ``casty.toml``: TOML, then cattrs into the model, with errors naming the key."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import cattrs
import cattrs.v

from .._errors import ConfigError
from ._model import CastyConfig, regex_problem

__all__ = ["discover_config", "load_config", "parse_config"]

CONFIG_FILE = "casty.toml"
CONFIG_ENV = "CASTY_CONFIG"


def _strict(kind: type) -> Any:
    def structure(value: Any, _: type) -> Any:
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise TypeError(f"expected {kind.__name__}, got {type(value).__name__} {value!r}")
        return value

    return structure


def _describe(exc: BaseException, kind: type | None) -> str:
    """One line per problem, in our words: which value was wrong and what was expected."""
    if isinstance(exc, cattrs.ForbiddenExtraKeysError):
        return f"unknown key(s): {', '.join(sorted(exc.extra_fields))}"
    if isinstance(exc, KeyError):
        return "required key missing"
    if isinstance(exc, TypeError | AttributeError) and (
        "iterable" in str(exc) or "items" in str(exc) or "keys" in str(exc)
    ):
        return "expected a table"
    if isinstance(exc, ValueError | TypeError) and exc.args:
        return str(exc.args[0])
    return cattrs.v.format_exception(exc, kind)


def _converter() -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=True)
    for kind in (int, float, str, bool):
        converter.register_structure_hook(kind, _strict(kind))
    converter.register_structure_hook_func(_is_literal, _structure_literal)
    converter.register_structure_hook_func(lambda kind: kind == tuple[str, ...], _structure_strings)
    converter.register_structure_hook_func(lambda kind: kind == bool | float, _structure_switch)
    return converter


def _structure_switch(value: Any, _: Any) -> bool | float:
    """``true``, ``false`` or a number (a setting that can be on, off or tuned)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return float(value)
    raise TypeError(f"expected true, false or a number, got {type(value).__name__} {value!r}")


def _structure_strings(value: Any, _: Any) -> tuple[str, ...]:
    """A TOML array of strings (and nothing else: a lone string is not a list of characters)."""
    if not isinstance(value, list):
        raise TypeError(f"expected a list of strings, got {type(value).__name__} {value!r}")
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise TypeError(f"item {index}: expected str, got {type(item).__name__} {item!r}")
    return tuple(value)


def _is_literal(kind: Any) -> bool:
    return get_origin(kind) is Literal


def _structure_literal(value: Any, kind: Any) -> Any:
    allowed = get_args(kind)
    if value not in allowed:
        choices = ", ".join(repr(choice) for choice in allowed)
        raise ValueError(f"must be one of {choices}, got {value!r}")
    return value


def parse_config(text: str, *, source: str = CONFIG_FILE) -> CastyConfig:
    """Build a :class:`CastyConfig` from TOML text.

    Raises:
        ConfigError: Invalid TOML, an unknown key, a value of the wrong type or out of range;
            the message names every offending key path.

    Examples:
        >>> parse_config('[system]\\nname = "bank"').system.name
        'bank'
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: invalid TOML: {exc}") from exc
    # Regexes are checked up front so that they are reported together with everything else.
    actors = data.get("actors")
    problems = [
        f"{problem} @ {source}"
        for pattern in (actors if isinstance(actors, dict) else ())
        if (problem := regex_problem(pattern)) is not None
    ]
    try:
        config = _converter().structure(data, CastyConfig)
    except ConfigError as exc:
        problems.append(f"{exc} @ {source}")
    except Exception as exc:
        problems.extend(cattrs.transform_error(exc, path=source, format_exception=_describe))
    else:
        if not problems:
            return config
    raise ConfigError("invalid configuration:\n  " + "\n  ".join(dict.fromkeys(problems)))


def discover_config(start: Path | None = None) -> Path | None:
    """Where the configuration file is: ``$CASTY_CONFIG``, else ``casty.toml`` in ``start``
    (default: the working directory) or the nearest parent directory holding one.

    Not a checkpoint (it only looks at the file system).
    """
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env)
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / CONFIG_FILE
        if candidate.is_file():
            return candidate
    return None


def load_config(path: str | Path | None = None) -> CastyConfig:
    """Load the configuration from ``path``, or from :func:`discover_config`'s file.

    Without a path and without a file to discover, returns the defaults.

    Raises:
        ConfigError: The file cannot be read or holds an invalid configuration.

    Examples:
        >>> config = load_config("casty.toml")   # doctest: +SKIP
    """
    found = Path(path) if path is not None else discover_config()
    if found is None:
        return CastyConfig()
    try:
        text = found.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read configuration file {found}: {exc}") from exc
    return parse_config(text, source=str(found))
