"""SafeMERGE (Djuhera et al., arXiv:2503.17239): merge a safety LoRA into the fine-tuned one, layer by layer, where
the fine-tuned update left the alignment subspace.

Per module, the SafeLoRA test: s = cos(vec(C·B·A), vec(B·A)) with C = V·Vᵀ/‖V‖_F, V = W_aligned − W_base. Modules with
s below τ (the official default 0.35) are merged with the safety LoRA (trained on the aligned model with safety
data); the others keep the fine-tuned update. Merge rules, with weights (w, w_s) = (0.8, 0.2) by default:

- `linear` (the official code's, PEFT's factor-wise task arithmetic): A = Σ cᵢ·Aᵢ, B = Σ cᵢ·Bᵢ with
  cᵢ = √(wᵢ·sᵢ / s_ft). The update is w·ΔW_ft + w_s·ΔW_safe plus the cross terms of the two factor pairs, exactly
  what PEFT's `add_weighted_adapter` produces; both adapters need the same rank.
- `dare_linear` (the official code's other rule): the same after DARE on each factor (keep probability
  `density`, survivors rescaled by 1/density).
- `concat` (safepeft's addition): the exact w·ΔW_ft + w_s·ΔW_safe, stored at rank r_ft + r_safe.

The output is a PEFT LoRA adapter for the aligned model. Weight 1 (w_s = 0) returns the fine-tuned adapter.
"""

from __future__ import annotations

import math
import re
from typing import Any, ClassVar, Literal

import torch
from pydantic import Field

from safepeft.errors import ConfigError, IncompatibleArtifactError
from safepeft.records.base import Spec
from safepeft.repair.adapter import LoraAdapter, load_lora_adapter
from safepeft.repair.alignment import ModuleAlignment
from safepeft.repair.base import RepairMethod, RepairPlan, module_record
from safepeft.repair.selection import Mode, select_modules

Merge = Literal["linear", "dare_linear", "concat"]


class SafeMERGESpec(Spec):
    """Parameters of a SafeMERGE repair (defaults are the official code's)."""

    mode: Mode = "threshold"
    """threshold: merge every module with cosine similarity <= tau; number: merge the k least similar modules."""
    tau: float = Field(0.35, ge=-1.0, le=1.0)
    """Cosine-similarity threshold for threshold mode (official default 0.35)."""
    k: int = Field(10, ge=1)
    """How many modules to merge in number mode."""
    weight: float = Field(0.8, ge=0.0, allow_inf_nan=False)
    """Weight of the fine-tuned update in merged modules (1 with safety_weight 0 returns the fine-tuned adapter)."""
    safety_weight: float | None = Field(None, ge=0.0, allow_inf_nan=False)
    """Weight of the safety LoRA's update in merged modules (default 1 - weight)."""
    merge: Merge = "linear"
    """linear (PEFT factor-wise, official), dare_linear (DARE on the factors first), concat (exact, rank r+r_s)."""
    density: float = Field(0.5, gt=0.0, le=1.0)
    """dare_linear: fraction of factor entries kept."""
    seed: int = 0
    """dare_linear: seed of the drop masks."""


def linear_merge(factors: list[tuple[torch.Tensor, torch.Tensor]], coefficients: list[float]) -> tuple[
        torch.Tensor, torch.Tensor]:
    """PEFT's factor-wise linear merge: (Σ cᵢ·Bᵢ, Σ cᵢ·Aᵢ) in fp32."""
    b = sum(c * f[0].float() for c, f in zip(coefficients, factors, strict=True))
    a = sum(c * f[1].float() for c, f in zip(coefficients, factors, strict=True))
    return b, a


def dare_factor(tensor: torch.Tensor, density: float, generator: torch.Generator) -> torch.Tensor:
    """Keep each entry with probability `density`, rescale survivors by 1/density."""
    if density == 1.0:
        return tensor.float()
    return tensor.float() * (torch.rand(tensor.shape, generator=generator) < density) / density


