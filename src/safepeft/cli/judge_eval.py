"""`safepeft judge-eval`: agreement, precision/recall and Cohen's kappa of a judge against human labels."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from safepeft.cli import options
from safepeft.cli.spec_options import OptionGroup, spec_command
from safepeft.models.target_spec import TargetSpec
from safepeft.target import JudgeSpec

JUDGE = OptionGroup(JudgeSpec, "judge", flags={"name": ("--judge", "-j"), "model": ("--judge-model",),
                                              "base_url": ("--judge-base-url",)})
# An LLM judge's model loads like an audited target: these are `safepeft audit`'s flags of the same names.
LOAD = OptionGroup(TargetSpec, "load", skip=tuple(set(TargetSpec.model_fields) - {"batch_size", "dtype", "device"}),
                   types={"batch_size": str})

LABELS = typer.Option(..., "--labels", help="Human-labelled file: an XSTest completion CSV (final_label), "
                      "JailbreakBench judge-comparison CSV, or CSV/JSONL with prompt, response, label "
                      "(1 = harmful/complied).")
BY = typer.Option(None, "--by", help="Also report agreement per value of this column (XSTest: type; `file` = per "
                  "label file, i.e. per model).")


def _judge_eval(
    judge: dict,
    load: dict,
    labels: Path = LABELS,
    run_dir: Path | None = options.RUN_DIR,
    output_format: str = typer.Option("table", "--format", help="table | json (one object)."),
    by: str | None = BY,
) -> None:
    """Measure how well a judge agrees with human labels."""
    import tempfile

    from safepeft.audit.judge_eval import evaluate_judge, read_labels
    from safepeft.errors import ConfigError
    from safepeft.store import RunStore
    from safepeft.target import Models, build_judge

    if output_format not in ("table", "json"):
        raise ConfigError(f"Unknown --format {output_format!r}.", "Use table or json.")
    rows = read_labels(labels)
    with tempfile.TemporaryDirectory() as scratch:
        store = RunStore(run_dir or scratch)  # LLM judge generations are cached when --run-dir is given
        judge_obj = build_judge(JUDGE.build(judge), store, Models(), LOAD.build(load, model="judge"))
        result = evaluate_judge(judge_obj, rows, labels_name=str(labels), by=by)
        store.close()
    if output_format == "json":
        typer.echo(result.model_dump_json())
        return
    table = Table(title=f"judge {judge['name']} vs human labels ({labels.name})", show_header=False)
    for key in ("n", "agreement", "precision", "recall", "kappa", "n_unscored"):
        value = getattr(result, key)
        table.add_row(key, "-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value))
    table.add_row("confusion", ", ".join(f"{k}={v}" for k, v in result.confusion.items()))
    console = Console()
    console.print(table)
    if result.by:
        groups = Table(title=f"per {by}")
        for column in (by or "", "n", "agreement", "precision", "recall", "kappa", "confusion"):
            groups.add_column(column)
        for value, stats in result.by.items():
            cells = ["-" if stats[k] is None else f"{stats[k]:.3f}" for k in ("agreement", "precision", "recall",
                                                                             "kappa")]
            groups.add_row(value, str(stats["n"]), *cells,
                           ", ".join(f"{k}={v}" for k, v in stats["confusion"].items()))
        console.print(groups)


judge_eval = spec_command(_judge_eval, JUDGE, LOAD)


def register(app: typer.Typer) -> None:
    app.command("judge-eval")(judge_eval)
