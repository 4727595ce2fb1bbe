"""Fixtures for fine-tuning tests: small chat data files (short rows keep the byte-level tiny model fast)."""

from __future__ import annotations

from pathlib import Path

import pytest
from finetune_helpers import SHORT_ROWS, write_jsonl


@pytest.fixture
def chat_jsonl(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "chat.jsonl", SHORT_ROWS)


@pytest.fixture
def train_data(chat_jsonl: Path, tiny_tokenizer):
    """Tokenized SHORT_ROWS (4 rows: one batch of 4 is the whole set, so every step sees the same data)."""
    from safepeft.finetune.dataset import load_train_data
    from safepeft.finetune.rows import DataSpec

    return load_train_data(DataSpec(source=str(chat_jsonl)), tiny_tokenizer, max_length=128)
