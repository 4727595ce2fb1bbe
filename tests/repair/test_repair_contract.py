"""Contract over every registered repair method, on synthetic in-memory modules (no files)."""

from pathlib import Path

import pytest
import torch

from safepeft.records.base import Spec
from safepeft.registry import describe
from safepeft.repair import REPAIR_METHODS
from safepeft.repair.adapter import LoraAdapter, LoraModule
from safepeft.repair.alignment import ModuleAlignment
from safepeft.repair.base import RepairMethod, RepairPlan
from safepeft.repair.projection import module_geometry


def synthetic(n_per_shape=6, rank=3):
    gen = torch.Generator().manual_seed(0)
    tensors, modules, alignments = {}, {}, []
    for i, (d_out, d_in) in enumerate([(10, 14), (6, 14)] * n_per_shape):
        name = f"model.layers.{i}.proj"
        a_key, b_key = f"base_model.model.{name}.lora_A.weight", f"base_model.model.{name}.lora_B.weight"
        tensors[a_key] = torch.randn(rank, d_in, generator=gen)
        tensors[b_key] = torch.randn(d_out, rank, generator=gen)
        module = LoraModule(name, a_key, b_key, rank, 2.0)
        modules[name] = module
        v = torch.randn(d_out, d_in, generator=gen)
        alignments.append(ModuleAlignment(module, (d_out, d_in), module_geometry(v, tensors[b_key], tensors[a_key])))
    config = {"peft_type": "LORA", "r": rank, "lora_alpha": 2 * rank, "target_modules": ["proj"]}
    return LoraAdapter(Path("."), config, tensors, {}, modules), alignments


@pytest.mark.parametrize("name", REPAIR_METHODS.names())
def test_repair_method_contract(name):
    method_cls = REPAIR_METHODS.get(name)
    assert issubclass(method_cls, RepairMethod) and method_cls.name == name
    assert describe(method_cls) and "arXiv" in method_cls.paper
    assert issubclass(method_cls.spec_type, Spec)
    spec = method_cls.spec_type()  # every field has a default
    for field in ("mode", "tau", "k"):
        assert field in method_cls.spec_type.model_fields and method_cls.spec_type.model_fields[field].description
    adapter, alignments = synthetic()
    before = {key: value.clone() for key, value in adapter.tensors.items()}
    plan = method_cls().plan(alignments, adapter, spec)
    assert isinstance(plan, RepairPlan)
    assert all(torch.equal(before[key], adapter.tensors[key]) for key in before), "plan must not modify the input"
    assert [m.name for m in plan.modules] == [a.name for a in alignments]
    acted = [m for m in plan.modules if m.action in ("projected", "pruned")]
    assert len(acted) == spec.k  # number mode: exactly k
    assert set(plan.tensors) <= set(before) and plan.config["peft_type"] == "LORA"
    for key, value in plan.tensors.items():
        assert value.shape == before[key].shape and value.dtype == before[key].dtype
