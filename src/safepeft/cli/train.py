"""`safepeft train`: fine-tune a model with one PEFT method and write a standard adapter directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from pydantic import BaseModel, Field, create_model

from safepeft.cli import options
from safepeft.cli.spec_options import OptionGroup, spec_command
from safepeft.errors import ConfigError
from safepeft.finetune.rows import DataSpec
from safepeft.finetune.train_spec import TrainSpec

SET = typer.Option(None, "--set", help="Other method option KEY=VALUE (JSON value), repeatable.")
OUT = typer.Option(..., "--out", help="Output adapter directory.")


def _method_flags() -> type[BaseModel]:
    """One optional field per hyper-parameter of any registered method, documented by the method's own docstring.
    A flag the chosen method does not have is rejected by its spec; a method's default applies when not given."""
    from safepeft.finetune import FINETUNE_METHODS

    fields: dict[str, Any] = {}
    owners: dict[str, list[str]] = {}
    # LoRA first: a field several methods share is documented in LoRA's words, the method most people train.
    for name in sorted(FINETUNE_METHODS.names(), key=lambda n: n != "lora"):
        for field, info in FINETUNE_METHODS.get(name).spec_class.model_fields.items():
            owners.setdefault(field, []).append(name)
            if field not in fields:
                fields[field] = (info.annotation | None, Field(None, description=info.description))
    for field, (annotation, info) in fields.items():
        fields[field] = (annotation, Field(None, description=f"{info.description} ({', '.join(owners[field])})"))
    return create_model("MethodFlags", **fields)


# Each flag is a documented field of the spec it fills, declared there once (TrainSpec, DataSpec, the methods').
METHOD = OptionGroup(_method_flags(), "method_flags")
LOOP = OptionGroup(TrainSpec, "loop", flags={"learning_rate": ("--lr",)})
DATA = OptionGroup(DataSpec, "data", flags={"source": ("--data",)})


def method_options(values: dict[str, Any], settings: list[str] | None) -> dict[str, Any]:
    """Method spec fields from the flags the user actually gave plus --set KEY=VALUE pairs."""
    chosen = {k: v for k, v in values.items() if v is not None}
    for key, value in chosen.items():
        if isinstance(value, list):  # `--target-modules q_proj,v_proj` and repeated flags both work
            chosen[key] = [m.strip() for item in value for m in item.split(",") if m.strip()]
    for item in settings or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}.", "Example: --set encoder_type=LSTM")
        try:
            chosen[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            chosen[key.strip()] = raw
    return chosen


def _train(
    method_flags: dict[str, Any],
    loop: dict[str, Any],
    data: dict[str, Any],
    model: str = options.MODEL,
    out: Path = OUT,
    eval_data: str | None = typer.Option(None, "--eval-data", help="Validation rows in any --data format (same "
                                         "column options); their loss is shown and recorded during training."),
    eval_split: str | None = typer.Option(None, "--eval-split", help="Split of a hub --eval-data (default: --split)."),
    resume: bool = typer.Option(False, "--resume", help="Continue a killed run from its last checkpoint."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing run in --out."),
    set_: list[str] = SET,
    dtype: str = options.DTYPE,
    device: str = options.DEVICE,
    chat_template: Path | None = options.CHAT_TEMPLATE,
    trust_remote_code: bool = options.TRUST_REMOTE_CODE,
) -> None:
    """Fine-tune with LoRA, IA3, prompt tuning or p-tuning (loss on assistant tokens only)."""
    from safepeft.finetune import FINETUNE_METHODS
    from safepeft.finetune.dataset import load_train_data
    from safepeft.finetune.trainer import metric_logger, train

    spec = LOOP.build(loop)
    method = spec.method
    method_spec = FINETUNE_METHODS.get(method).make_spec(**method_options(method_flags, set_))
    data_spec = DATA.build(data)
    eval_spec = None
    if eval_data is not None:  # --limit caps the training rows only
        eval_spec = DATA.build({**data, "source": eval_data, "limit": None, "split": eval_split or data["split"]})
    metric_logger(spec.log_to)  # a missing logging library fails before the model loads
    if spec.load_in_4bit:  # QLoRA: the base in 4-bit NF4 on the GPU (refused without CUDA or bitsandbytes)
        from safepeft.finetune.qlora import load_4bit

        loaded = load_4bit(model, dtype=dtype, device=device, chat_template=chat_template,
                           trust_remote_code=trust_remote_code)
    else:
        loaded = options.load(model, None, dtype, device, chat_template, trust_remote_code)
    train_data = load_train_data(data_spec, loaded.tokenizer, spec.max_length)
    typer.echo(train_data.describe(), err=True)
    report_skipped(train_data.skipped)
    held_out = None
    if eval_spec is not None:
        held_out = load_train_data(eval_spec, loaded.tokenizer, spec.max_length)
        typer.echo(f"eval {held_out.describe()}", err=True)
        report_skipped(held_out.skipped)
    result = train(loaded, train_data, spec, method_spec, out, resume=resume, overwrite=overwrite,
                   eval_data=held_out)
    record = result.record
    evaluated = record.extras.get("eval")
    eval_note = f", eval loss {evaluated['final_loss']:.4f}" if evaluated else ""
    typer.echo(f"Saved {method} adapter to {out} ({record.steps} steps, final loss {record.final_loss:.4f}"
               f"{eval_note}, {record.data['rows']} rows, {record.wall_time_s:.1f} s).")


def report_skipped(skipped: list[Any]) -> None:
    if skipped:
        first = skipped[0]
        typer.echo(f"Skipped {len(skipped)} malformed row(s); first: {first.source}: {first.reason}", err=True)


train_cmd = spec_command(_train, LOOP, DATA, METHOD)


def register(app: typer.Typer) -> None:
    app.command("train")(train_cmd)
