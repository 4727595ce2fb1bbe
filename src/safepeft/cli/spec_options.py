"""Typer options generated from pydantic specs: each option is declared once, as a documented spec field.

``spec_command(func, *groups)`` adds one option per field of each group's spec to ``func``'s own parameters; the
option's help is the field's docstring and its default the field's default. ``func`` receives each group's values
as one dict (``OptionGroup.name``), and builds the spec with ``OptionGroup.build``, which turns a validation error
into a one-line error naming the flag.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import typer
from pydantic import BaseModel, ValidationError

from safepeft.errors import ConfigError


@dataclass(frozen=True)
class OptionGroup:
    """The options of one spec: every field except ``skip``, named ``--field-name`` unless ``flags`` says."""

    spec: type[BaseModel]
    name: str
    """The parameter of the command that receives this group's values as a dict."""
    flags: dict[str, tuple[str, ...]] = field(default_factory=dict)
    skip: tuple[str, ...] = ()
    defaults: dict[str, Any] = field(default_factory=dict)
    """Command-line defaults that differ from the spec's (e.g. a required field given a default)."""
    types: dict[str, Any] = field(default_factory=dict)
    """The command-line type of a field whose spec type typer cannot take (e.g. ``int | "auto"`` as ``str``)."""

    first: tuple[str, ...] = ()
    """Fields listed first in `--help` (the spec's order otherwise)."""

    def fields(self) -> list[str]:
        names = [*self.first, *(name for name in self.spec.model_fields if name not in self.first)]
        return [name for name in names if name not in self.skip]

    def decls(self, name: str) -> tuple[str, ...]:
        return self.flags.get(name, ("--" + name.replace("_", "-"),))

    def build(self, values: dict[str, Any], **extra: Any) -> Any:
        """The spec from the flags' values (None: not given, the spec's default) plus ``extra`` fields."""
        given = {k: v for k, v in values.items() if v is not None}
        try:
            return self.spec(**given, **extra)
        except ValidationError as exc:
            error = exc.errors()[0]
            name = str(error["loc"][0]) if error["loc"] else ""
            flag = self.decls(name)[0] if name in self.spec.model_fields else name
            raise ConfigError(f"Invalid {flag}: {error['msg']} (got {error.get('input')!r}).",
                              f"See `--help` for {flag}.") from None


def _cli_type(annotation: Any) -> tuple[Any, bool]:
    """(type typer can parse, whether the option repeats) for a spec field's annotation."""
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        # Taken as text and checked by the spec: a bad value is then the same one-line error as any other field's
        # (click's choice errors print usage lines); the docstrings name the choices.
        return str, False
    if origin in (tuple, list):
        return list[typing.get_args(annotation)[0]], True  # type: ignore[valid-type]
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            inner, repeated = _cli_type(args[0])
            return (inner if repeated else inner | None), repeated
    return annotation, False


def group_parameters(group: OptionGroup) -> list[inspect.Parameter]:
    """One keyword parameter per field, with a typer Option default: what typer reads to build the flags."""
    parameters = []
    for name in group.fields():
        info = group.spec.model_fields[name]
        annotation, repeated = _cli_type(group.types.get(name, info.annotation))
        default = group.defaults.get(name, ... if info.is_required() else None if repeated else info.default)
        option = typer.Option(default, *group.decls(name), help=_help(info),
                              show_default=default not in (None, ...) and not repeated)
        parameters.append(inspect.Parameter(_param(group, name), inspect.Parameter.KEYWORD_ONLY, default=option,
                                            annotation=annotation))
    return parameters


def _help(info: Any) -> str:
    """The field's docstring on one line, naming the choices of a Literal the docstring does not list."""
    text = " ".join((info.description or "").split())
    choices = [a for arg in _union_args(info.annotation) if typing.get_origin(arg) is typing.Literal
               for a in typing.get_args(arg) if a is not None]
    if choices and not all(str(c) in text for c in choices):
        text += f" One of: {', '.join(map(str, choices))}."
    return text


def _union_args(annotation: Any) -> tuple[Any, ...]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return typing.get_args(annotation)
    return (annotation,)


def field_option(spec: type[BaseModel], name: str, *decls: str) -> Any:
    """One typer Option from one spec field (its default and docstring), for commands that take it alone."""
    info = spec.model_fields[name]
    default = ... if info.is_required() else info.default
    return typer.Option(default, *(decls or ("--" + name.replace("_", "-"),)), help=_help(info))


def _param(group: OptionGroup, name: str) -> str:
    return f"{group.name}__{name}"


def spec_command(func: Callable[..., Any], *groups: OptionGroup) -> Callable[..., Any]:
    """``func`` with every group's options added; each group arrives as ``func(**own, group.name={field: value})``."""
    own = [p for p in inspect.signature(func, eval_str=True).parameters.values() if p.name not in
           {g.name for g in groups}]
    parameters = []
    for group in groups:  # the spec's options first: --model leads the help, as it leads the command line
        parameters += group_parameters(group)
    parameters += [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own]

    def command(**values: Any) -> Any:
        for group in groups:
            values[group.name] = {name: values.pop(_param(group, name)) for name in group.fields()}
        return func(**values)

    command.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in parameters}
    command.__name__, command.__doc__, command.__module__ = func.__name__, func.__doc__, func.__module__
    return command
