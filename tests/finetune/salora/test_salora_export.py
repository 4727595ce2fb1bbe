"""Exports: native (exact, resumable) and portable rank-2r LoRA loaded by plain PEFT on the original base."""

import json

import pytest
import torch
from peft import PeftModel
from salora_helpers import task_logits, train_steps

from safepeft.errors import IncompatibleArtifactError
from safepeft.finetune.salora.export import load_native, save_native, save_portable
from safepeft.finetune.salora.layer import salora_layers

PATTERNS = ("q_proj", "v_proj", "o_proj", "gate_proj", "down_proj")


@pytest.fixture
def trained(calibrated, tiny_tokenizer):
    base, model, _ = calibrated(PATTERNS, scaling=0.5)
    train_steps(model, tiny_tokenizer)
    logits = task_logits(model, tiny_tokenizer)
    assert (logits - task_logits(base, tiny_tokenizer)).abs().max() > 1e-2, "training must change the model"
    return model, logits


def test_portable_export_reproduces_salora_under_plain_peft(trained, tiny_llama, tiny_tokenizer, tmp_path):
    model, logits = trained
    save_portable(model, tmp_path, base_model_name="tiny")
    config = json.loads((tmp_path / "adapter_config.json").read_text())
    assert config["r"] == 2 * 4 and config["lora_alpha"] / config["r"] == 0.5
    original = tiny_llama(0, initializer_range=0.3)  # a fresh, unmodified base
    peft_model = PeftModel.from_pretrained(original, str(tmp_path)).eval()
    torch.testing.assert_close(task_logits(peft_model, tiny_tokenizer), logits, atol=1e-4, rtol=1e-4)
    merged = peft_model.merge_and_unload()  # merging is plain PEFT too
    torch.testing.assert_close(task_logits(merged, tiny_tokenizer), logits, atol=1e-4, rtol=1e-4)


def test_native_export_round_trips_exactly(trained, tiny_llama, tiny_tokenizer, tmp_path):
    model, logits = trained
    save_native(model, tmp_path, {"r": 4, "lora_alpha": 2.0})
    config = json.loads((tmp_path / "salora_config.json").read_text())
    assert len(config["target_modules"]) == 2 * len(PATTERNS) and config["scaling"] == 0.5
    reloaded = load_native(tiny_llama(0, initializer_range=0.3), tmp_path)
    torch.testing.assert_close(task_logits(reloaded, tiny_tokenizer), logits, atol=1e-5, rtol=1e-5)
    for name, layer in salora_layers(reloaded):
        # B is stored folded as C·B: nothing left in the safety subspace, and the U_s factors came along
        assert layer.lora_A.requires_grad and layer.lora_B.requires_grad
        torch.testing.assert_close(layer.safety_basis.T @ layer.lora_B, torch.zeros(6, 4), atol=1e-5, rtol=0)
        torch.testing.assert_close(layer.delta_weight(), model.get_submodule(name).delta_weight(),
                                   atol=1e-5, rtol=1e-5)


def test_native_export_refuses_another_base(trained, tiny_llama, tmp_path):
    model, _ = trained
    save_native(model, tmp_path, {})
    with pytest.raises(IncompatibleArtifactError, match="shape"):
        load_native(tiny_llama(0, hidden_size=48, num_attention_heads=4), tmp_path)
