"""`safepeft judge-eval`: agreement, precision/recall and Cohen's kappa of a judge against human labels."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from safepeft.cli import options
from safepeft.cli.audit import JUDGE, JUDGE_MODEL, JUDGE_URL, KEY_ENV, build_judge

LABELS = typer.Option(..., "--labels", help="Human-labelled file: an XSTest completion CSV (final_label), "
                      "JailbreakBench judge-comparison CSV, or CSV/JSONL with prompt, response, label "
                      "(1 = harmful/complied).")
BY = typer.Option(None, "--by", help="Also report agreement per value of this column (XSTest: type; `file` = per "
                  "label file, i.e. per model).")


def judge_eval(
    labels: Path = LABELS,
    judge: str = JUDGE,
    judge_model: str | None = JUDGE_MODEL,
    judge_base_url: str | None = JUDGE_URL,
    api_key_env: str | None = KEY_ENV,
    run_dir: Path | None = options.RUN_DIR,
    output_format: str = typer.Option("table", "--format", help="table | json (one object)."),
    by: str | None = BY,
    batch_size: int = options.BATCH_SIZE,
    dtype: str = options.DTYPE,
    device: str = options.DEVICE,
) -> None:
    """Measure how well a judge agrees with human labels."""
    import tempfile

    from safepeft.audit.judge_eval import evaluate_judge, read_labels
    from safepeft.errors import ConfigError
    from safepeft.store import RunStore

    if output_format not in ("table", "json"):
        raise ConfigError(f"Unknown --format {output_format!r}.", "Use table or json.")
    rows = read_labels(labels)
    with tempfile.TemporaryDirectory() as scratch:
        store = RunStore(run_dir or scratch)  # LLM judge generations are cached when --run-dir is given
        judge_obj = build_judge(judge, judge_model, judge_base_url, api_key_env, store,
                                batch_size=batch_size, dtype=dtype, device=device)
        result = evaluate_judge(judge_obj, rows, labels_name=str(labels), by=by)
        store.close()
    if output_format == "json":
        typer.echo(result.model_dump_json())
        return
    table = Table(title=f"judge {judge} vs human labels ({labels.name})", show_header=False)
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


def register(app: typer.Typer) -> None:
    app.command("judge-eval")(judge_eval)
