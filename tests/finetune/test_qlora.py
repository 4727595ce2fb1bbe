"""QLoRA (`train --load-in-4bit`): the refusals without a GPU or bitsandbytes, and what would be passed to
transformers, with the 4-bit load faked (no GPU here: a real 4-bit model is never loaded)."""

from __future__ import annotations

import json
import sys
import types

import pytest
import torch

from safepeft.errors import ConfigError, MissingDependencyError
from safepeft.finetune import qlora


def _invoke(*args: str) -> int:
    from safepeft.cli.main import run

    return run(list(args))


def _fake_bitsandbytes(monkeypatch, version: str) -> None:
    module = types.ModuleType("bitsandbytes")
    module.__version__ = version
    monkeypatch.setitem(sys.modules, "bitsandbytes", module)


def test_cpu_is_refused_before_anything_loads(tiny_model_dir, chat_jsonl, tmp_path, capsys):
    code = _invoke("train", "-m", str(tiny_model_dir), "--data", str(chat_jsonl), "--out", str(tmp_path / "o"),
                   "--load-in-4bit", "--device", "cpu")
    err = capsys.readouterr().err
    assert code == 2 and "--load-in-4bit needs a CUDA GPU" in err and "--device is cpu" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "o").exists()
    for device in ("mps", "tpu"):
        with pytest.raises(ConfigError, match="needs a CUDA GPU"):
            qlora.check_4bit(device)


def test_no_cuda_is_refused(monkeypatch):
    monkeypatch.setattr(qlora, "_cuda_available", lambda: False)
    for device in ("auto", "cuda", "cuda:0"):
        with pytest.raises(ConfigError, match="this torch sees none"):
            qlora.check_4bit(device)


def test_missing_or_old_bitsandbytes_is_one_line(monkeypatch):
    monkeypatch.setattr(qlora, "_cuda_available", lambda: True)
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # `import bitsandbytes` raises ImportError
    with pytest.raises(MissingDependencyError) as missing:
        qlora.check_4bit("cuda")
    assert "pip install 'safepeft[qlora]'" in missing.value.render() and "\n" not in missing.value.render()
    _fake_bitsandbytes(monkeypatch, "0.42.0")
    with pytest.raises(ConfigError, match=r"bitsandbytes >= 0.46.1; 0.42.0 is installed"):
        qlora.check_4bit("cuda")
    _fake_bitsandbytes(monkeypatch, qlora.BNB_MIN_VERSION)
    assert qlora.check_4bit("cuda:3") == 3 and qlora.check_4bit("auto") == 0


def test_quantization_config_is_nf4_double_quant_computing_in_bf16_by_default():
    config = qlora.quantization_config()
    assert (config.load_in_4bit, config.bnb_4bit_quant_type, config.bnb_4bit_use_double_quant) == (True, "nf4", True)
    assert config.bnb_4bit_compute_dtype == torch.bfloat16
    assert qlora.quantization_config("float16").bnb_4bit_compute_dtype == torch.float16


def test_train_load_in_4bit_passes_the_4bit_config_and_records_the_flag(tiny_model_dir, chat_jsonl, tmp_path,
                                                                        monkeypatch):
    from transformers import AutoModelForCausalLM

    monkeypatch.setattr(qlora, "_cuda_available", lambda: True)
    # Tested above; a fake module here would make peft believe bitsandbytes' layers exist.
    monkeypatch.setattr(qlora, "_require_bitsandbytes", lambda: None)
    seen = {}

    def fake_load(location, kwargs):  # stands in for the 4-bit from_pretrained: a plain tiny model, flagged
        seen.update(location=location, kwargs=kwargs)
        model = AutoModelForCausalLM.from_pretrained(location)
        model.is_loaded_in_4bit = True
        seen["model"] = model
        return model

    monkeypatch.setattr(qlora, "_from_pretrained", fake_load)
    out = tmp_path / "qlora"
    assert _invoke("train", "-m", str(tiny_model_dir), "--data", str(chat_jsonl), "--out", str(out),
                   "--load-in-4bit", "--device", "cuda:1", "--max-steps", "1", "--rank", "2") == 0
    kwargs = seen["kwargs"]
    assert seen["location"] == str(tiny_model_dir)
    assert kwargs["device_map"] == {"": 1} and kwargs["dtype"] == torch.bfloat16 and kwargs["use_safetensors"]
    config = kwargs["quantization_config"]
    assert (config.load_in_4bit, config.bnb_4bit_quant_type, config.bnb_4bit_compute_dtype) == (
        True, "nf4", torch.bfloat16)
    model = seen["model"]  # prepare_model_for_kbit_training ran on the loaded base: checkpointing is on
    renamed = hasattr(type(model), "is_activation_checkpointing")  # transformers 5.2x's name; the old one warns
    assert model.is_activation_checkpointing if renamed else model.is_gradient_checkpointing
    record = json.loads((out / "safepeft_train.json").read_text())
    assert record["hyperparameters"]["load_in_4bit"] is True
    assert json.loads((out / "adapter_config.json").read_text())["peft_type"] == "LORA"


def test_trainer_refuses_a_flag_that_does_not_match_the_base(tiny_loaded, train_data, tmp_path):
    from safepeft.finetune.lora import LoraSpec
    from safepeft.finetune.trainer import TrainSpec, run_key, train

    with pytest.raises(ConfigError, match="load_in_4bit is True, but the base model is not in 4-bit"):
        train(tiny_loaded, train_data, TrainSpec(max_steps=1, load_in_4bit=True), LoraSpec(), tmp_path / "a")
    tiny_loaded.model.is_loaded_in_4bit = True
    with pytest.raises(ConfigError, match="load_in_4bit is False, but the base model is in 4-bit"):
        train(tiny_loaded, train_data, TrainSpec(max_steps=1), LoraSpec(), tmp_path / "b")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    keys = {run_key(tiny_loaded, train_data, TrainSpec(load_in_4bit=flag), LoraSpec()) for flag in (False, True)}
    assert len(keys) == 2


def test_load_in_4bit_is_for_lora_only():
    from pydantic import ValidationError

    from safepeft.finetune.trainer import TrainSpec

    with pytest.raises(ValidationError, match="QLoRA trains LoRA adapters only, not method 'ia3'"):
        TrainSpec(method="ia3", load_in_4bit=True)
