"""`safepeft align`: LoRA safety-tuning on refusal data, merged into a full model (the aligned reference)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from safepeft.cli import options
from safepeft.cli.spec_options import OptionGroup, spec_command
from safepeft.cli.train import report_skipped
from safepeft.finetune.align import DEFAULT_LORA, DEFAULT_TRAIN
from safepeft.finetune.rows import DataSpec
from safepeft.finetune.train_spec import TrainSpec

# The training and data flags are the fields of the specs they fill (as `safepeft train`'s), defaulting to align's
# own recipe (finetune/align.py DEFAULT_TRAIN) instead of a fine-tune's.
LOOP = OptionGroup(TrainSpec, "loop", flags={"max_steps": ("--steps",), "learning_rate": ("--lr",)},
                   skip=tuple(set(TrainSpec.model_fields) - {"max_steps", "learning_rate", "batch_size", "max_length",
                                                               "seed"}),
                   defaults={k: getattr(DEFAULT_TRAIN, k) for k in ("max_steps", "learning_rate", "batch_size",
                                                                    "max_length", "seed")})
DATA = OptionGroup(DataSpec, "data", flags={"source": ("--data",)}, defaults={"source": "builtin:safety"})


def _align(
    loop: dict[str, Any],
    data: dict[str, Any],
    model: str = options.MODEL,
    out: Path = typer.Option(..., "--out", help="Output directory for the merged, aligned model."),
    rank: int | None = typer.Option(None, "--rank", min=1, help=f"LoRA rank (default {DEFAULT_LORA.rank}, all "
                                    "linear layers; alpha = 2 x rank)."),
    resume: bool = typer.Option(False, "--resume", help="Continue a killed align run."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing aligned model in --out."),
    dtype: str = options.DTYPE,
    device: str = options.DEVICE,
    chat_template: Path | None = options.CHAT_TEMPLATE,
    trust_remote_code: bool = options.TRUST_REMOTE_CODE,
) -> None:
    """Safety-tune a model (LoRA on refusal data, then merged) into an aligned reference model."""
    from safepeft.finetune.align import align

    train_spec = LOOP.build({**DEFAULT_TRAIN.model_dump(), **loop})
    lora = DEFAULT_LORA if rank is None else DEFAULT_LORA.model_copy(update={"rank": rank, "alpha": 2 * rank})
    loaded = options.load(model, None, dtype, device, chat_template, trust_remote_code)
    result = align(loaded, out, data=DATA.build(data), train_spec=train_spec, lora=lora, resume=resume,
                   overwrite=overwrite, on_data=lambda d: typer.echo(d.describe(), err=True))
    report_skipped(result.skipped)
    typer.echo(f"Saved aligned model to {result.out_dir} ({result.record.steps} steps, final loss "
               f"{result.record.final_loss:.4f}); use it as --model {result.out_dir}.")


align_cmd = spec_command(_align, LOOP, DATA)


def register(app: typer.Typer) -> None:
    app.command("align")(align_cmd)
