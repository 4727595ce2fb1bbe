"""`safepeft align`: LoRA safety-tuning on refusal data, merged into a full model (the aligned reference)."""

from __future__ import annotations

from pathlib import Path

import typer

from safepeft.cli import options
from safepeft.cli.train import _spec, report_skipped


def align_cmd(
    model: str = options.MODEL,
    out: Path = typer.Option(..., "--out", help="Output directory for the merged, aligned model."),
    data: str = typer.Option("builtin:safety", "--data", help="Refusal data: builtin:safety, a file "
                             "(messages, prompt/response or Alpaca instruction/output rows) or a hub dataset id."),
    steps: int | None = typer.Option(None, "--steps", min=1, help="Optimizer steps (default 36)."),
    lr: float | None = typer.Option(None, "--lr", help="Peak learning rate (default 1e-3)."),
    batch_size: int | None = typer.Option(None, "--batch-size", min=1, help="Conversations per step (default 8)."),
    rank: int | None = typer.Option(None, "--rank", min=1, help="LoRA rank (default 16, all linear layers)."),
    max_length: int | None = typer.Option(None, "--max-length", min=8, help="Longest conversation (default 256)."),
    seed: int | None = typer.Option(None, "--seed"),
    skip_bad_rows: bool = typer.Option(False, "--skip-bad-rows", help="Skip malformed rows instead of stopping."),
    prompt_column: str = typer.Option("prompt", "--prompt-column", help="Column with the user turn."),
    response_column: str = typer.Option("response", "--response-column", help="Column with the assistant turn."),
    resume: bool = typer.Option(False, "--resume", help="Continue a killed align run."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing aligned model in --out."),
    dtype: str = options.DTYPE,
    device: str = options.DEVICE,
    chat_template: Path | None = options.CHAT_TEMPLATE,
    trust_remote_code: bool = options.TRUST_REMOTE_CODE,
) -> None:
    """Safety-tune a model (LoRA on refusal data, then merged) into an aligned reference model."""
    from safepeft.finetune.align import DEFAULT_LORA, DEFAULT_TRAIN, align
    from safepeft.finetune.rows import DataSpec

    train_spec = _spec(type(DEFAULT_TRAIN), **(DEFAULT_TRAIN.model_dump() | _given(
        max_steps=steps, learning_rate=lr, batch_size=batch_size, max_length=max_length, seed=seed)))
    lora = DEFAULT_LORA.model_copy(update=_given(rank=rank, alpha=2 * rank if rank else None))
    data_spec = _spec(DataSpec, source=data, skip_bad_rows=skip_bad_rows, prompt_column=prompt_column,
                      response_column=response_column)
    loaded = options.load(model, None, dtype, device, chat_template, trust_remote_code)
    result = align(loaded, out, data=data_spec, train_spec=train_spec, lora=lora, resume=resume, overwrite=overwrite,
                   on_data=lambda d: typer.echo(d.describe(), err=True))
    report_skipped(result.skipped)
    typer.echo(f"Saved aligned model to {result.out_dir} ({result.record.steps} steps, final loss "
               f"{result.record.final_loss:.4f}); use it as --model {result.out_dir}.")


def _given(**values: object) -> dict[str, object]:
    return {k: v for k, v in values.items() if v is not None}


def register(app: typer.Typer) -> None:
    app.command("align")(align_cmd)
