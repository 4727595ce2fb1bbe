"""Options shared by commands that load a model, and the one helper that loads it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from safepeft.cli.spec_options import field_option
from safepeft.models.target_spec import TargetSpec

# Declared once, as TargetSpec's fields (the flags `audit` and `generate` generate from the whole spec).
MODEL = field_option(TargetSpec, "model", "--model", "-m")
ADAPTER = field_option(TargetSpec, "adapter")
DTYPE = field_option(TargetSpec, "dtype")
DEVICE = field_option(TargetSpec, "device")
CHAT_TEMPLATE = field_option(TargetSpec, "chat_template")
TRUST_REMOTE_CODE = field_option(TargetSpec, "trust_remote_code")


RUN_DIR = typer.Option(None, "--run-dir", help="Store every generation here (SQLite); re-running resumes.")


def load(
    model: str,
    adapter: Path | None = None,
    dtype: str = "auto",
    device: str = "auto",
    chat_template: Path | None = None,
    trust_remote_code: bool = False,
) -> Any:
    from transformers.utils import logging as hf_logging

    from safepeft.models.loader import load_model

    hf_logging.disable_progress_bar()
    return load_model(
        model, adapter=adapter, dtype=dtype, device=device, chat_template=chat_template,
        trust_remote_code=trust_remote_code,
    )
