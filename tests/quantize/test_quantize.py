"""Quantization schemes: each CPU scheme writes a directory that loads, generates and is smaller than fp32."""

from __future__ import annotations

import json

import pytest
import torch
from quant_helpers import save_bpe_model

from safepeft.errors import ConfigError, IncompatibleArtifactError
from safepeft.models.loader import load_model
from safepeft.quantize import QUANTIZERS
from safepeft.quantize.base import Quantizer
from safepeft.quantize.run import quantize_model
from safepeft.records.generation import GenParams

TORCH_SCHEMES = ["int8-dynamic", "int8", "int4"]
ISSUE_SCHEMES = {"int8-dynamic", "int8", "int4", "gguf-q8_0", "gguf-q4_k_m", "gguf-q2_k", "bnb-int8", "bnb-nf4"}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_bpe_model(tmp_path_factory.mktemp("bpe-model"))


@pytest.fixture(scope="module")
def reference(model_dir):
    return load_model(str(model_dir))


def test_registry_holds_the_issue_schemes():
    assert ISSUE_SCHEMES <= set(QUANTIZERS.names())


@pytest.mark.parametrize("name", QUANTIZERS.names())  # every registered scheme, not a hand-kept list
def test_quantizer_contract(name):
    quantizer = QUANTIZERS.get(name)
    assert issubclass(quantizer, Quantizer) and quantizer.name == name
    assert quantizer.description and quantizer.bits in (2, 4, 8) and quantizer.library and quantizer.format


@pytest.mark.parametrize("scheme", TORCH_SCHEMES)
def test_torch_scheme_writes_a_smaller_model_that_loads_and_generates(tmp_path, model_dir, reference, scheme):
    manifest = quantize_model(str(model_dir), scheme, tmp_path / "q")
    saved = json.loads((tmp_path / "q" / "quantization.json").read_text())
    assert saved == manifest and manifest["scheme"] == scheme and manifest["bits"] in (4, 8)
    assert manifest["source"]["fingerprint"] == reference.fingerprint
    assert manifest["size"]["ratio"] > 1.3 and manifest["memory"]["ratio"] > 1.3
    loaded = load_model(str(tmp_path / "q"))
    assert loaded.quantization["scheme"] == scheme and loaded.info()["quantization"]["bits"] == manifest["bits"]
    assert loaded.fingerprint != reference.fingerprint
    text = loaded.generator(progress=False).generate(["hello world"], GenParams(max_new_tokens=6))[0]
    assert isinstance(text, str) and text
    ids = torch.tensor([[5, 80, 120, 200, 33, 7, 250, 12]])
    with torch.no_grad():
        exact, approx = reference.model(ids).logits, loaded.model(ids).logits
    error = (exact - approx).norm() / exact.norm()
    assert 0 < error < {"int8": 0.05, "int8-dynamic": 0.1, "int4": 0.5}[scheme]  # random weights: no outliers


def test_int8_dynamic_reload_is_exact(tmp_path, model_dir, reference):
    from safepeft.quantize.int8_dynamic import quantize_weight

    quantize_model(str(model_dir), "int8-dynamic", tmp_path / "q")
    loaded = load_model(str(tmp_path / "q"))
    layer = loaded.model.model.layers[0].self_attn.q_proj
    q, scale = quantize_weight(reference.model.model.layers[0].self_attn.q_proj.weight)
    assert torch.equal(layer.weight().int_repr(), q)
    assert torch.allclose(layer.weight().q_per_channel_scales().float(), scale)


def test_quanto_reload_is_exact(tmp_path, model_dir):
    from optimum.quanto import freeze, qint4, quantize

    quantize_model(str(model_dir), "int4", tmp_path / "q")
    loaded = load_model(str(tmp_path / "q"))
    fresh = load_model(str(model_dir)).model
    quantize(fresh, weights=qint4, exclude=["lm_head"])
    freeze(fresh)
    ids = torch.tensor([[5, 80, 120, 200]])
    with torch.no_grad():
        assert torch.equal(fresh(ids).logits, loaded.model(ids).logits)


def test_adapter_is_merged_before_quantizing(tmp_path, model_dir):
    from peft import LoraConfig, get_peft_model

    base = load_model(str(model_dir)).model
    peft_model = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    peft_model.save_pretrained(tmp_path / "adapter")
    plain = quantize_model(str(model_dir), "int8", tmp_path / "plain")
    merged = quantize_model(str(model_dir), "int8", tmp_path / "merged", adapter=tmp_path / "adapter")
    assert merged["source"]["adapter_merged"] and merged["source"]["adapter_fingerprint"]
    ids = torch.tensor([[5, 80, 120]])
    with torch.no_grad():
        a = load_model(str(tmp_path / "plain")).model(ids).logits
        b = load_model(str(tmp_path / "merged")).model(ids).logits
    assert not torch.allclose(a, b) and not plain["source"]["adapter_merged"]


def test_prompt_learning_adapter_cannot_be_merged(tmp_path, model_dir):
    from peft import PromptTuningConfig
    from safetensors.torch import save_file

    # Written by hand: PEFT's own save trips over the tiny model's tied embeddings.
    config = PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=3, token_dim=256, num_layers=2,
                                num_attention_heads=4, num_transformer_submodules=1)
    config.save_pretrained(tmp_path / "pt")
    save_file({"prompt_embeddings": torch.randn(3, 256)}, str(tmp_path / "pt" / "adapter_model.safetensors"))
    with pytest.raises(IncompatibleArtifactError, match="prompt-learning"):
        quantize_model(str(model_dir), "int8", tmp_path / "q", adapter=tmp_path / "pt")
    assert not (tmp_path / "q").exists()


def test_existing_output_is_refused_unless_overwrite(tmp_path, model_dir):
    (tmp_path / "q").mkdir()
    (tmp_path / "q" / "keep.txt").write_text("x")
    with pytest.raises(ConfigError, match="not empty"):
        quantize_model(str(model_dir), "int8-dynamic", tmp_path / "q")
    quantize_model(str(model_dir), "int8-dynamic", tmp_path / "q", overwrite=True)
    assert not (tmp_path / "q" / "keep.txt").exists() and (tmp_path / "q" / "quantization.json").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".q.tmp-")]


@pytest.mark.parametrize("scheme", ["bnb-int8", "bnb-nf4"])
def test_bitsandbytes_schemes_say_they_need_cuda(tmp_path, model_dir, scheme):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ConfigError, match="needs a CUDA GPU"):
        quantize_model(str(model_dir), scheme, tmp_path / "q")


def test_int8_dynamic_refuses_cuda_at_load(tmp_path, model_dir):
    quantize_model(str(model_dir), "int8-dynamic", tmp_path / "q")
    with pytest.raises(ConfigError, match="CPU only"):
        load_model(str(tmp_path / "q"), device="cuda")


def test_audit_of_a_quantized_dir_records_scheme_and_bits(tmp_path, model_dir):
    from typer.testing import CliRunner

    from safepeft.cli.main import app
    from safepeft.records import load_results

    quantize_model(str(model_dir), "int8", tmp_path / "q")
    result = CliRunner().invoke(app, ["audit", "--model", str(tmp_path / "q"), "--suite", "builtin", "--limit", "2",
                                      "--max-new-tokens", "4", "--bootstrap", "100", "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    params = load_results(tmp_path / "r" / "results.json").model.params
    assert (params["backend"], params["scheme"], params["bits"]) == ("hf", "int8", 8)
