"""Safety data and a safety LoRA for the repairs that need them (SafeMERGE merges one, Safe Delta measures its
curvature on safety conversations). The repair stage cannot import finetune, so the CLI and the study call these
and hand the results to `repair_adapter(..., inputs=...)`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safepeft.finetune.builtin import read_package_jsonl

SAFETY_STEPS = 36
"""Steps of the safety LoRA (the `safepeft align` default: ~1 epoch of builtin:safety, docs/finetune.md)."""


def safety_conversations() -> list[list[dict[str, str]]]:
    """builtin:safety's harmful requests with their refusals, as chats."""
    return [row["messages"] for row in read_package_jsonl("safety.jsonl") if row.get("kind") == "harmful"]


def train_safety_adapter(aligned: str, like: str | Path, out: str | Path, steps: int = SAFETY_STEPS,
                         device: str = "auto") -> Path:
    """A LoRA on the aligned model trained on builtin:safety, with the rank, alpha and target modules of the adapter
    at `like` (SafeMERGE's factor-wise merge needs equal ranks), on `device`. Resumes a partial run in `out`."""
    from safepeft.finetune.dataset import load_train_data
    from safepeft.finetune.lora import LoraSpec
    from safepeft.finetune.rows import DataSpec
    from safepeft.finetune.trainer import TrainSpec, train
    from safepeft.models.loader import load_model

    config: dict[str, Any] = json.loads((Path(like) / "adapter_config.json").read_text(encoding="utf-8"))
    targets = config.get("target_modules")
    lora = LoraSpec(rank=int(config["r"]), alpha=float(config.get("lora_alpha", config["r"])), dropout=0.0,
                    target_modules=sorted(targets) if isinstance(targets, list) else None)
    spec = TrainSpec(method="lora", max_steps=steps, learning_rate=1e-3, batch_size=8, max_length=256,
                     warmup_steps=min(4, steps - 1), schedule="cosine")
    loaded = load_model(aligned, device=device)
    data = load_train_data(DataSpec(source="builtin:safety"), loaded.tokenizer, spec.max_length)
    train(loaded, data, spec, lora, Path(out), resume=True, show_progress=False)
    return Path(out)
