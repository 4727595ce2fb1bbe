"""Entry point: builds the typer app from the command modules and maps errors to exit codes.

A SafepeftError prints one line and exits 2; any other exception is a bug: one line, exit 1 (``--debug`` shows the
traceback for both).
"""

from __future__ import annotations

import importlib
import os
import sys

import typer

from safepeft import __version__
from safepeft.errors import SafepeftError

# Each module exposes register(app). Adding a command is one line here.
COMMAND_MODULES = [
    "safepeft.cli.models_cmd",
    "safepeft.cli.generate",
    "safepeft.cli.list_cmd",
    "safepeft.cli.demo",
    "safepeft.cli.audit",
    "safepeft.cli.judge_eval",
    "safepeft.cli.train",
    "safepeft.cli.align",
    "safepeft.cli.report",
    "safepeft.cli.study",
    "safepeft.cli.repair",
    "safepeft.cli.quantize",
]

app = typer.Typer(
    name="safepeft",
    help="Fine-tune, audit, repair, quantize and re-audit open LLMs for safety and fairness drift.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"safepeft {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
) -> None:
    """safepeft: the fine-tune → audit → repair → quantize/guard → re-audit loop."""


for _module in COMMAND_MODULES:
    importlib.import_module(_module).register(app)


def main(argv: list[str] | None = None) -> None:
    import click

    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or bool(os.environ.get("SAFEPEFT_DEBUG"))
    _quiet_libraries(debug)
    try:
        app(args=argv, prog_name="safepeft", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        typer.echo("Aborted.", err=True)
        sys.exit(130)
    except SafepeftError as exc:
        if debug:
            raise
        typer.echo(f"error: {exc.render()}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        typer.echo("Interrupted; completed work is saved, re-run the same command to continue.", err=True)
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the one place that catches everything
        if debug:
            raise
        typer.echo(f"internal error: {type(exc).__name__}: {exc} (re-run with --debug for the traceback)", err=True)
        sys.exit(1)


def _quiet_libraries(debug: bool) -> None:
    """Library progress bars, deprecation notes and advice would drown our own output (kept with --debug)."""
    import warnings

    if not debug:
        for category in (FutureWarning, DeprecationWarning, UserWarning):
            warnings.filterwarnings("ignore", category=category)
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
