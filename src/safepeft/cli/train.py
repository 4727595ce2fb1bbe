"""`safepeft train`: fine-tune a model with one PEFT method and write a standard adapter directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from safepeft.cli import options
from safepeft.errors import ConfigError

# Flags that fill method specs; a flag the chosen method does not have is rejected by its spec.
METHOD_FLAGS = {
    "rank": typer.Option(None, "--rank", help="LoRA rank r."),
    "alpha": typer.Option(None, "--alpha", help="LoRA alpha (scale = alpha / rank)."),
    "dropout": typer.Option(None, "--dropout", help="LoRA dropout."),
    "target_modules": typer.Option(None, "--target-modules", help="Comma-separated modules (LoRA/IA3); "
                                   "default from the per-architecture table; 'all-linear' for LoRA."),
    "feedforward_modules": typer.Option(None, "--feedforward-modules",
                                        help="Comma-separated IA3 feed-forward modules."),
    "num_virtual_tokens": typer.Option(None, "--num-virtual-tokens", help="Virtual tokens (prompt/p-tuning)."),
    "init_text": typer.Option(None, "--init-text", help="Prompt-tuning init text."),
    "encoder_hidden_size": typer.Option(None, "--encoder-hidden-size", help="P-tuning encoder hidden size."),
    "safety_data": typer.Option(None, "--safety-data",
                                help="SaLoRA safety calibration rows (default builtin:safety)."),
}
SET = typer.Option(None, "--set", help="Other method option KEY=VALUE (JSON value), repeatable.")
OUT = typer.Option(..., "--out", help="Output adapter directory.")
DATA_FLAGS = {
    "messages_column": typer.Option("messages", "--messages-column", help="Column with chat messages."),
    "prompt_column": typer.Option("prompt", "--prompt-column", help="Column with the user turn."),
    "response_column": typer.Option("response", "--response-column", help="Column with the assistant turn."),
    "split": typer.Option("train", "--split", help="Split of a hub dataset."),
    "skip_bad_rows": typer.Option(False, "--skip-bad-rows", help="Skip malformed rows (counted) instead of stopping."),
    "limit": typer.Option(None, "--limit", min=1, help="Use only the first N rows."),
}
LOOP_FLAGS = {
    "epochs": typer.Option(1.0, "--epochs", help="Passes over the data (ignored with --max-steps)."),
    "max_steps": typer.Option(None, "--max-steps", min=1, help="Optimizer steps."),
    "learning_rate": typer.Option(None, "--lr", help="Peak learning rate (default per method)."),
    "batch_size": typer.Option(4, "--batch-size", min=1, help="Conversations per micro-batch."),
    "grad_accum": typer.Option(1, "--grad-accum", min=1, help="Micro-batches per optimizer step."),
    "max_length": typer.Option(512, "--max-length", min=8, help="Longest conversation in tokens."),
    "seed": typer.Option(0, "--seed"),
    "warmup_steps": typer.Option(0, "--warmup-steps", min=0),
    "schedule": typer.Option("linear", "--schedule", help="constant, linear or cosine decay."),
    "weight_decay": typer.Option(0.0, "--weight-decay", min=0.0),
    "checkpoint_every": typer.Option(50, "--checkpoint-every", min=1, help="Checkpoint every N steps."),
    # None: TrainSpec's default applies, so each default is declared once, in the spec.
    "eval_steps": typer.Option(None, "--eval-steps", min=1, help="Compute the --eval-data loss every N steps and "
                               "after the last one."),
    "log_to": typer.Option(None, "--log-to", help="Also log train loss, learning rate and eval loss to "
                           "`tensorboard` (OUT/tensorboard) or `wandb` (offline unless WANDB_MODE is set)."),
}


def method_options(values: dict[str, Any], settings: list[str] | None) -> dict[str, Any]:
    """Method spec fields from the flags the user actually gave plus --set KEY=VALUE pairs."""
    chosen = {k: v for k, v in values.items() if v is not None}
    for key in ("target_modules", "feedforward_modules"):
        if key in chosen:
            chosen[key] = [m.strip() for m in chosen[key].split(",") if m.strip()]
    for item in settings or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}.", "Example: --set encoder_type=LSTM")
        try:
            chosen[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            chosen[key.strip()] = raw
    return chosen


def train_cmd(
    model: str = options.MODEL,
    method: str = typer.Option("lora", "--method", help="lora, ia3, prompt-tuning, p-tuning, ... "
                               "(`safepeft list methods`)."),
    data: str = typer.Option(..., "--data", help="JSONL/JSON/CSV/Parquet file, a datasets save_to_disk folder, "
                             "builtin:NAME or a hub dataset id (formats: messages, ShareGPT conversations, "
                             "prompt/completion, prompt/response, Alpaca, text)."),
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
    **flags: Any,
) -> None:
    """Fine-tune with LoRA, IA3, prompt tuning or p-tuning (loss on assistant tokens only)."""
    from safepeft.finetune import FINETUNE_METHODS
    from safepeft.finetune.dataset import load_train_data
    from safepeft.finetune.rows import DataSpec
    from safepeft.finetune.trainer import TrainSpec, metric_logger, train

    chosen = FINETUNE_METHODS.get(method)
    method_spec = chosen.make_spec(**method_options({k: flags[k] for k in METHOD_FLAGS}, set_))
    spec = _spec(TrainSpec, method=method, **{k: flags[k] for k in LOOP_FLAGS})
    data_spec = _spec(DataSpec, source=data, **{k: flags[k] for k in DATA_FLAGS})
    eval_spec = None
    if eval_data is not None:  # --limit caps the training rows only
        eval_options = {k: flags[k] for k in DATA_FLAGS if k != "limit"} | {"split": eval_split or flags["split"]}
        eval_spec = _spec(DataSpec, source=eval_data, **eval_options)
    metric_logger(spec.log_to)  # a missing logging library fails before the model loads
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


def _spec(cls: type, **values: Any) -> Any:
    from pydantic import ValidationError

    try:
        return cls(**{k: v for k, v in values.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"Invalid training options ({problems}).", "See `safepeft train --help`.") from exc


def with_flags(command: Any, *groups: dict[str, Any]) -> Any:
    """Give ``command`` (which takes **flags) one keyword parameter per flag so typer exposes them."""
    import inspect

    signature = inspect.signature(command)
    params = [p for p in signature.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    for group in groups:
        params += [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=_type(name))
                   for name, default in group.items()]
    command.__signature__ = signature.replace(parameters=params)
    return command


_TYPES = {"rank": int, "alpha": float, "dropout": float, "num_virtual_tokens": int, "encoder_hidden_size": int,
          "epochs": float, "max_steps": int, "learning_rate": float, "batch_size": int, "grad_accum": int,
          "max_length": int, "seed": int, "warmup_steps": int, "weight_decay": float, "checkpoint_every": int,
          "eval_steps": int, "skip_bad_rows": bool, "limit": int}


def _type(name: str) -> Any:
    base = _TYPES.get(name, str)
    return base | None if base is not bool else bool


def register(app: typer.Typer) -> None:
    app.command("train")(with_flags(train_cmd, METHOD_FLAGS, DATA_FLAGS, LOOP_FLAGS))
