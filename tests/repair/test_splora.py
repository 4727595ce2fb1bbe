"""SPLoRA end to end on tiny saved models: prunes the modules that moved away from the alignment subspace."""

import json

import pytest
import torch

from safepeft.errors import ConfigError
from safepeft.repair import repair_adapter
from safepeft.repair.adapter import load_lora_adapter


def run(triple, out, **spec):
    return repair_adapter("splora", base=str(triple.base), aligned=str(triple.aligned), adapter=triple.adapter,
                          out=out, spec=spec, progress=False)


def test_threshold_prunes_exactly_the_misaligned_modules(triple, tmp_path):
    report = run(triple, tmp_path / "out", mode="threshold", tau=1.0)
    assert {m.name for m in report.modules if m.action == "pruned"} == triple.misaligned
    assert set(report.summary["reference_sets"]) == {"36x36", "12x36"}  # q vs GQA k/v shapes
    assert report.summary["reference_sets"]["12x36"]["size"] == 8


def test_direction_far_prunes_high_scores_and_near_reproduces_the_official_choice(triple, tmp_path):
    far = run(triple, tmp_path / "far", mode="number", k=3)
    near = run(triple, tmp_path / "near", mode="number", k=3, direction="near")
    far_pruned = {m.name for m in far.modules if m.action == "pruned"}
    assert far_pruned == triple.misaligned
    assert min(m.score for m in far.modules if m.name in far_pruned) > max(
        m.score for m in far.modules if m.name not in far_pruned)
    near_pruned = {m.name for m in near.modules if m.action == "pruned"}
    assert len(near_pruned) == 3 and not near_pruned & triple.misaligned


def test_pruned_modules_are_gone_from_weights_config_and_model(triple, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    report = run(triple, tmp_path / "out", mode="threshold")
    kept = set(triple.modules) - triple.misaligned
    repaired = load_lora_adapter(tmp_path / "out")
    assert set(repaired.modules) == kept
    config = json.loads((tmp_path / "out" / "adapter_config.json").read_text())
    assert set(config["target_modules"]) == kept
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(triple.aligned), tmp_path / "out")
    wrapped = {name.removeprefix("base_model.model.") for name, module in model.named_modules()
               if hasattr(module, "lora_A")}
    assert wrapped == kept
    original = load_lora_adapter(triple.adapter)
    for name in kept:
        assert torch.equal(repaired.b(name), original.b(name))
    shapes = {m.name: m.shape for m in report.modules}
    removed = sum(2 * (shapes[n][0] + shapes[n][1]) for n in triple.misaligned)  # r = 2
    assert report.summary["params_removed"] == removed
    assert report.summary["flops_per_token_removed"] == 2 * removed


def test_pruning_everything_is_refused(triple, tmp_path):
    with pytest.raises(ConfigError, match="prune all 12 modules"):
        run(triple, tmp_path / "out", mode="threshold", tau=-1e9)
    assert not (tmp_path / "out").exists()


def test_reference_all_and_mean_std_are_options(triple, tmp_path):
    report = run(triple, tmp_path / "out", mode="number", k=3, reference="all", statistic="mean-std")
    assert set(report.summary["reference_sets"]) == {"all"}
    assert report.params["statistic"] == "mean-std"



def test_per_module_rank_and_alpha_patterns(make_triple, tmp_path):
    """rank_pattern / alpha_pattern modules are read with their own rank and scaling (PEFT's pattern rules)."""
    special = "model.layers.1.self_attn.k_proj"
    triple = make_triple(tmp_path / "t", rank_pattern={"layers.1.self_attn.k_proj": 1},
                         alpha_pattern={"layers.1.self_attn.k_proj": 5})
    report = run(triple, tmp_path / "out", mode="threshold")
    module = next(m for m in report.modules if m.name == special)
    assert module.rank == 1
    adapter = load_lora_adapter(triple.adapter)
    raw = torch.linalg.matrix_norm(adapter.b(special) @ adapter.a(special)).item()
    assert module.details["update_norm"] == pytest.approx(5.0 * raw, rel=1e-5)  # alpha 5 / rank 1
    other = next(m for m in report.modules if m.name == "model.layers.1.self_attn.q_proj")
    assert other.rank == 2
    assert {m.name for m in report.modules if m.action == "pruned"} == triple.misaligned
