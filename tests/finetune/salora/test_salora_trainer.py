"""SaLoRA through the shared trainer: output formats, provenance, and an exact resume after a kill."""

import json

import pytest
import torch

import safepeft.finetune.trainer as trainer
from safepeft.finetune.dataset import load_train_data
from safepeft.finetune.rows import DataSpec
from safepeft.models.loader import attach_adapter, load_model

OPTIONS = dict(rank=4, safety_rank=6, task_rank=8, safety_samples=4, task_samples=6, safety_responses="data")


def _run(model_dir, out, resume=False):
    loaded = load_model(str(model_dir))
    data = load_train_data(DataSpec(source="builtin:arithmetic", limit=12), loaded.tokenizer, max_length=256)
    spec = trainer.TrainSpec(method="salora", max_steps=4, batch_size=3, checkpoint_every=2, learning_rate=5e-3)
    method_spec = trainer.FINETUNE_METHODS.get("salora").make_spec(**OPTIONS)
    return trainer.train(loaded, data, spec, method_spec, out, resume=resume, show_progress=False)


def test_train_writes_portable_and_native_outputs(tiny_model_dir, tmp_path):
    result = _run(tiny_model_dir, tmp_path / "run")
    record = json.loads((tmp_path / "run" / "safepeft_train.json").read_text())
    assert record["method"] == "salora" and record["extras"]["salora"]["safety_rows"] == 4
    assert (tmp_path / "run" / "salora_model.safetensors").is_file()
    portable = load_model(str(tiny_model_dir))
    attach_adapter(portable, tmp_path / "run")
    ids = torch.tensor([[5, 60, 70, 80, 90]])
    with torch.no_grad():
        torch.testing.assert_close(portable.model(input_ids=ids).logits, result.model(input_ids=ids).logits,
                                   atol=1e-4, rtol=1e-4)


def test_default_learning_rate_is_the_papers():
    assert trainer.FINETUNE_METHODS.get("salora").default_learning_rate == 1e-4


def test_killed_run_resumes_exactly(tiny_model_dir, tmp_path, monkeypatch):
    straight = _run(tiny_model_dir, tmp_path / "straight").record.losses
    real_save = trainer.save_checkpoint

    def save_then_die(root, checkpoint, keep=1):
        real_save(root, checkpoint, keep)
        raise KeyboardInterrupt  # killed right after the step-2 checkpoint

    monkeypatch.setattr(trainer, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        _run(tiny_model_dir, tmp_path / "killed")
    monkeypatch.setattr(trainer, "save_checkpoint", real_save)
    resumed = _run(tiny_model_dir, tmp_path / "killed", resume=True).record
    assert resumed.resumed_from == [2]
    assert resumed.losses == pytest.approx(straight, rel=1e-6, abs=1e-7)
