"""``safepeft_train.json``: everything needed to know what an adapter is and to reproduce it."""

from __future__ import annotations

import platform
from datetime import datetime, timezone
from importlib import metadata
from typing import Any

from safepeft.records.base import Record

TRAIN_RECORD = "safepeft_train.json"
LIBRARIES = ("safepeft", "torch", "transformers", "peft", "safetensors", "accelerate")


class TrainRecord(Record):
    schema_version: int = 1
    """Version of this file's layout."""
    kind: str = "train"
    """What produced the directory: `train` (adapter) or `align` (merged model)."""
    method: str
    """Fine-tuning method name (see `safepeft list methods`)."""
    method_options: dict[str, Any]
    """The method's spec, with defaults filled in."""
    hyperparameters: dict[str, Any]
    """Trainer settings (steps, learning rate actually used, batch size, schedule, seed ...)."""
    seed: int
    """Seed of adapter init, data order and dropout."""
    base_model: dict[str, Any]
    """Spec, source kind and content fingerprint of the base model."""
    data: dict[str, Any]
    """Data source, sha256 of the conversations trained on, row/token counts, skipped rows."""
    steps: int
    """Optimizer steps taken."""
    final_loss: float
    """Mean assistant-token cross-entropy of the last step."""
    losses: list[float]
    """Mean assistant-token cross-entropy of every step."""
    wall_time_s: float
    """Training wall time, summed over resumed sessions."""
    resumed_from: list[int]
    """Checkpoint steps the run was resumed from (empty for an uninterrupted run)."""
    versions: dict[str, str]
    """Library versions and Python/platform."""
    created_at: str
    """UTC time the output was written."""
    extras: dict[str, Any] = {}
    """Method-specific facts (e.g. calibration statistics)."""


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "platform": platform.platform()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def now_utc() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
