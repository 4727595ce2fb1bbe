"""Issue #17: one target builder. The CLI and a study audit the same target into the same ArtifactRefs and results,
and the four ways the two builds used to disagree are resolved one way, here."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from safepeft.cli.main import app
from safepeft.errors import ConfigError
from safepeft.models.backends import choose_backend
from safepeft.records import load_results
from safepeft.target import TargetSpec

AUDIT = {"suites": ["builtin"], "per_category": 1, "max_new_tokens": 4, "judge": "refusal", "bootstrap": 100}


def _adapter(model_dir, out):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(3)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(model_dir),
                           LoraConfig(r=2, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    model.save_pretrained(out)
    return out


def test_cli_and_study_audit_the_same_target_identically(tiny_model_dir, tmp_path):
    from safepeft.study import run_study
    from safepeft.study.spec import parse_study

    adapter = _adapter(tiny_model_dir, tmp_path / "lora")
    summary = run_study(parse_study({
        "name": "same", "models": [{"name": "tiny", "model": str(tiny_model_dir)}],
        "finetune": [{"name": "given", "adapter": str(adapter)}], "audit": {**AUDIT, "mode": "generate"},
    }), tmp_path / "run")
    assert not summary.failed
    from safepeft.report.load import load_variants

    studied = {v.name: v.results for v in load_variants([tmp_path / "run"])}["tiny/given"]
    result = CliRunner().invoke(app, [
        "audit", "--model", str(tiny_model_dir), "--adapter", str(adapter), "--suite", "builtin", "--per-category",
        "1", "--max-new-tokens", "4", "--judge", "refusal", "--bootstrap", "100", "--mode", "generate",
        "--out", str(tmp_path / "cli")])
    assert result.exit_code == 0, result.output
    direct = load_results(tmp_path / "cli" / "results.json")
    assert direct.model == studied.model and direct.adapter == studied.adapter
    assert direct.adapter.fingerprint and direct.model.params["backend"] == "hf"
    assert direct.suites.keys() == studied.suites.keys()
    for name, suite in direct.suites.items():
        assert (suite.metrics, suite.samples) == (studied.suites[name].metrics, studied.suites[name].samples)


def test_every_audit_option_is_a_study_option():
    """The study's AuditEntry derives from AuditOptions: BBQ's generate mode (once CLI-only) works in a study."""
    from safepeft.audit.base import AuditOptions
    from safepeft.study.spec import AuditEntry

    assert set(AuditOptions.model_fields) <= set(AuditEntry.model_fields)
    assert AuditEntry(suites=["bbq-builtin"], mode="generate").mode == "generate"


def test_audit_flags_are_generated_from_the_spec_fields():
    import inspect

    from safepeft.cli.audit import audit
    from safepeft.study.spec import AuditEntry

    options = {p.default.param_decls[0]: p.default for p in inspect.signature(audit).parameters.values()}
    for name in ("limit", "per_category", "max_new_tokens", "validation_share", "bootstrap"):
        option = options["--" + name.replace("_", "-")]
        assert option.help == " ".join(AuditEntry.model_fields[name].description.split())
    assert options["--kind"].help.startswith("What the prompts")
    assert options["--model"].default is ...  # required, as TargetSpec.model is


def test_backend_choice_is_one_rule(tmp_path, monkeypatch):
    gguf_dir = tmp_path / "q4"
    gguf_dir.mkdir()
    (gguf_dir / "quantization.json").write_text(json.dumps({"format": "gguf", "scheme": "gguf-q4_k_m"}))
    monkeypatch.setattr("safepeft.models.quantized.read_manifest",
                        lambda path: json.loads((gguf_dir / "quantization.json").read_text())
                        if str(path) == str(gguf_dir) else None)
    assert choose_backend(TargetSpec(model="embedded")) == "hf"
    assert choose_backend(TargetSpec(model="m", base_url="http://127.0.0.1:1/v1")) == "openai"
    warnings: list[str] = []
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)  # no llama-cpp-python
    assert choose_backend(TargetSpec(model=str(gguf_dir)), warnings.append) == "hf"
    assert warnings and "llama-cpp-python is not installed" in warnings[0]  # the fallback is said, not silent
    monkeypatch.setattr("importlib.util.find_spec", lambda name: object())
    assert choose_backend(TargetSpec(model=str(gguf_dir))) == "llamacpp"
    assert choose_backend(TargetSpec(model=str(gguf_dir), adapter="a")) == "hf"  # an adapter needs transformers
    for bad in (TargetSpec(model="m", backend="openai"), TargetSpec(model="m", served_adapter="x"),
                TargetSpec(model="m", backend="hf", base_url="http://127.0.0.1:1/v1"),
                TargetSpec(model="m", adapter="a", base_url="http://127.0.0.1:1/v1"),
                TargetSpec(model="m", adapter="a", backend="llamacpp")):
        with pytest.raises(ConfigError):
            choose_backend(bad)


def test_int8_dynamic_runs_on_the_cpu_under_auto_and_refuses_an_explicit_gpu(tiny_model_dir, tmp_path, monkeypatch):
    from safepeft.models.loader import load_model
    from safepeft.quantize.run import quantize_model

    out = tmp_path / "int8"
    quantize_model(str(tiny_model_dir), "int8-dynamic", out)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # a GPU box: auto would otherwise pick cuda
    assert load_model(str(out)).device == "cpu"
    with pytest.raises(ConfigError, match="CPU only"):
        load_model(str(out), device="cuda")


def test_provenance_keys_are_the_same_from_every_path(tiny_model_dir, tmp_path):
    """A quantized model's `model.params` come from one writer (backends.open_hf) whoever builds the target."""
    from safepeft.quantize.run import quantize_model
    from safepeft.store import RunStore
    from safepeft.target import Models, build_target

    out = tmp_path / "int8"
    quantize_model(str(tiny_model_dir), "int8-dynamic", out)
    with RunStore(tmp_path / "store") as store:
        target = build_target(TargetSpec(model=str(out)), store, Models(), progress=False)
    params = target.model.params
    assert params["backend"] == "hf" and params["scheme"] == "int8-dynamic"
    assert {"bits", "quantization_library", "quantization_format", "dtype", "source"} <= set(params)
