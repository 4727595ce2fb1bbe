"""Options shared by commands that load a model, and the one helper that loads it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

MODEL = typer.Option(..., "--model", "-m", help="Model: `embedded`, a .gguf file, an HF directory or a hub id.")
ADAPTER = typer.Option(None, "--adapter", help="PEFT adapter directory applied on top of the model.")
DTYPE = typer.Option("auto", "--dtype", help="auto (fp32 on CPU, bf16 on CUDA), float32, bfloat16, float16.")
DEVICE = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N, mps.")
CHAT_TEMPLATE = typer.Option(None, "--chat-template", help="Jinja chat template file, `chatml` (built-in ChatML) "
                             "or `none` (prompts sent as plain text, for base models).")
TRUST_REMOTE_CODE = typer.Option(False, "--trust-remote-code", help="Allow custom model code from the hub (review it).")
BATCH_SIZE = typer.Option(16, "--batch-size", min=1, help="Prompts per forward batch.")
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
