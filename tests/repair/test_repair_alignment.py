"""measure_modules: V in fp32 from any checkpoint dtype, Conv1D orientation, prefixes, mixed shapes in one pass."""

from pathlib import Path

import pytest
import torch

from safepeft.models.weights import DictWeights
from safepeft.repair.adapter import LoraAdapter, LoraModule
from safepeft.repair.alignment import measure_modules
from safepeft.repair.projection import module_geometry

SHAPES = {"h.0.q": (20, 12), "h.0.v": (6, 12), "h.1.q": (20, 12), "h.1.v": (6, 12)}


def build(fan_in_fan_out=False, dtype=torch.float32, prefix="model."):
    gen = torch.Generator().manual_seed(3)
    tensors, modules, base, aligned, deltas = {}, {}, {}, {}, {}
    for name, (d_out, d_in) in SHAPES.items():
        a_key, b_key = f"base_model.model.model.{name}.lora_A.weight", f"base_model.model.model.{name}.lora_B.weight"
        tensors[a_key], tensors[b_key] = torch.randn(2, d_in, generator=gen), torch.randn(d_out, 2, generator=gen)
        modules[f"model.{name}"] = LoraModule(f"model.{name}", a_key, b_key, 2, 1.0, fan_in_fan_out)
        w_base = torch.randn(d_out, d_in, generator=gen).to(dtype)
        w_aligned = (w_base.float() + 0.01 * torch.randn(d_out, d_in, generator=gen)).to(dtype)
        deltas[f"model.{name}"] = w_aligned.float() - w_base.float()
        key = f"{prefix}{name}.weight"
        base[key], aligned[key] = (w_base.T, w_aligned.T) if fan_in_fan_out else (w_base, w_aligned)
    adapter = LoraAdapter(Path("."), {"peft_type": "LORA"}, tensors, {}, modules)
    return adapter, DictWeights(base), DictWeights(aligned), deltas


@pytest.mark.parametrize("fan_in_fan_out", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_geometry_matches_direct_computation(fan_in_fan_out, dtype):
    adapter, base, aligned, deltas = build(fan_in_fan_out, dtype)
    results = measure_modules(adapter, base, aligned, progress=False)
    assert [r.name for r in results] == sorted(deltas)
    for result in results:
        expected = module_geometry(deltas[result.name], adapter.b(result.name), adapter.a(result.name))
        assert result.shape == SHAPES[result.name.removeprefix("model.")]
        torch.testing.assert_close(result.geometry.cb, expected.cb)
        assert result.geometry.cosine == pytest.approx(expected.cosine, abs=1e-6)


def test_checkpoint_without_the_model_prefix_still_matches():
    adapter, base, aligned, _ = build(prefix="")
    assert len(measure_modules(adapter, base, aligned, progress=False)) == len(SHAPES)


def test_inputs_are_not_modified():
    adapter, base, aligned, _ = build()
    before = {k: aligned.get(k).clone() for k in aligned.keys()}
    measure_modules(adapter, base, aligned, progress=False)
    assert all(torch.equal(before[k], aligned.get(k)) for k in before)
