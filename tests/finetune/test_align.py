"""`align` on the tiny model: merged model directory equals base + adapter and loads with load_model."""

from __future__ import annotations

import json

import pytest
import torch
from numerics import model_atol

from safepeft.errors import ConfigError
from safepeft.finetune.align import ADAPTER_DIR, ALIGN_RECORD, DEFAULT_LORA, align
from safepeft.finetune.rows import DataSpec
from safepeft.finetune.trainer import TrainSpec
from safepeft.models.loader import load_model

SPEC = TrainSpec(max_steps=2, batch_size=4, max_length=1024, learning_rate=1e-2)


def test_align_saves_a_merged_model_equal_to_base_plus_adapter(tiny_model_dir, chat_jsonl, tmp_path):
    out = tmp_path / "aligned"
    result = align(load_model(str(tiny_model_dir)), out, data=DataSpec(source=str(chat_jsonl)), train_spec=SPEC,
                   show_progress=False)
    assert result.record.kind == "align"
    assert json.loads((out / ALIGN_RECORD).read_text())["base_model"]["fingerprint"]
    merged = load_model(str(out))
    assert merged.tokenizer.chat_template and merged.fingerprint
    adapted = load_model(str(tiny_model_dir), adapter=out / ADAPTER_DIR)
    ids = torch.tensor([[5, 6, 7, 8, 9]])
    with torch.no_grad():
        expected = adapted.model(ids).logits
        # Merged W + BA rounds differently from W and BA applied apart: tolerance from the arithmetic (issue 12).
        torch.testing.assert_close(merged.model(ids).logits, expected, rtol=0,
                                   atol=model_atol(expected, merged.model.config))
        base = load_model(str(tiny_model_dir)).model(ids).logits
    assert not torch.allclose(merged.model(ids).logits, base)
    adapter_config = json.loads((out / ADAPTER_DIR / "adapter_config.json").read_text())
    suffixes = {name.rsplit(".", 1)[-1] for name in adapter_config["target_modules"]}
    assert DEFAULT_LORA.target_modules == ["all-linear"]
    assert suffixes == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    with pytest.raises(ConfigError, match="already holds an aligned model"):
        align(load_model(str(tiny_model_dir)), out, data=DataSpec(source=str(chat_jsonl)), train_spec=SPEC)


def test_builtin_safety_set_fits_the_default_length(tiny_tokenizer):
    from safepeft.finetune.align import DEFAULT_DATA, DEFAULT_TRAIN
    from safepeft.finetune.dataset import load_train_data
    from safepeft.models.tiny import tiny_tokenizer as build

    # The byte-level tiny tokenizer gives ~4x more tokens than SmolLM2's BPE, so 4 x the default length.
    data = load_train_data(DataSpec(source=DEFAULT_DATA), build(), 4 * DEFAULT_TRAIN.max_length)
    assert not data.skipped and len(data.examples) > 200
