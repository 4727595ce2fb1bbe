"""SafeMERGE: merge the safety LoRA only where the fine-tuned update left the alignment subspace; PEFT's rules."""

import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from safepeft.errors import ConfigError, IncompatibleArtifactError
from safepeft.repair import repair_adapter
from safepeft.repair.adapter import load_lora_adapter


@pytest.fixture(scope="module")
def safety(triple, tmp_path_factory):
    """A safety LoRA of the same shapes as the triple's adapter, with its own random factors."""
    target = tmp_path_factory.mktemp("safety") / "adapter"
    shutil.copytree(triple.adapter, target)
    tensors = load_file(target / "adapter_model.safetensors")
    gen = torch.Generator().manual_seed(9)
    save_file({k: torch.randn(v.shape, generator=gen) for k, v in tensors.items()},
              target / "adapter_model.safetensors")
    return target


def run(triple, safety, out, **spec):
    return repair_adapter("safemerge", base=str(triple.base), aligned=str(triple.aligned), adapter=triple.adapter,
                          out=out, spec=spec, inputs={"safety_adapter": safety}, progress=False)


def deltas(path):
    adapter = load_lora_adapter(path)
    return {n: m.scaling * adapter.b(n).double() @ adapter.a(n).double() for n, m in adapter.modules.items()}


@pytest.mark.parametrize("merge", ["linear", "concat"])
def test_weight_one_returns_the_finetuned_adapter(triple, safety, tmp_path, merge):
    report = run(triple, safety, tmp_path / "out", weight=1.0, merge=merge)
    assert {m.name for m in report.modules if m.action == "merged"} == triple.misaligned
    got, ft = deltas(tmp_path / "out"), deltas(triple.adapter)
    for name in ft:
        torch.testing.assert_close(got[name], ft[name], rtol=0, atol=1e-6)


def test_linear_merge_equals_peft_add_weighted_adapter(triple, safety, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    report = run(triple, safety, tmp_path / "out", weight=0.8)
    merged = {m.name for m in report.modules if m.action == "merged"}
    assert merged == triple.misaligned and report.summary["weights"] == [0.8, pytest.approx(0.2)]
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(triple.aligned), triple.adapter,
                                      adapter_name="ft")
    model.load_adapter(str(safety), adapter_name="safe")
    model.add_weighted_adapter(["ft", "safe"], [0.8, 0.2], "peft", combination_type="linear")
    got, ft = deltas(tmp_path / "out"), deltas(triple.adapter)
    modules = dict(model.base_model.model.named_modules())
    for name in got:
        layer = modules[name]
        reference = layer.get_delta_weight("peft").double()
        torch.testing.assert_close(got[name], reference if name in merged else ft[name], rtol=1e-5, atol=1e-6)


def test_concat_is_the_exact_weighted_sum_and_loads_in_peft(triple, safety, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    run(triple, safety, tmp_path / "out", weight=0.7, safety_weight=0.5, merge="concat")
    got, ft, safe = deltas(tmp_path / "out"), deltas(triple.adapter), deltas(safety)
    for name in got:
        expected = 0.7 * ft[name] + 0.5 * safe[name] if name in triple.misaligned else ft[name]
        torch.testing.assert_close(got[name], expected, rtol=0, atol=1e-6)
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(triple.aligned), tmp_path / "out")
    modules = dict(model.base_model.model.named_modules())
    for name in got:  # PEFT resolves the per-module rank/alpha patterns to the same updates
        torch.testing.assert_close(modules[name].get_delta_weight("default").double(), got[name], rtol=1e-5,
                                   atol=1e-6)


def test_dare_linear_is_seeded_and_touches_only_merged_modules(triple, safety, tmp_path):
    first = run(triple, safety, tmp_path / "a", merge="dare_linear", density=0.5, seed=1)
    run(triple, safety, tmp_path / "b", merge="dare_linear", density=0.5, seed=1)
    a, b, ft = load_file(tmp_path / "a" / "adapter_model.safetensors"), load_file(
        tmp_path / "b" / "adapter_model.safetensors"), load_file(triple.adapter / "adapter_model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    merged = {m.name for m in first.modules if m.action == "merged"}
    for key in a:
        assert torch.equal(a[key], ft[key]) != any(f".{n}." in f".{key}" for n in merged)


def test_safety_lora_of_another_model_is_refused(triple, safety, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(safety, other)
    tensors = load_file(other / "adapter_model.safetensors")
    key = next(k for k in tensors if "layers.0.self_attn.q_proj.lora_A" in k)
    tensors[key] = torch.zeros(tensors[key].shape[0], 48)
    save_file(tensors, other / "adapter_model.safetensors")
    with pytest.raises(IncompatibleArtifactError, match=r"was trained on another model: its update for "
                                                        r"model.layers.0.self_attn.q_proj has shape \(36, 48\)"):
        run(triple, other, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_safety_lora_missing_modules_or_rank_is_refused(triple, safety, tmp_path):
    partial = tmp_path / "partial"
    shutil.copytree(safety, partial)
    tensors = load_file(partial / "adapter_model.safetensors")
    save_file({k: v for k, v in tensors.items() if "layers.3." not in k}, partial / "adapter_model.safetensors")
    with pytest.raises(IncompatibleArtifactError, match="has no module model.layers.3"):
        run(triple, partial, tmp_path / "out")
    with pytest.raises(ConfigError, match="needs the input safety_adapter"):
        repair_adapter("safemerge", base=str(triple.base), aligned=str(triple.aligned), adapter=triple.adapter,
                       out=tmp_path / "out", progress=False)
