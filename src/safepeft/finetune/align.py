"""`align`: safety-tune a model with LoRA on refusal data, merge, and save a full model directory.

The result is the *aligned reference* that SafeLoRA/SPLoRA compare against (W_aligned − W_base), as the SafeLoRA
work pairs Llama-2-chat with its base. LoRA targets every linear layer by default so that the aligned − base
difference is non-zero for whichever modules a user's adapter later targets. Output layout of ``out``:

- ``config.json``, ``model.safetensors``, tokenizer files with the chat template: loadable by ``load_model(out)``;
- ``adapter/``: the LoRA adapter that was merged, with its ``safepeft_train.json``;
- ``safepeft_align.json``: the training record (kind ``align``) plus the base model it was aligned from.

The merged files are written to a temporary sibling and renamed into place, with the record last, so a killed align
leaves either nothing or its resumable adapter checkpoints under ``adapter/``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from safepeft.errors import ConfigError
from safepeft.finetune.dataset import load_train_data
from safepeft.finetune.lora import LoraSpec
from safepeft.finetune.provenance import TrainRecord
from safepeft.finetune.rows import DataSpec
from safepeft.finetune.train_spec import TrainSpec
from safepeft.models.safety import check_model_finite
from safepeft.store import atomic_write_json

ALIGN_RECORD = "safepeft_align.json"
ADAPTER_DIR = "adapter"
DEFAULT_DATA = "builtin:safety"
# Measured on the embedded SmolLM2-135M (docs/finetune.md): 36 steps of 8 conversations (~1 epoch) lift refusal on
# the 44 held-out harmful prompts from 0.11 to 0.95 while 6 of 8 unseen benign prompts are still answered; at lr 5e-4
# the model over-refuses (4 of 8 benign refused), and with 24 steps of 4 it refuses 6 of 8 benign prompts.
DEFAULT_TRAIN = TrainSpec(method="lora", max_steps=36, learning_rate=1e-3, batch_size=8, max_length=256,
                          warmup_steps=4, schedule="cosine", checkpoint_every=10)
DEFAULT_LORA = LoraSpec(rank=16, alpha=32, dropout=0.0, target_modules=["all-linear"])


@dataclass
class AlignResult:
    out_dir: Path
    record: TrainRecord
    skipped: list[Any] = field(default_factory=list)
    """Malformed data rows skipped (with --skip-bad-rows)."""


def align(loaded: Any, out_dir: str | os.PathLike[str], *, data: DataSpec | None = None,
          train_spec: TrainSpec = DEFAULT_TRAIN, lora: LoraSpec = DEFAULT_LORA, resume: bool = False,
          overwrite: bool = False, show_progress: bool = True,
          on_data: Callable[[Any], None] | None = None) -> AlignResult:
    """Train a LoRA on refusal data, merge it into ``loaded.model`` (in place) and save the merged model."""
    from safepeft.finetune.trainer import train  # torch: loaded with the work, not when the CLI reads defaults

    if train_spec.method != "lora":
        raise ConfigError(f"align trains LoRA only, got method {train_spec.method!r}.", "Use method lora.")
    out = Path(out_dir)
    if (out / ALIGN_RECORD).is_file() and not overwrite:
        if not resume:
            raise ConfigError(f"{out} already holds an aligned model.", "Pass --overwrite to replace it.")
        return AlignResult(out, TrainRecord.model_validate_json((out / ALIGN_RECORD).read_text(encoding="utf-8")))
    if out.exists() and any(out.iterdir()) and not (out / ADAPTER_DIR).is_dir():
        raise ConfigError(f"Output directory {out} is not empty and was not written by safepeft align.",
                          "Choose a new --out directory.")
    if overwrite and out.exists():
        shutil.rmtree(out)
    data_spec = data or DataSpec(source=DEFAULT_DATA)
    train_data = load_train_data(data_spec, loaded.tokenizer, train_spec.max_length)
    if on_data is not None:  # the CLI prints the detected format before training starts
        on_data(train_data)
    result = train(loaded, train_data, train_spec, lora, out / ADAPTER_DIR, resume=resume, show_progress=show_progress)
    merged = result.model.merge_and_unload()
    record = result.record.model_copy(update={"kind": "align"})
    _save_merged(merged, loaded.tokenizer, out, record)
    return AlignResult(out, record, train_data.skipped)


def _save_merged(model: Any, tokenizer: Any, out: Path, record: TrainRecord) -> None:
    check_model_finite(model, "aligned model")
    tmp = Path(tempfile.mkdtemp(dir=out, prefix=".merged."))
    try:
        model.save_pretrained(str(tmp), safe_serialization=True)
        tokenizer.save_pretrained(str(tmp))
        for path in sorted(tmp.iterdir()):
            os.replace(path, out / path.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    atomic_write_json(out / ALIGN_RECORD, record.model_dump(mode="json"))
