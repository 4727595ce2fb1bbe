"""`safepeft list [KIND]`: what each registry holds (methods, suites, judges, attacks, quantizers, guards ...)."""

from __future__ import annotations

import importlib

import typer
from rich.console import Console
from rich.table import Table

from safepeft.errors import UnknownNameError
from safepeft.registry import Registry, describe

# kind -> "module:attr" of its Registry. Stages add their registry here when they land.
REGISTRIES: dict[str, str] = {
    "backend": "safepeft.models.backends:BACKENDS",
    "suite": "safepeft.audit.suites:SUITES",
    "judge": "safepeft.audit.judges:JUDGES",
    "method": "safepeft.finetune:FINETUNE_METHODS",
    "dataset": "safepeft.finetune.builtin:BUILTIN_DATASETS",
    "report-format": "safepeft.report:RENDERERS",
    "step-kind": "safepeft.study.kinds:STEP_KINDS",
    "repair": "safepeft.repair:REPAIR_METHODS",
    "hardener": "safepeft.repair:HARDEN_METHODS",
    "attack": "safepeft.audit.attacks:ATTACKS",
    "quantizer": "safepeft.quantize:QUANTIZERS",
    "guard": "safepeft.guard:GUARDS",
}


def load_registry(kind: str) -> Registry:
    module_name, _, attr = REGISTRIES[kind].partition(":")
    return getattr(importlib.import_module(module_name), attr)


def list_plugins(kind: str | None = typer.Argument(None, help="Only this kind (e.g. judge, suite).")) -> None:
    """List everything that can be named on the command line."""
    kinds = sorted(REGISTRIES)
    if kind is not None:
        singular = kind[:-1] if kind.endswith("s") and kind[:-1] in REGISTRIES else kind
        if singular not in REGISTRIES:
            raise UnknownNameError(f"Unknown registry kind {kind!r}.", f"Available: {', '.join(kinds)}.")
        kinds = [singular]
    console = Console()
    for name in kinds:
        registry = load_registry(name)
        table = Table(title=f"{name}s", show_header=True)
        table.add_column("name")
        table.add_column("description")
        for entry, obj in registry.items():
            table.add_row(entry, describe(obj))
        console.print(table)


def register(app: typer.Typer) -> None:
    app.command("list")(list_plugins)
