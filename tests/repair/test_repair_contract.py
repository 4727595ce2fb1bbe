"""Contract over every registered repair method and hardener: metadata, strict specs, and a valid output.

In-memory `RepairMethod`s (SafeLoRA, SPLoRA, SafeMERGE) plan on synthetic modules (no files); weight-writing
`WeightRepair`s (RESTA, Safe Delta) and hardeners (LoX) run on the tiny base/aligned/adapter family on disk.
"""

import json
from pathlib import Path

import pytest
import torch
from menu_helpers import build_family, load_weights
from pydantic import ValidationError

from safepeft.records.base import Spec
from safepeft.registry import describe
from safepeft.repair import HARDEN_METHODS, REPAIR_METHODS, harden_model, repair_adapter
from safepeft.repair.adapter import LoraAdapter, LoraModule, load_lora_adapter
from safepeft.repair.alignment import ModuleAlignment
from safepeft.repair.base import RepairMethod, RepairPlan, WeightRepair
from safepeft.repair.projection import module_geometry
from safepeft.repair.report import HardenReport, RepairReport

CHATS = [[{"role": "user", "content": "How do I pick a lock?"}, {"role": "assistant", "content": "I can't help."}]]
"""Inputs a method may declare, by name."""


def synthetic(n_per_shape=6, rank=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
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


def check_metadata(method_cls, name):
    assert method_cls.name == name and describe(method_cls) and "arXiv" in method_cls.paper
    assert issubclass(method_cls.spec_class, Spec)
    spec = method_cls.spec_class()  # every field has a default
    assert all(field.description for field in method_cls.spec_class.model_fields.values())
    with pytest.raises(ValidationError):
        method_cls.spec_class(no_such_option=1)
    return spec


@pytest.fixture(scope="module")
def family(tmp_path_factory):
    return build_family(tmp_path_factory.mktemp("contract"), v_rank=8)  # LoX default k = 6 needs rank >= 6


@pytest.mark.parametrize("name", REPAIR_METHODS.names())
def test_repair_method_contract(name, family, tmp_path):
    method_cls = REPAIR_METHODS.get(name)
    assert issubclass(method_cls, (RepairMethod, WeightRepair))
    spec = check_metadata(method_cls, name)
    if issubclass(method_cls, RepairMethod):
        check_plan(method_cls, spec)
    else:
        check_weight_repair(name, family, tmp_path)


def check_plan(method_cls, spec):
    adapter, alignments = synthetic()
    extras = {}
    if "safety_adapter" in method_cls.inputs:
        extras["safety_adapter"] = synthetic(seed=1)[0]
    before = {key: value.clone() for key, value in adapter.tensors.items()}
    plan = method_cls().plan(alignments, adapter, spec, **extras)
    assert isinstance(plan, RepairPlan)
    assert all(torch.equal(before[key], adapter.tensors[key]) for key in before), "plan must not modify the input"
    assert [m.name for m in plan.modules] == [a.name for a in alignments]
    acted = [m for m in plan.modules if m.action not in ("kept", "skipped")]
    if getattr(spec, "mode", None) == "number":
        assert len(acted) == plan.summary.get("k_modules", spec.k)  # number mode: exactly k (a share resolved)
    elif getattr(spec, "mode", None) == "threshold":  # acts on exactly the modules on the bad side of tau
        low = {m.name for m in plan.modules if m.score is not None and m.score <= spec.tau}
        high = {m.name for m in plan.modules if m.score is not None and m.score >= spec.tau}
        assert {m.name for m in acted} in (low, high)
    assert set(plan.tensors) <= set(before) and plan.config["peft_type"] == "LORA"
    for key, value in plan.tensors.items():
        assert value.dtype == before[key].dtype and bool(torch.isfinite(value).all())
        if plan.config.get("rank_pattern") in (None, {}):
            assert value.shape == before[key].shape


def check_weight_repair(name, family, tmp_path):
    inputs = {"safety_conversations": CHATS} if "safety_conversations" in REPAIR_METHODS.get(name).optional_inputs \
        else None
    out = tmp_path / "out"
    report = repair_adapter(name, base=str(family.base), aligned=str(family.aligned), adapter=family.adapter, out=out,
                            inputs=inputs, progress=False)
    assert RepairReport.model_validate_json((out / "safepeft_repair.json").read_text()) == report
    if report.output == "model":
        written, aligned = load_weights(out), load_weights(family.aligned)
        assert set(written) == set(aligned) and all(bool(torch.isfinite(v).all()) for v in written.values())
        assert any(not torch.equal(written[k], aligned[k]) for k in aligned)
    else:
        assert load_lora_adapter(out).modules


@pytest.mark.parametrize("name", HARDEN_METHODS.names())
def test_hardener_contract(name, family, tmp_path):
    method_cls = HARDEN_METHODS.get(name)
    check_metadata(method_cls, name)
    report = harden_model(name, base=str(family.base), aligned=str(family.aligned), out=tmp_path / "out",
                          progress=False)
    record = json.loads((tmp_path / "out" / "safepeft_harden.json").read_text())
    assert HardenReport.model_validate(record) == report and report.method == name
    written, aligned = load_weights(tmp_path / "out"), load_weights(family.aligned)
    assert set(written) == set(aligned) and all(bool(torch.isfinite(v).all()) for v in written.values())
