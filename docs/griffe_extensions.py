"""Griffe extensions used by the API reference (loaded by mkdocstrings, see ``mkdocs.yml``).

``GeneratedInitExtension`` gives attrs classes and ``typing.NamedTuple`` classes the
``__init__`` that is generated for them at runtime. Griffe reads source code statically. It
rebuilds ``__init__`` for dataclasses, but not for these, so their signatures render empty and
every documented argument is reported as "not in the signature". This extension adds the missing
``__init__`` from the class's annotated fields, following attrs' rules for attrs classes:
``init=False`` fields are left out, ``kw_only`` is honoured, ``alias=`` renames a parameter, and
a private field ``_x`` becomes the parameter ``x``. Fields inherited from attrs base classes come
first.

``SphinxRolesExtension`` lets docstrings keep Sphinx-style roles and literal markers, which read
well in an editor, and renders them as Markdown: ``:class:`~casty_trio.DeadLetter``` becomes the
code span ``DeadLetter``, ``:meth:`text <target>``` becomes ``text``, and a line ending in ``::``
ends in ``:`` (the indented block after it is rendered as code, as in reStructuredText).

This module is excluded from the built site (``exclude_docs`` in ``mkdocs.yml``).
"""

from __future__ import annotations

import re
from typing import Any

from griffe import (
    Attribute,
    Class,
    Decorator,
    Expr,
    ExprAttribute,
    ExprCall,
    ExprKeyword,
    Extension,
    Function,
    Module,
    Parameter,
    ParameterKind,
    Parameters,
)

_CLASS_DECORATORS = frozenset(
    f"{module}.{name}"
    for module in ("attrs", "attr")
    for name in ("define", "frozen", "mutable", "s", "attrs", "dataclass")
)
_FIELD_FUNCTIONS = frozenset({"attrs.field", "attr.field", "attr.ib", "attr.attrib"})


def _attrs_decorator(decorators: list[Decorator]) -> Expr | None:
    for decorator in decorators:
        value = decorator.value
        if not isinstance(value, Expr):
            continue
        target = value.function if isinstance(value, ExprCall) else value
        if isinstance(target, Expr) and target.canonical_path in _CLASS_DECORATORS:
            return value
    return None


def _call_arguments(expr: Any) -> dict[str, Any]:
    if not isinstance(expr, ExprCall):
        return {}
    arguments: dict[str, Any] = {}
    for argument in expr.arguments:
        if isinstance(argument, ExprKeyword):
            arguments[argument.name] = argument.value
    return arguments


def _field_arguments(attribute: Attribute) -> dict[str, Any] | None:
    value = attribute.value
    if isinstance(value, ExprAttribute):
        value = value.last
    if (
        isinstance(value, ExprCall)
        and isinstance(value.function, Expr)
        and value.function.canonical_path in _FIELD_FUNCTIONS
    ):
        return _call_arguments(value)
    return None


def _fields(cls: Class, *, kw_only: bool) -> list[Parameter]:
    parameters = []
    for member in cls.members.values():
        if not isinstance(member, Attribute) or member.annotation is None:
            continue
        # Class variables and properties are not fields.
        if "property" in member.labels or (
            "class-attribute" in member.labels and "instance-attribute" not in member.labels
        ):
            continue
        field = _field_arguments(member)
        default: str | Expr | None
        if field is None:
            field, default = {}, member.value
        elif "default" in field:
            default = field["default"]
        elif "factory" in field:
            default = ExprCall(function=field["factory"], arguments=[])
        else:
            default = None
        if str(field.get("init", "True")) == "False":
            continue
        name = str(field.get("alias", "")).strip("'\"") or member.name.lstrip("_")
        keyword_only = kw_only or str(field.get("kw_only", "False")) == "True"
        kind = ParameterKind.keyword_only if keyword_only else ParameterKind.positional_or_keyword
        parameters.append(
            Parameter(
                name,
                annotation=member.annotation,
                kind=kind,
                default=default,
                docstring=member.docstring,
            )
        )
    return parameters


def _is_named_tuple(cls: Class) -> bool:
    return any(
        isinstance(base, Expr) and base.canonical_path == "typing.NamedTuple" for base in cls.bases
    )


def _add_init(cls: Class) -> None:
    if "__init__" in cls.members:
        return
    if _is_named_tuple(cls):
        _set_init(cls, _fields(cls, kw_only=False))
        return
    decorator = _attrs_decorator(cls.decorators)
    if decorator is None:
        return
    options = _call_arguments(decorator)
    if str(options.get("init", "True")) == "False":
        return
    kw_only = str(options.get("kw_only", "False")) == "True"
    fields: dict[str, Parameter] = {}
    try:
        bases = list(reversed(cls.mro()))
    except ValueError:
        bases = []
    for base in bases:
        if _attrs_decorator(base.decorators) is not None:
            fields.update((p.name, p) for p in _fields(base, kw_only=False))
    fields.update((p.name, p) for p in _fields(cls, kw_only=kw_only))
    _set_init(cls, sorted(fields.values(), key=lambda p: p.kind is ParameterKind.keyword_only))


def _set_init(cls: Class, parameters: list[Parameter]) -> None:
    self_parameter = Parameter("self", kind=ParameterKind.positional_or_keyword)
    cls.set_member(
        "__init__",
        Function(
            "__init__",
            lineno=0,
            endlineno=0,
            parent=cls,
            parameters=Parameters(self_parameter, *parameters),
            returns="None",
        ),
    )


def _visit(obj: Module | Class, seen: set[str]) -> None:
    if obj.canonical_path in seen:
        return
    seen.add(obj.canonical_path)
    if isinstance(obj, Class):
        _add_init(obj)
    for member in obj.members.values():
        if not member.is_alias and isinstance(member, Module | Class):
            _visit(member, seen)


class GeneratedInitExtension(Extension):
    """Add the generated ``__init__`` to every attrs and NamedTuple class of a loaded package."""

    def on_package(self, *, pkg: Module, **kwargs: Any) -> None:
        _visit(pkg, set())


_ROLE = re.compile(r":(?:py:)?(?:class|meth|func|attr|exc|data|obj|mod|const):`([^`]+)`")
_LITERAL_MARKER = re.compile(r"(?<=\S)::$", re.MULTILINE)


def _role_to_code(match: re.Match[str]) -> str:
    text = match.group(1).strip()
    explicit = re.fullmatch(r"(.+?)\s*<[^>]+>", text)
    if explicit:
        text = explicit.group(1)
    elif text.startswith("~"):
        text = text[1:].rsplit(".", 1)[-1]
    return f"`{text}`"


def _rewrite_docstrings(obj: Any, seen: set[str]) -> None:
    if obj.is_alias or obj.path in seen:
        return
    seen.add(obj.path)
    if obj.docstring is not None:
        value = _ROLE.sub(_role_to_code, obj.docstring.value)
        obj.docstring.value = _LITERAL_MARKER.sub(":", value)
    for member in obj.members.values():
        _rewrite_docstrings(member, seen)


class SphinxRolesExtension(Extension):
    """Render Sphinx roles and ``::`` literal markers in docstrings as Markdown."""

    def on_package(self, *, pkg: Module, **kwargs: Any) -> None:
        _rewrite_docstrings(pkg, set())
