"""`safepeft judge train`: fit the `classifier` judge on human-labelled completions (offline, minutes on a CPU)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from safepeft.cli import options

judge_app = typer.Typer(help="Train offline judges.", no_args_is_help=True)

LABELS = typer.Option(..., "--labels", help="Human-labelled file(s), one CV group each: XSTest completion CSVs, "
                      "JailbreakBench judge-comparison, or CSV/JSONL with prompt, response, label. Repeatable.")
CV_LABELS = typer.Option(None, "--cv-labels", help="Labelled file(s) scored by k-fold CV only, never in the "
                         "final fit (e.g. a test set). Repeatable.")
OUT = typer.Option(..., "--out", "-o", help="Judge directory to write (probe + provenance).")
BASE = typer.Option("embedded", "--base", help="Model whose hidden states the probe reads.")
LAYER = typer.Option(16, "--layer", help="Decoder layer pooled (1-based).")
POOLING = typer.Option("mean", "--pooling", help="mean | last.")
L2 = typer.Option(100.0, "--l2", help="L2 penalty of the logistic regression.")
MAX_TOKENS = typer.Option(160, "--max-completion-tokens", help="Completion tokens read.")
BATCH = typer.Option(16, "--batch-size", min=1, help="Rows per forward pass.")


@judge_app.command("train")
def train(
    labels: list[Path] = LABELS,
    out: Path = OUT,
    cv_labels: list[Path] = CV_LABELS,
    base: str = BASE,
    layer: int = LAYER,
    pooling: str = POOLING,
    l2: float = L2,
    max_completion_tokens: int = MAX_TOKENS,
    batch_size: int = BATCH,
    device: str = options.DEVICE,
) -> None:
    """Fit the classifier judge; prints its cross-validated agreement. Use it with --judge-model DIR."""
    from pydantic import ValidationError

    from safepeft.audit.judges.train import JudgeTrainSpec, train_judge
    from safepeft.errors import ConfigError
    from safepeft.models.weights import resolve_device

    try:
        spec = JudgeTrainSpec(base=base, layer=layer, pooling=pooling, l2=l2,
                              max_completion_tokens=max_completion_tokens, batch_size=batch_size)
    except ValidationError as exc:
        error = exc.errors()[0]
        raise ConfigError(f"Invalid --{str(error['loc'][0]).replace('_', '-')}: {error['msg']} "
                          f"(got {error.get('input')!r}).") from None
    device = resolve_device(device)  # a device this machine lacks fails before the label files are read
    provenance = train_judge(labels, out, spec, cv_files=cv_labels or [], device=device)
    summary = {"out": str(out), "validation": {k: provenance["validation"].get(k)
                                               for k in ("method", "n", "agreement", "kappa", "confusion")},
               "cv_labels": {name: v["agreement"] for name, v in provenance["cv_labels"].items()}}
    typer.echo(json.dumps(summary))


def register(app: typer.Typer) -> None:
    app.add_typer(judge_app, name="judge")
