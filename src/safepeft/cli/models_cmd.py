"""`safepeft models info SPEC`: architecture, size, dtype, chat template and fingerprint of a model."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from safepeft.cli import options


def info(
    spec: str = typer.Argument(..., help="`embedded`, a .gguf file, an HF directory or a hub id."),
    adapter: Path | None = options.ADAPTER,
    dtype: str = options.DTYPE,
    device: str = options.DEVICE,
    chat_template: Path | None = options.CHAT_TEMPLATE,
    trust_remote_code: bool = options.TRUST_REMOTE_CODE,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Describe a model (loads it)."""
    loaded = options.load(spec, adapter, dtype, device, chat_template, trust_remote_code)
    data = loaded.info()
    if as_json:
        typer.echo(json.dumps(data))
        return
    table = Table(title=f"model {spec}", show_header=False)
    for key, value in data.items():
        table.add_row(key, f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value))
    Console().print(table)


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Inspect models.", no_args_is_help=True)
    group.command("info")(info)
    app.add_typer(group, name="models")
