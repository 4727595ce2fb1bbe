"""RESTA: θ = θ_ft + β·(θ_aligned − θ_base), exact as a model, rank-k as a LoRA; DARE; the bad inputs of issue #14."""

import pytest
import torch
from menu_helpers import build_family, load_weights, merged_finetuned

from safepeft.errors import ConfigError, IncompatibleArtifactError
from safepeft.repair import repair_adapter
from safepeft.repair.resta import dare


@pytest.fixture(scope="module")
def family(tmp_path_factory):
    return build_family(tmp_path_factory.mktemp("resta"))


def run(family, out, **spec):
    return repair_adapter("resta", base=str(family.base), aligned=str(family.aligned), adapter=family.adapter,
                          out=out, spec=spec, progress=False)


def test_beta_zero_is_the_finetuned_model(family, tmp_path):
    report = run(family, tmp_path / "out", beta=0.0)
    assert report.output == "model" and report.summary["adapter_modules_merged"] == 4
    written, reference = load_weights(tmp_path / "out"), merged_finetuned(family)
    assert set(reference) <= set(written) | {"lm_head.weight"}  # tied head: not stored
    for name, value in written.items():
        torch.testing.assert_close(value, reference[name], rtol=0, atol=1e-6)
    assert (tmp_path / "out" / "tokenizer.json").is_file() and (tmp_path / "out" / "safepeft_repair.json").is_file()


def test_beta_adds_the_safety_vector_to_every_tensor(family, tmp_path):
    run(family, tmp_path / "out", beta=0.7)
    written, reference = load_weights(tmp_path / "out"), merged_finetuned(family)
    base, aligned = load_weights(family.base), load_weights(family.aligned)
    changed = 0
    for name, value in written.items():
        expected = reference[name] + 0.7 * (aligned[name] - base[name])
        torch.testing.assert_close(value, expected, rtol=0, atol=1e-6)
        changed += not torch.equal(aligned[name], base[name])
    assert changed == len(written)  # norms and embeddings too: the vector is the whole model's


def test_lora_output_is_exact_at_full_rank_and_reports_truncation(family, tmp_path):
    from safetensors.torch import load_file

    from safepeft.repair.adapter import load_lora_adapter

    base, aligned = load_weights(family.base), load_weights(family.aligned)
    original = load_lora_adapter(family.adapter)
    for k in (3, 1):  # V has rank 3: k = 3 holds it exactly, k = 1 truncates it
        out = tmp_path / f"k{k}"
        report = run(family, out, beta=0.5, output="lora", k=k, lora_targets="adapter", svd="exact")
        repaired = load_lora_adapter(out)
        assert report.output == "adapter" and set(repaired.modules) == set(original.modules)
        for name, module in repaired.modules.items():
            v = aligned[f"{name}.weight"] - base[f"{name}.weight"]
            got = module.scaling * repaired.b(name) @ repaired.a(name)
            ft = original.modules[name].scaling * original.b(name) @ original.a(name)
            s = torch.linalg.svdvals(v)
            truncation = float((s[k:] ** 2).sum().sqrt() / s.square().sum().sqrt())
            entry = next(m for m in report.modules if m.name == name)
            assert entry.details["lowrank_relative_error"] == pytest.approx(truncation, abs=1e-5)
            residual = float(torch.linalg.matrix_norm(got - ft - 0.5 * v) / torch.linalg.matrix_norm(0.5 * v))
            assert residual == pytest.approx(truncation, abs=1e-4)
        assert 0 < report.summary["safety_vector_fraction_held"] < 1  # norms/embeddings/k,o,mlp are not held
    assert load_file(tmp_path / "k3" / "adapter_model.safetensors")  # a plain PEFT file


def test_lora_output_loads_in_peft(family, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    run(family, tmp_path / "lora", beta=0.5, output="lora", k=3, svd="exact")
    model = AutoModelForCausalLM.from_pretrained(family.aligned)
    merged = PeftModel.from_pretrained(model, tmp_path / "lora").merge_and_unload().state_dict()
    run(family, tmp_path / "model", beta=0.5)
    exact = load_weights(tmp_path / "model")
    for name in exact:
        if name.endswith("proj.weight"):  # every linear weight is held exactly at k = rank(V) = 3
            torch.testing.assert_close(merged[name], exact[name], rtol=0, atol=1e-5)


def test_dare_drops_and_rescales():
    delta = torch.randn(200, 300, generator=torch.Generator().manual_seed(1))
    dropped = dare(delta, 0.3, torch.Generator().manual_seed(2))
    kept = dropped != 0
    assert 0.67 < float(kept.float().mean()) < 0.73
    torch.testing.assert_close(dropped[kept], delta[kept] / 0.7)
    assert torch.equal(dare(delta, 0.0), delta)


def test_dare_in_model_output_keeps_a_fraction(family, tmp_path):
    report = run(family, tmp_path / "out", beta=0.0, dare=0.5, seed=3)
    fractions = [m.details["dare_kept_fraction"] for m in report.modules]
    assert all(0.3 < f < 0.7 for f in fractions)
    with pytest.raises(ConfigError, match="DARE"):
        run(family, tmp_path / "bad", dare=0.5, output="lora")


def test_aligned_model_from_another_lineage_is_refused(family, tmp_path):
    stranger = build_family(tmp_path / "other", seed=7)
    with pytest.raises(IncompatibleArtifactError, match="does not look like a descendant of the base"):
        repair_adapter("resta", base=str(stranger.base), aligned=str(family.aligned), adapter=family.adapter,
                       out=tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_beta_that_overflows_is_refused_and_nothing_is_written(family, tmp_path):
    with pytest.raises(ConfigError, match=r"RESTA with beta=1e\+39 makes .* non-finite"):
        run(family, tmp_path / "out", beta=1e39)
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))
    with pytest.raises(ConfigError, match="Invalid beta"):
        run(family, tmp_path / "out", beta=float("inf"))


def test_k_beyond_the_rank_is_refused(family, tmp_path):
    with pytest.raises(ConfigError, match="larger than the rank"):
        run(family, tmp_path / "out", output="lora", k=5, svd="exact")  # V has rank 3
    with pytest.raises(ConfigError, match="larger than the rank bound"):
        run(family, tmp_path / "out", output="lora", k=40)
    assert not (tmp_path / "out").exists()