def concat_merge(ft: tuple[torch.Tensor, torch.Tensor], safe: tuple[torch.Tensor, torch.Tensor], weight: float,
                 safety_weight: float, ratio: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact w·B_f·A_f + w_s·(s_s/s_f)·B_s·A_s as one factor pair of rank r_f + r_s (scaling s_f unchanged)."""
    b = torch.cat([weight * ft[0].float(), safety_weight * ratio * safe[0].float()], dim=1)
    a = torch.cat([ft[1].float(), safe[1].float()], dim=0)
    return b, a


class SafeMERGE(RepairMethod):
    """Merge a safety LoRA into the fine-tuned LoRA in the modules that left the alignment subspace."""

    name: ClassVar[str] = "safemerge"
    paper: ClassVar[str] = "Djuhera et al., SafeMERGE: Preserving Safety Alignment via Selective Layer-Wise Model " \
                           "Merging, 2025 (arXiv:2503.17239)"
    spec_class: ClassVar[type[Spec]] = SafeMERGESpec
    inputs: ClassVar[tuple[str, ...]] = ("safety_adapter",)

    @staticmethod
    def prepare_inputs(inputs: dict[str, Any]) -> dict[str, Any]:
        safety = inputs["safety_adapter"]
        return {"safety_adapter": safety if isinstance(safety, LoraAdapter) else load_lora_adapter(safety)}

    def plan(self, alignments: list[ModuleAlignment], adapter: LoraAdapter, spec: Any,
             safety_adapter: LoraAdapter | None = None) -> RepairPlan:
        if safety_adapter is None:
            raise ConfigError("SafeMERGE needs a safety LoRA (safety_adapter).",
                              "Pass --safety-adapter DIR, or let `safepeft repair safemerge` train one.")
        _check_safety(alignments, adapter, safety_adapter)
        w_s = (1.0 - spec.weight) if spec.safety_weight is None else spec.safety_weight
        if w_s < 0:
            raise ConfigError(f"weight={spec.weight} leaves a negative safety weight {w_s}.",
                              "Pass --weight at most 1, or set --safety-weight explicitly.")
        scores = {a.name: (a.geometry.cosine if a.skip_reason is None else None) for a in alignments}
        merged = select_modules(scores, spec.mode, spec.tau, spec.k, worst="low")
        generator = torch.Generator().manual_seed(spec.seed)
        tensors, ranks, records = dict(adapter.tensors), {}, []
        for alignment in alignments:
            module, name = alignment.module, alignment.name
            safe_module = safety_adapter.modules[name]
            ranks[name] = (module.rank, module.scaling)
            if name in merged:
                ft, safe = (adapter.b(name), adapter.a(name)), (safety_adapter.b(name), safety_adapter.a(name))
                b, a = self._merge(ft, safe, module, safe_module, spec, w_s, generator)
                tensors[module.b_key] = b.to(ft[0].dtype)
                tensors[module.a_key] = a.to(ft[1].dtype)
                ranks[name] = (int(a.shape[0]), module.scaling)
            records.append(module_record(alignment, scores[name], "merged" if name in merged else "kept", {
                "update_norm": module.scaling * alignment.geometry.update_norm,
                "safety_update_rank": safe_module.rank}))
        config = _config(adapter.config, ranks) if spec.merge == "concat" else dict(adapter.config)
        summary = {"modules": len(alignments), "merged": len(merged), "merge": spec.merge,
                   "weights": [spec.weight, w_s], "skipped": sum(1 for a in alignments if a.skip_reason),
                   "tau": spec.tau}
        return RepairPlan(tensors, config, records, summary)

    @staticmethod
    def _merge(ft, safe, module, safe_module, spec, w_s, generator) -> tuple[torch.Tensor, torch.Tensor]:
        ratio = safe_module.scaling / module.scaling
        if spec.merge == "concat":
            return concat_merge(ft, safe, spec.weight, w_s, ratio)
        if module.rank != safe_module.rank:
            raise IncompatibleArtifactError(
                f"{module.name}: the fine-tuned LoRA has rank {module.rank} and the safety LoRA rank "
                f"{safe_module.rank}; the {spec.merge} rule merges factors of equal rank.",
                "Train the safety LoRA with the fine-tuned adapter's rank, or use --merge concat.")
        coefficients = [math.sqrt(spec.weight), math.sqrt(w_s * ratio)]
        if spec.merge == "dare_linear":
            ft = tuple(dare_factor(t, spec.density, generator) for t in ft)
            safe = tuple(dare_factor(t, spec.density, generator) for t in safe)
        return linear_merge([ft, safe], coefficients)


def _check_safety(alignments: list[ModuleAlignment], adapter: LoraAdapter, safety: LoraAdapter) -> None:
    """The safety LoRA must adapt the same modules of the same model (same shapes)."""
    missing = [a.name for a in alignments if a.name not in safety.modules]
    if missing:
        raise IncompatibleArtifactError(
            f"The safety LoRA {safety.path} has no module {missing[0]} ({len(missing)} of the fine-tuned adapter's "
            f"{len(alignments)} modules are missing).",
            "Train the safety LoRA on the aligned model with the fine-tuned adapter's target modules.")
    for alignment in alignments:
        name = alignment.name
        safe_shape = (int(safety.b(name).shape[0]), int(safety.a(name).shape[1]))
        if safe_shape != alignment.shape or safety.modules[name].fan_in_fan_out != alignment.module.fan_in_fan_out:
            raise IncompatibleArtifactError(
                f"The safety LoRA {safety.path} was trained on another model: its update for {name} has shape "
                f"{safe_shape}, the aligned model's weight is {alignment.shape}.",
                "Train the safety LoRA on the aligned model (`safepeft repair safemerge` does it when "
                "--safety-adapter is not given).")


def _config(config: dict[str, Any], ranks: dict[str, tuple[int, float]]) -> dict[str, Any]:
    """Every module by name with its own rank, and an alpha that keeps its scaling (concat changes ranks)."""
    rslora = bool(config.get("use_rslora"))
    new = dict(config)
    new.update(target_modules=sorted(ranks), layers_to_transform=None, layers_pattern=None,
               rank_pattern={re.escape(n): r for n, (r, _) in ranks.items()},
               alpha_pattern={re.escape(n): s * (math.sqrt(r) if rslora else r) for n, (r, s) in ranks.items()})
    return new
