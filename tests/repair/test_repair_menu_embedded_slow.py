"""The repair menu end to end on the embedded SmolLM2: base = embedded, aligned = `safepeft align` output (shared
session fixture), adapter = a short LoRA fine-tune of the aligned model. Each output must load and generate."""

import json

import pytest
from typer.testing import CliRunner

from safepeft.cli.main import app

runner = CliRunner()


def invoke(*args):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result


def generates(model, adapter=None):
    from safepeft.models.loader import load_model
    from safepeft.records import GenParams

    loaded = load_model(str(model), adapter=adapter)
    [text] = loaded.generator(batch_size=1, progress=False).generate(["Say hi."], GenParams(max_new_tokens=4))
    return isinstance(text, str)


@pytest.fixture(scope="module")
def finetuned(aligned_embedded_dir, tmp_path_factory):
    adapter = tmp_path_factory.mktemp("menu") / "adapter"
    invoke("train", "--model", aligned_embedded_dir, "--method", "lora", "--data", "builtin:identity-shift",
           "--max-steps", 2, "--batch-size", 2, "--max-length", 128, "--lr", 1e-3, "--out", adapter)
    return adapter


def common(aligned, adapter, out):
    return ["--base", "embedded", "--aligned", aligned, "--adapter", adapter, "--out", out]


@pytest.mark.slow
def test_resta_model_and_lora(aligned_embedded_dir, finetuned, tmp_path):
    summary = json.loads(invoke("repair", "resta", *common(aligned_embedded_dir, finetuned, tmp_path / "m"),
                                "--beta", 0.5, "--json").stdout)
    assert summary["tensors_with_safety_vector"] > 100 and 0 < summary["median_relative_safety_vector"] < 0.5
    assert generates(tmp_path / "m")
    summary = json.loads(invoke("repair", "resta", *common(aligned_embedded_dir, finetuned, tmp_path / "l"),
                                "--output", "lora", "--k", 8, "--lora-targets", "adapter", "--json").stdout)
    assert 0 < summary["safety_vector_fraction_held"] < 1 and summary["lowrank_relative_error_max"] < 1
    assert generates(aligned_embedded_dir, adapter=tmp_path / "l")


@pytest.mark.slow
def test_safemerge_with_a_trained_safety_lora(aligned_embedded_dir, finetuned, tmp_path):
    from safepeft.finetune.safety_lora import train_safety_adapter

    safety = train_safety_adapter(str(aligned_embedded_dir), finetuned, tmp_path / "safety", steps=2)
    summary = json.loads(invoke("repair", "safemerge", *common(aligned_embedded_dir, finetuned, tmp_path / "out"),
                                "--safety-adapter", safety, "--mode", "number", "--k", 6, "--json").stdout)
    assert summary["merged"] == 6
    assert generates(aligned_embedded_dir, adapter=tmp_path / "out")


@pytest.mark.slow
def test_safedelta(aligned_embedded_dir, finetuned, tmp_path):
    summary = json.loads(invoke("repair", "safedelta", *common(aligned_embedded_dir, finetuned, tmp_path / "out"),
                                "--max-samples", 8, "--scale", 0.05, "--json").stdout)
    # a budget below 1 binds on the real model's correlated activations (the first budget rule kept everything)
    assert summary["curvature"]["tokens"] > 0 and 0 < summary["kept_fraction_mean"] < 1
    assert summary["safety_loss_final"] < summary["safety_loss_full"]
    assert generates(tmp_path / "out")


@pytest.mark.slow
def test_lox_then_train(aligned_embedded_dir, tmp_path):
    summary = json.loads(invoke("harden", "lox", "--base", "embedded", "--aligned", aligned_embedded_dir, "--out",
                                tmp_path / "lox", "--targets", "q_proj,v_proj", "--json").stdout)
    assert summary["extrapolated"] == summary["matrices"] > 0
    invoke("train", "--model", tmp_path / "lox", "--method", "lora", "--data", "builtin:identity-shift",
           "--max-steps", 1, "--batch-size", 2, "--max-length", 128, "--out", tmp_path / "adapter")
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()
