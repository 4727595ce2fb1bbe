"""Entry point: builds the typer app from the command modules and maps errors to exit codes.

Exit codes: 0 done; 1 a bug (one line, ``--debug`` shows the traceback) or failed work (a study step); 2 a usage or
input error (a SafepeftError, an OS error on a path the user gave, a bad option, named); 130 interrupted (Ctrl-C),
with one line saying how to resume.
"""

from __future__ import annotations

import errno
import importlib
import os
import re
import sys
import warnings
from typing import Any

import typer

# Since 0.26 typer vendors click as `typer._click` and raises only those classes, never the `click` package's (which
# may be installed beside it, unused): catch typer's. pyproject bounds typer to the releases with this layout.
from typer._click.exceptions import ClickException, UsageError
from typer.core import TyperOption
from typer.exceptions import Abort as TyperAbort
from typer.exceptions import Exit as TyperExit

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
    "safepeft.cli.judge",
    "safepeft.cli.train",
    "safepeft.cli.align",
    "safepeft.cli.report",
    "safepeft.cli.study",
    "safepeft.cli.repair",
    "safepeft.cli.harden",
    "safepeft.cli.quantize",
]


def _flag_type_rich(self: TyperOption, ctx: object) -> str | None:
    """No type column for on/off flags: typer 0.29 shows `--debug <bool>`, which reads as if it took a value."""
    return None if self.is_flag and self.metavar is None else _TYPE_RICH(self, ctx)


_TYPE_RICH = TyperOption.display_type_rich
TyperOption.display_type_rich = _flag_type_rich  # type: ignore[method-assign]

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
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or bool(os.environ.get("SAFEPEFT_DEBUG"))
    _quiet_libraries(debug)
    sys.exit(run(argv, debug))


def run(argv: list[str], debug: bool = False) -> int:
    """Run the app and return the process exit code: 0 ok, 1 bug or failed work, 2 usage or input error,
    130 interrupted."""
    try:
        code = app(args=argv, prog_name="safepeft", standalone_mode=False)
    except UsageError as exc:
        exc.show()
        return 2
    except ClickException as exc:
        exc.show()
        return exc.exit_code
    except TyperExit as exc:
        code = exc.exit_code
    except (TyperAbort, KeyboardInterrupt):
        code = 130
    except SafepeftError as exc:
        if debug:
            raise
        typer.echo(f"error: {exc.render()}", err=True)
        return exc.exit_code
    except UnicodeDecodeError as exc:
        if debug:
            raise
        typer.echo(f"error: An input file is not UTF-8 text ({exc.reason} at byte {exc.start}). Re-save it as "
                   "UTF-8.", err=True)
        return 2
    except OSError as exc:
        if debug:
            raise
        # An OS error that reached here names a path the user gave (a file where a directory was expected, a
        # read-only folder, a full disk): it is the user's to fix, not a bug.
        typer.echo(f"error: {os_error_message(exc)}", err=True)
        return 2
    except Exception as exc:  # noqa: BLE001 - the one place that catches everything
        if debug:
            raise
        typer.echo(f"internal error: {type(exc).__name__}: {exc} (re-run with --debug for the traceback)", err=True)
        return 1
    # Typer returns (not raises) the code of a `typer.Exit` and turns Ctrl-C into code 130 when not standalone.
    code = code if isinstance(code, int) else 0
    if code == 130:
        typer.echo("Interrupted: completed work is saved; re-run the same command to continue.", err=True)
    return code


def os_error_message(exc: OSError) -> str:
    """One line for an OSError: what failed, on which path, and what to check."""
    where = f" {exc.filename}" if exc.filename else ""
    reason = exc.strerror or str(exc)
    hints = {
        errno.EACCES: "Check the permissions of that path, or choose another output directory.",
        errno.EROFS: "The file system is read-only; choose another output directory.",
        errno.ENOTDIR: "A file stands where a directory is needed; pass a directory path.",
        errno.EEXIST: "Something already exists at that path; remove it or pass another path.",
        errno.ENOSPC: "The disk is full; free space or write elsewhere.",
        errno.ENOENT: "Check that the path exists.",
        errno.EISDIR: "A directory stands where a file is needed; pass a file path.",
    }
    hint = hints.get(exc.errno or -1, "Check the path and its permissions.")
    return f"Cannot access{where}: {reason}. {hint}"


# Third-party warnings that the user cannot act on, each matched by category, the start of the name of the module it
# is attributed to and the start of its text, so that everything else (safepeft's own warnings above all) still
# reaches the user. --debug shows these too.
LIBRARY_NOISE: list[tuple[type[Warning], str, str]] = [
    # peft 0.21's get_peft_model reads the alias that transformers 5.2x deprecated; safepeft never reads it.
    (FutureWarning, "transformers.modeling_utils", "`is_gradient_checkpointing` is deprecated"),
    # peft's prompt-learning forward drops the position ids that transformers' generate() always passes.
    (UserWarning, "peft.peft_model", "Position ids are not supported for parameter efficient tuning"),
    # torch 2.13 deprecates its quantized tensors, which the int8-dynamic scheme's modules are built from; it warns on
    # every load of such a model, and the user can only pick another --scheme (tracked for models/quantized.py).
    (UserWarning, "torch.ao.nn.quantized", "torch.quantize_per_tensor, torch.quantize_per_channel and other"),
]


def _quiet_libraries(debug: bool) -> None:
    """Library progress bars, advice and the known notes above would drown our own output (kept with --debug)."""
    if not debug:
        for category, module, message in LIBRARY_NOISE:
            warnings.filterwarnings("ignore", message=re.escape(message), category=category, module=re.escape(module))
    warnings.showwarning = _show_warning
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


_SOURCE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_LIBRARY_SHOW = warnings.showwarning


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int, *rest: Any) -> None:
    """safepeft's own warnings in one line, like its errors (they are about the user's inputs, not about a source
    line); other libraries' in Python's usual form, which names the file that warned."""
    if os.path.abspath(filename).startswith(_SOURCE + os.sep):
        typer.echo(f"warning: {message}", err=True)
    else:
        _LIBRARY_SHOW(message, category, filename, lineno, *rest)
